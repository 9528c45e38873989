"""tf.data pipelines over the arrays: the training order a pure function of (seed, step), augmentation, evaluation."""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from digits.data.arrays import Split, check_batch_fits
from digits.errors import DigitsError

PARALLEL_CALLS = os.cpu_count() or 1  # batches made at once by a pipeline's map
PREFETCH = 2  # batches made ahead of the step that takes them
MEMBER_STREAM = 104729  # offsets each ensemble member's seed from the previous member's


def train_dataset_for(config, split: Split, *, start_step: int = 0,
                      input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """train_dataset with a digits.config.TrainConfig's batch, seed and augmentation.

    With --ensemble, one batch per member: images [b, members, h, w, 1], labels [b, members]. Member i
    has the seed seed + i * MEMBER_STREAM, so its own order and augmentation (member 0's batches are
    those of a single model): members that see the same batches make more of the same mistakes.
    """
    augment_steps = round(config.augment_until * config.total_steps(len(split)))
    members = [train_dataset(split, config.batch_size, config.seed + i * MEMBER_STREAM, config.augment,
                             strength=config.augment_strength, blur=config.blur, flip=config.flip,
                             augment_steps=augment_steps, start_step=start_step, input_context=input_context)
               for i in range(config.ensemble)]
    if config.ensemble == 1:
        return members[0]
    stacked = tf.data.Dataset.zip(tuple(members)).map(
        lambda *batches: tuple(tf.stack(parts, axis=1) for parts in zip(*batches)))
    return with_fixed_parallelism(stacked)


def train_dataset(split: Split, global_batch: int, seed: int, augment: bool, *, strength: float = 1.0,
                  blur: float = 0.0, flip: float = 0.0, augment_steps: int = 2**62, start_step: int = 0,
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Endless (images [b, h, w, 1] float32 in [0, 1], labels [b] int32) per-replica batches.

    augment: random affine transforms, their ranges scaled by strength (1: random_affine's); blur: the
    fraction of images also blurred (random_blur); flip: the fraction mirrored left-right (random_flip).
    Only steps before augment_steps are augmented; later ones get the images as they are.

    Global batch `step` holds examples [step * global_batch, (step + 1) * global_batch) of the
    concatenated per-epoch permutations; each input pipeline / replica takes its own rows of it.
    """
    n = len(split)
    check_batch_fits(split, global_batch)
    first = start_step * global_batch
    indices = (tf.data.Dataset.range(first // n, 2**62)
               .flat_map(lambda epoch: tf.data.Dataset.from_tensor_slices(epoch_permutation(n, seed, epoch)))
               .skip(first % n)
               .batch(global_batch, drop_remainder=True))
    batches = shard_global_batches(indices.enumerate(start_step), global_batch, input_context)
    images, labels = tf.constant(split.images), tf.constant(split.labels)

    def augment_images(x, step, row):
        # Parameters for the whole global batch, sliced to this replica's rows: the augmentation of an
        # example depends only on (seed, step, position), not on the replica layout.
        rows = slice(row, row + tf.shape(x)[0])
        if augment:
            params = tf.random.stateless_uniform([global_batch, 4], seed=[seed, step], minval=-1, maxval=1)
            x = random_affine(x, strength * params[rows])
        if blur:
            params = tf.random.stateless_uniform([global_batch, 2], seed=[seed + BLUR_STREAM, step])
            x = random_blur(x, params[rows], blur)
        if flip:
            params = tf.random.stateless_uniform([global_batch], seed=[seed + FLIP_STREAM, step])
            x = random_flip(x, params[rows], flip)
        return x

    def make_batch(step, row, idx):
        x = to_float(tf.gather(images, idx))
        if augment or blur or flip:
            x = tf.cond(step < augment_steps, lambda: augment_images(x, step, row), lambda: x)
        return x, tf.cast(tf.gather(labels, idx), tf.int32)

    return with_fixed_parallelism(batches.map(make_batch, num_parallel_calls=PARALLEL_CALLS).prefetch(PREFETCH))


def eval_dataset(split: Split, global_batch: int,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """(images, labels, weights [b] float32) per-replica batches covering every example exactly once.

    The split is padded to whole global batches so that every replica gets a full batch; padding rows
    carry weight 0, so sums weighted by `weights` count each real example once, whatever the layout.
    """
    n = len(split)
    padded = -(-n // global_batch) * global_batch
    images = tf.constant(np.concatenate([split.images, np.zeros((padded - n,) + split.images.shape[1:], np.uint8)]))
    labels = tf.constant(np.concatenate([split.labels, np.zeros((padded - n,) + split.labels.shape[1:],
                                                                split.labels.dtype)]))
    indices = tf.data.Dataset.range(padded).batch(global_batch)
    batches = shard_global_batches(indices.enumerate(), global_batch, input_context)

    def make_batch(step, row, idx):
        del step
        weights = tf.cast(idx < n, tf.float32)
        return to_float(tf.gather(images, idx)), tf.cast(tf.gather(labels, idx), tf.int32), weights

    return with_fixed_parallelism(batches.map(make_batch, num_parallel_calls=PARALLEL_CALLS).prefetch(PREFETCH))


def with_fixed_parallelism(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """dataset with tf.data's autotuner off (its map and prefetch sizes are fixed by the caller)."""
    # The autotuner's model thread can hold up the iterator's deletion at the end of training for up to
    # its optimization period, which doubles to 60 s (docs/performance.md). Fixed sizes lose nothing here:
    # the pipeline makes batches far faster than the model trains on them.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def shard_global_batches(batches: tf.data.Dataset, global_batch: int,
                         input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
    """Turns (step, global index batch) into (step, row, per-replica index batch) for this pipeline.

    tf.distribute gives consecutive elements of a pipeline to its replicas in order, so pipeline p of P,
    with R replicas each, yields rows [(p * R + r) * b, ...) for r = 0..R-1, where b is the per-replica
    batch. Sharding by rows (not by files or by example) keeps the global batch identical to one device.
    """
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    num_replicas = input_context.num_replicas_in_sync if input_context else 1
    if global_batch % num_replicas:
        raise DigitsError(f'--batch_size ({global_batch}) must be divisible by the number of replicas '
                          f'({num_replicas})')
    per_replica = global_batch // num_replicas
    replicas_here = num_replicas // num_pipelines
    first_row = pipeline_id * replicas_here * per_replica

    def split_rows(step, idx):
        rows = tf.range(replicas_here, dtype=tf.int32) * per_replica + first_row
        pieces = tf.reshape(idx[first_row:first_row + replicas_here * per_replica], [replicas_here, -1])
        return tf.data.Dataset.from_tensor_slices((tf.fill([replicas_here], step), rows, pieces))

    return batches.flat_map(split_rows)


def epoch_permutation(n: int, seed: int, epoch: tf.Tensor) -> tf.Tensor:
    """The order of epoch `epoch`: a permutation of range(n), a pure function of (seed, epoch)."""
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                    seed=tf.stack([tf.constant(seed, tf.int64), epoch]))


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 [b, h, w] -> float32 [b, h, w, 1] in [0, 1], the model's input convention."""
    return tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0


def random_affine(images: tf.Tensor, params: tf.Tensor, max_degrees: float = 10.0,
                  max_scale: float = 0.1, max_shift: float = 2.0) -> tf.Tensor:
    """Rotates, scales and shifts each image [b, h, w, 1] about its centre; params [b, 4] in [-1, 1]."""
    angle = params[:, 0] * max_degrees * np.pi / 180.0
    scale = 1.0 + params[:, 1] * max_scale
    shift_x, shift_y = params[:, 2] * max_shift, params[:, 3] * max_shift
    # The transform maps output pixel (x, y) to the input pixel it samples: inverse rotation and scale
    # about the centre c, then the inverse shift.
    height, width = images.shape[1:3]
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, sin, cx - cos * cx - sin * cy - shift_x,
                           -sin, cos, cy + sin * cx - cos * cy - shift_y, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[height, width],
        fill_value=0.0, interpolation='BILINEAR', fill_mode='CONSTANT')


BLUR_STREAM = 7919  # offsets the seed of blur's random numbers from the affine ones' (no correlation)
FLIP_STREAM = 7927  # and flip's from both
MAX_BLUR_SIGMA = 1.5  # pixels of the 28x28 image: a 200-pixel page at 4 px blur, its digit 60 px tall


def random_blur(images: tf.Tensor, params: tf.Tensor, fraction: float) -> tf.Tensor:
    """Blurs a `fraction` of images [b, h, w, 1] (Gaussian, sigma uniform in (0, MAX_BLUR_SIGMA]), each then
    rescaled so that its strongest ink is as strong as before, as digits.reading.images does with a user's image.

    params [b, 2] uniform in [0, 1): whether to blur (< fraction), and the sigma.
    """
    sigma = tf.maximum(params[:, 1] * MAX_BLUR_SIGMA, 0.05)[:, None]  # [b, 1]
    taps = tf.range(-3, 4, dtype=tf.float32)[None, :]  # a 7-tap kernel covers 2 sigma of the widest blur
    weights = tf.exp(-0.5 * (taps / sigma) ** 2)
    weights /= tf.reduce_sum(weights, axis=1, keepdims=True)  # [b, 7]
    blurred = blur_axis(blur_axis(images, weights, axis=1), weights, axis=2)
    peak = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    blurred *= peak / tf.maximum(tf.reduce_max(blurred, axis=[1, 2, 3], keepdims=True), 1e-6)
    chosen = (params[:, 0] < fraction)[:, None, None, None]
    return tf.where(chosen, blurred, images)


def random_flip(images: tf.Tensor, params: tf.Tensor, fraction: float) -> tf.Tensor:
    """Mirrors left-right the images [b, h, w, 1] whose params [b] (uniform in [0, 1)) are below fraction."""
    chosen = (params < fraction)[:, None, None, None]
    return tf.where(chosen, tf.reverse(images, axis=[2]), images)


def blur_axis(images: tf.Tensor, weights: tf.Tensor, axis: int) -> tf.Tensor:
    """Convolves each image [b, h, w, 1] along axis (1: rows, 2: columns) with its own kernel weights [b, k]."""
    radius = weights.shape[1] // 2
    padding = [[0, 0]] * 4
    padding[axis] = [radius, radius]
    padded, size = tf.pad(images, padding), images.shape[axis]
    out = tf.zeros_like(images)
    for k in range(weights.shape[1]):
        window = padded[:, k:k + size] if axis == 1 else padded[:, :, k:k + size]
        out += weights[:, k, None, None, None] * window
    return out
