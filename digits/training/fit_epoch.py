"""The fit-epoch: the unit of machine speed that recipe times are stated in.

One fit-epoch is the seconds Keras `model.fit` takes for one epoch of 10,000 images on the keras.io "Simple
MNIST convnet" (batch 128, Adam, NumPy arrays, as keras.io calls it), in steady state, on this machine.
Machines of the same kind differ 3-4x in speed; a recipe's wall seconds divided by this unit, measured
on the same machine in the same session, is comparable across them.
"""
import statistics
import time

import keras
import numpy as np

from digits.training import model as model_lib

IMAGES = 10_000  # one epoch of mnist_10k's training set
BATCH_SIZE = 128


def keras_io_convnet(precision: str = 'float32') -> keras.Model:
    """https://keras.io/examples/vision/mnist_convnet/, layer for layer (the `simple` model), built under
    the dtype policy `precision` with the softmax in float32, as Keras' mixed-precision guide does."""
    with model_lib.dtype_policy(precision):
        return keras.Sequential([
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation='relu'),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation='relu'),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation='softmax', dtype='float32'),
        ])


class EpochClock(keras.callbacks.Callback):
    """Seconds of each epoch of a fit call, as Keras' own progress bar counts them."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def measure_seconds(images: np.ndarray, labels: np.ndarray, *, epochs: int = 6, num_images: int = IMAGES) -> float:
    """Seconds of one fit-epoch: the median epoch of one fit call after its first (tracing) epoch.

    images: uint8 [n, 28, 28], tiled or cut to num_images (the convnet's cost does not depend on the
    pixels); with num_images below IMAGES (tests) the time is scaled up to IMAGES.
    """
    index = np.arange(num_images) % len(images)
    x = images[index, ..., None].astype(np.float32) / 255.0  # [n, 28, 28, 1], as keras.io prepares it
    y = labels[index].astype(np.int32) % 10
    model = keras_io_convnet()
    model.compile(loss='sparse_categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
    clock = EpochClock()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, callbacks=[clock])
    return statistics.median(clock.seconds[1:]) * IMAGES / num_images
