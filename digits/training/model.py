"""Architectures: subclassed keras.Models mapping images [b, h, w, 1] in [0, 1] to logits [b, classes].

Models return logits (the loss is computed from logits, which is numerically stable); the exported
SavedModel adds the softmax (digits.export.saved_model). The dataset (digits.data.datasets) gives the image
shape and the number of classes.
"""
import contextlib

import keras
import tensorflow as tf

from digits import config as config_lib
from digits.data import datasets, line_format

# Keras' default 0.99 averages over ~100 steps: in runs of a few thousand steps with a high learning rate
# the moving statistics lag the weights and inference-mode accuracy collapses. 0.9 tracks the weights
# within ~10 steps.
BN_MOMENTUM = 0.9
# synchronized=True: under a multi-replica strategy the batch statistics are those of the global batch,
# so training is the same computation on 1 or N replicas (on one device it is the same formula).


class SimpleCNN(keras.Model):
    """The keras.io "Simple MNIST convnet", layer for layer (34,826 parameters), for comparing with fit.

    https://keras.io/examples/vision/mnist_convnet/ ends in a softmax Dense; here the last layer outputs
    logits instead, which has the same parameters and the same probabilities after the softmax.
    """

    def __init__(self, num_classes: int, l2: float = 0.0, dropout: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        reg = keras.regularizers.L2(l2) if l2 else None
        self.conv1 = keras.layers.Conv2D(32, 3, activation='relu', kernel_regularizer=reg)
        self.pool1 = keras.layers.MaxPooling2D(2)
        self.conv2 = keras.layers.Conv2D(64, 3, activation='relu', kernel_regularizer=reg)
        self.pool2 = keras.layers.MaxPooling2D(2)
        self.flatten = keras.layers.Flatten()
        self.dropout = keras.layers.Dropout(dropout)
        self.logits = keras.layers.Dense(num_classes, kernel_regularizer=reg, dtype='float32')

    def call(self, images, training=False):
        x = self.pool1(self.conv1(images))  # [b, 13, 13, 32]
        x = self.pool2(self.conv2(x))  # [b, 5, 5, 64]
        x = self.dropout(self.flatten(x), training=training)  # [b, 1600]
        return self.logits(x)


class DigitCNN(keras.Model):
    """The cnn: blocks of (conv-BN-ReLU) x n + max-pool, then a dense head with dropout; its shape
    arguments default to the default recipe's (digits.config.TrainConfig's defaults).

    Batch norm lets a high learning rate train it in a few minutes on a CPU, and two 3x3 convolutions
    per block see 5x5 patches at the cost of fewer weights. The first block works at full resolution,
    where a convolution costs 4x what it costs in the next block: first_block_convs may give it fewer
    (0: convs_per_block). tta: inference (evaluation, the export) reads each image and its four 1-pixel
    shifts and averages the probabilities; training is unchanged.
    """

    def __init__(self, num_classes: int, l2: float = 0.0, widths: tuple[int, ...] | None = None,
                 convs_per_block: int | None = None, first_block_convs: int | None = None, hidden: int = 128,
                 dropout: float = 0.4, tta: bool | None = None, **kwargs):
        shape = cnn_arguments(config_lib.TrainConfig())  # unset: the default recipe's, from its one home
        widths = shape['widths'] if widths is None else widths
        convs_per_block = shape['convs_per_block'] if convs_per_block is None else convs_per_block
        first_block_convs = shape['first_block_convs'] if first_block_convs is None else first_block_convs
        tta = shape['tta'] if tta is None else tta
        super().__init__(**kwargs)
        self.tta = tta
        reg = keras.regularizers.L2(l2) if l2 else None
        convs = [first_block_convs or convs_per_block] + [convs_per_block] * (len(widths) - 1)
        layers = []
        for width, count in zip(widths, convs):
            for _ in range(count):
                layers += [keras.layers.Conv2D(width, 3, padding='same', use_bias=False, kernel_regularizer=reg),
                           keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True),
                           keras.layers.ReLU()]
            layers.append(keras.layers.MaxPooling2D(2))
        # A Sequential, not a list attribute: Keras 3 on TensorFlow leaves a list of layers out of
        # tf.train.Checkpoint (keras-team/keras#18398), so checkpoints lacked the convolutions' batch-norm
        # statistics and evaluate --run_dir rebuilt them from scratch.
        self.blocks = keras.Sequential(layers, name='blocks')
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(hidden, use_bias=False, kernel_regularizer=reg)
        self.hidden_norm = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True)
        self.relu = keras.layers.ReLU()
        self.dropout = keras.layers.Dropout(dropout)
        self.logits = keras.layers.Dense(num_classes, kernel_regularizer=reg, dtype='float32')

    def call(self, images, training=False):
        if self.tta and not training:
            return self.shift_averaged_logits(images)
        return self.plain_logits(images, training)

    def plain_logits(self, images, training):
        """Logits [b, classes] of images [b, h, w, 1], each read once."""
        x = self.blocks(images, training=training)  # [b, 28, 28, 1] -> [b, 28 / 2**n, .., widths[-1]] (n blocks)
        x = self.hidden(self.flatten(x))  # [b, 128]
        x = self.relu(self.hidden_norm(x, training=training))
        return self.logits(self.dropout(x, training=training))

    def shift_averaged_logits(self, images):
        """log of the mean softmax over images and their 1-pixel shifts [b, classes]: its softmax is that mean."""
        # One shifted copy at a time: the evaluation batch's activations are not held 5 times over.
        return log_mean_softmax([self.plain_logits(shifted, False) for shifted in shifted_copies(images)])


class Ensemble(keras.Model):
    """Models trained side by side in one run, each on its own batches and loss (digits.training.loop sums them).

    Training reads a batch per member, images [b, members, h, w, 1] (digits.data.train_dataset_for), and
    returns every member's logits [b, members, classes]; inference (evaluation, the export) reads images
    [b, h, w, 1] and returns the log of the members' mean probabilities [b, classes], whose softmax is
    that mean.
    """

    def __init__(self, members: list, **kwargs):
        super().__init__(**kwargs)
        self.num_members = len(members)
        # Attributes, not a list: Keras 3 leaves a list of layers out of tf.train.Checkpoint (see DigitCNN).
        for i, member in enumerate(members):
            setattr(self, f'member_{i}', member)

    @property
    def members(self) -> list:
        return [getattr(self, f'member_{i}') for i in range(self.num_members)]

    def call(self, images, training=False):
        if training:
            logits = [member(images[:, i], training=True) for i, member in enumerate(self.members)]
            return tf.stack([tf.cast(x, tf.float32) for x in logits], axis=1)  # [b, members, classes]
        return log_mean_softmax([member(images, training=False) for member in self.members])


def log_mean_softmax(logits: list) -> tf.Tensor:
    """log of the mean of softmax(x) over a list of logits [b, classes] (float32): its softmax is that mean."""
    log_probs = tf.stack([tf.nn.log_softmax(tf.cast(x, tf.float32)) for x in logits])
    return tf.reduce_logsumexp(log_probs, axis=0) - tf.math.log(float(len(logits)))


SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (rows, columns): the image and its four neighbours


def shifted_copies(images: tf.Tensor) -> list[tf.Tensor]:
    """images [b, h, w, c] moved by each of SHIFTS, the pixels moved in being 0 (background)."""
    height, width = images.shape[1:3]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return [padded[:, 1 - dy:1 - dy + height, 1 - dx:1 - dx + width] for dy, dx in SHIFTS]


CONTEXT_COLUMNS = 16  # each of the line reader's 1-D convolutions sees this many columns of frames, and its own


class LineReader(keras.Model):
    """The line reader: a line of digits [b, line_format.HEIGHT, w, 1] (any width w, a multiple of
    line_format.FRAME_COLUMNS) -> logits [b, w / FRAME_COLUMNS, classes + 2] for CTC: a frame every
    FRAME_COLUMNS (2) columns, over the digits, "not a digit" (classes) and the blank (classes + 1).

    Convolutions see the line's full height in 2-column frames (a digit is 6-12 frames wide): the second
    pooling halves the height alone, as CRNN's rectangular poolings do, so that a pen's 1 written fast
    between two digits has frames of its own (docs/experiments/2026-12-07-finer-frames.md); two 1-D
    convolutions over the frames give each frame the ink of a digit either side, so that where digits touch,
    a frame sees where one ends and the next begins. Convolutions only, no recurrent layer: every frame is
    computed at once on a CPU, and any width converts to LiteRT.
    """

    def __init__(self, num_classes: int, l2: float = 0.0, width: int = 16, hidden: int = 128,
                 context: int = 2, **kwargs):
        super().__init__(**kwargs)
        reg = keras.regularizers.L2(l2) if l2 else None

        def conv(filters):
            return [keras.layers.Conv2D(filters, 3, padding='same', use_bias=False, kernel_regularizer=reg),
                    keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True), keras.layers.ReLU()]

        self.blocks = keras.Sequential(
            conv(width) + [keras.layers.MaxPooling2D(2)] + conv(2 * width)
            + [keras.layers.MaxPooling2D((2, line_format.FRAME_COLUMNS // 2))]
            + conv(4 * width) + conv(4 * width), name='blocks')  # [b, HEIGHT / 4, w / FRAME_COLUMNS, 4 width]
        self.frames = keras.layers.Dense(hidden, use_bias=False, kernel_regularizer=reg)
        self.frames_norm = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True)
        layers = []
        for _ in range(context):
            kernel = CONTEXT_COLUMNS // line_format.FRAME_COLUMNS + 1
            layers += [keras.layers.Conv1D(hidden, kernel, padding='same', use_bias=False, kernel_regularizer=reg),
                       keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True),
                       keras.layers.ReLU()]
        self.context = keras.Sequential(layers, name='context')
        self.logits = keras.layers.Dense(num_classes + 2, kernel_regularizer=reg, dtype='float32')

    def call(self, lines, training=False):
        x = self.blocks(lines, training=training)  # [b, 7, frames, c]
        x = tf.transpose(x, [0, 2, 1, 3])  # a frame per FRAME_COLUMNS columns, its column of features
        x = tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], x.shape[2] * x.shape[3]])
        x = tf.nn.relu(self.frames_norm(self.frames(x), training=training))
        return self.logits(self.context(x, training=training))  # [b, frames, classes + 2]


ARCHITECTURES = {'cnn': DigitCNN, 'simple': SimpleCNN, 'line': LineReader}
LINE_INPUT = (line_format.HEIGHT, line_format.WIDTH)  # the line reader is built on a training line


def create(arch: str, *, dataset: datasets.DatasetSpec = datasets.DATASETS[datasets.DEFAULT], l2: float = 0.0,
           precision: str = 'float32', ensemble: int = 1, **kwargs) -> keras.Model:
    """Builds architecture `arch` for dataset's images and classes, with its variables created (call inside
    strategy.scope() when distributing).

    precision: a Keras dtype policy; 'mixed_float16' computes in float16 with float32 weights (the last
    layer stays float32 so logits and the loss are float32).
    ensemble: more than 1 builds an Ensemble of that many such models.
    """
    with dtype_policy(precision):
        if ensemble == 1:
            model = ARCHITECTURES[arch](dataset.num_classes, l2=l2, name=arch, **kwargs)
        else:
            model = Ensemble([ARCHITECTURES[arch](dataset.num_classes, l2=l2, name=f'{arch}_{i}', **kwargs)
                              for i in range(ensemble)], name=arch)
        shape = LINE_INPUT if arch == 'line' else dataset.image_shape
        model(tf.zeros((1, *shape, 1)))  # Creates the variables now, before any trace.
    return model


def create_for(config, *, precision: str | None = None) -> keras.Model:
    """The model a TrainConfig describes (its architecture flags), in its precision unless given one."""
    kwargs = cnn_arguments(config) if config.arch == 'cnn' else {'width': config.width} if config.arch == 'line' else {}
    return create(config.arch, dataset=datasets.DATASETS[config.dataset], l2=config.l2,
                  precision=precision or config.precision, ensemble=config.ensemble, **kwargs)


def cnn_arguments(config) -> dict:
    """DigitCNN's shape arguments for a TrainConfig's --width, --blocks, --convs_per_block, ... flags."""
    return dict(widths=tuple(config.width * 2**i for i in range(config.blocks)),
                convs_per_block=config.convs_per_block, first_block_convs=config.first_block_convs, tta=config.tta)


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Inside: Keras' global dtype policy is `precision` (layers read it when they are built); on exit
    the previous one is back, so it never leaks to models built later."""
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
