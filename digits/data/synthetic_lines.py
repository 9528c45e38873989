"""Lines of digits for the line reader, composed on the fly from single digits and marks that are not digits.

A line is HEIGHT pixels tall, its digits about BOX (MNIST's 20-pixel box) high, as the reader normalises a
line it reads (digits.data.line_format, digits.reading.lines). Each line holds 1-MAX_DIGITS digits of the
training set side by side, spaced or written fast (touching, crossing into each other), of different
heights, baselines, widths and slants, sometimes with marks that are not digits among them or alone, then
thickened, thinned or blurred as pens and cameras do, on paper not always quite clean. Its label is the
digits left to right, NOT_A_DIGIT for a mark, padded with PAD.

Every line is a pure function of (seed, step, its row in the global batch), so a resumed run composes the
lines it would have composed, and 1 or N replicas see the same global batch (pipeline.shard_global_batches).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from digits.data import pipeline
from digits.data.arrays import Split
from digits.data.line_format import BOX, HEIGHT, MAX_DIGITS, NOT_A_DIGIT, PAD, WIDTH

EVAL_LINES = 1000  # lines in the line reader's evaluation and test sets (fixed_lines)
LINE_STREAM = 15485863  # offsets the lines' random numbers from the digit pipeline's
MARK_SHARE = 0.08  # of the slots: a mark that is not a digit
MARKS_ONLY = 0.04  # of the lines: marks alone (a word, signs), no digit


def line_params(seed: int, step, global_batch: int) -> dict:
    """The random choices of one global batch of lines, {name: [global_batch, ...] float32 in [0, 1)}."""
    per_slot = tf.random.stateless_uniform([global_batch, MAX_DIGITS, 8], seed=[seed + LINE_STREAM, step])
    per_line = tf.random.stateless_uniform([global_batch, 13], seed=[seed + LINE_STREAM + 1, step])
    return {'slot': per_slot, 'line': per_line}


def compose_lines(params: dict, digits: tf.Tensor, boxes: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Lines [b, HEIGHT, WIDTH, 1] float32 in [0, 1] and their labels [b, MAX_DIGITS] int32 (PAD after the
    last), from params (line_params' rows of this replica), the sources uint8 [n, 28, 28] (the digits, then
    the marks), their ink boxes [n, 4] float32 (x0, y0, x1, y1) and labels [n] int32 (NOT_A_DIGIT: a mark)."""
    slot, line = params['slot'], params['line']
    b = tf.shape(slot)[0]
    chosen = choose_sources(slot, line, labels)
    box = tf.gather(boxes, chosen)  # [b, k, 4]
    label = tf.gather(labels, chosen)
    size = BOX * (0.85 + 0.25 * line[:, 0:1])  # the line's tallest digits, 17-22 px
    ink_h, ink_w = box[..., 3] - box[..., 1], box[..., 2] - box[..., 0]
    mark = label == NOT_A_DIGIT
    height = size * (0.8 + 0.2 * slot[..., 1])
    scale_y = tf.where(mark, size / BOX * (0.5 + 0.5 * slot[..., 1]), height / tf.maximum(ink_h, 1.0))
    scale_x = scale_y * (0.8 + 0.4 * line[:, 1:2]) * (0.9 + 0.2 * slot[..., 2])
    width = ink_w * scale_x
    gap = slot_gaps(slot, line, size, width)
    left = 1.0 + 8.0 * line[:, 3:4] + tf.math.cumsum(width + gap, axis=1, exclusive=True)
    count = 1 + tf.cast(line[:, 4:5] * MAX_DIGITS, tf.int32)  # digits this line holds, 1-MAX_DIGITS
    inside = (tf.range(MAX_DIGITS)[None] < count) & (left + width <= WIDTH - 1)
    centre_y = HEIGHT / 2 + (line[:, 5:6] - 0.5) * 2.0 + (slot[..., 4] - 0.5) * 0.12 * size
    slant = (line[:, 6:7] - 0.5) * 0.5  # x moves by slant per row above the centre
    top = centre_y - ink_h * scale_y / 2
    transforms = placement(box, scale_x, scale_y, left, top, slant, centre_y)
    sources = tf.cast(tf.gather(digits, tf.reshape(chosen, [-1])), tf.float32)[..., None] / 255.0
    placed = tf.raw_ops.ImageProjectiveTransformV3(
        images=sources, transforms=tf.reshape(transforms, [-1, 8]), output_shape=[HEIGHT, WIDTH],
        fill_value=0.0, interpolation='BILINEAR', fill_mode='CONSTANT')
    placed = tf.reshape(placed, [b, MAX_DIGITS, HEIGHT, WIDTH]) * tf.cast(inside, tf.float32)[..., None, None]
    images = tf.reduce_max(placed, axis=1)[..., None]
    return pen_and_camera(images, line), tf.where(inside, label, PAD)


def choose_sources(slot: tf.Tensor, line: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Which source each slot [b, k] writes: if there are marks (the sources after the digits), a mark in
    MARK_SHARE of the slots and in every slot of MARKS_ONLY of the lines; else a digit."""
    num_digits = tf.reduce_sum(tf.cast(labels != NOT_A_DIGIT, tf.int32))
    num_marks = tf.shape(labels)[0] - num_digits
    digit = tf.cast(slot[..., 0] * tf.cast(num_digits, tf.float32), tf.int32)
    mark = num_digits + tf.cast(slot[..., 0] * tf.cast(num_marks, tf.float32), tf.int32)
    marked = (slot[..., 5] < MARK_SHARE) | (line[:, 10:11] < MARKS_ONLY)
    return tf.where(marked & (num_marks > 0), mark, digit)


def slot_gaps(slot: tf.Tensor, line: tf.Tensor, size: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Paper between each digit and the next [b, k]: on a line written fast (half of them) the digits touch
    or cross, -30% to +5% of the line's height; otherwise 5-50%, and up to 150% on a fifth of the lines
    (digits written far apart). Never so negative that a digit's centre passes its neighbour's, so the
    label's order stays the order of the ink."""
    fast = line[:, 2:3] < 0.5
    widest = tf.where(line[:, 12:13] < 0.2, 1.5, 0.5)
    gap = tf.where(fast, (-0.3 + 0.35 * slot[..., 3]) * size, (0.05 + (widest - 0.05) * slot[..., 3]) * size)
    following = tf.concat([width[:, 1:], width[:, -1:]], axis=1)
    return tf.maximum(gap, -0.45 * tf.minimum(width, following))


def placement(box, scale_x, scale_y, left, top, slant, centre_y) -> tf.Tensor:
    """ImageProjectiveTransformV3's transforms [b, k, 8]: each output pixel (x, y) of the line samples its
    source at ((x - left + slant (y - centre_y)) / scale_x + x0, (y - top) / scale_y + y0)."""
    ax = 1.0 / scale_x
    zeros = tf.zeros_like(ax)
    slant = tf.broadcast_to(slant, tf.shape(ax))
    return tf.stack([ax, slant * ax, box[..., 0] - (left + slant * centre_y) * ax,
                     zeros, 1.0 / scale_y, box[..., 1] - top / scale_y, zeros, zeros], axis=-1)


def pen_and_camera(images: tf.Tensor, line: tf.Tensor) -> tf.Tensor:
    """Each line [b, h, w, 1] drawn with a thicker pen (a fifth), a finer one (a fifth), or as it is; a third
    of them blurred; rescaled so that its strongest ink is 1 (as the reader does); a quarter on paper that
    is not quite clean (a faint level of up to 0.15 under the ink: what evening the light leaves)."""
    thicker = tf.nn.max_pool2d(images, 3, 1, 'SAME')
    finer = 0.5 * images + 0.5 * -tf.nn.max_pool2d(-images, 2, 1, 'SAME')
    pen = line[:, 7, None, None, None]
    images = tf.where(pen < 0.2, thicker, tf.where(pen < 0.4, finer, images))
    images = pipeline.random_blur(images, tf.stack([line[:, 8], line[:, 9]], axis=1), 1 / 3)
    peak = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    images = tf.clip_by_value(images / tf.maximum(peak, 1e-6), 0.0, 1.0)
    level = tf.where(line[:, 11] < 0.25, line[:, 11] / 0.25 * 0.15, 0.0)[:, None, None, None]
    return images + (1.0 - images) * level


def ink_boxes(images: np.ndarray, threshold: int = 64) -> np.ndarray:
    """Each uint8 image's [n, h, w] box of ink (x0, y0, x1, y1) float32, half-open; the whole frame if blank."""
    ink = images > threshold
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    h, w = images.shape[1:]
    first = lambda a, n: np.where(a.any(axis=1), a.argmax(axis=1), 0)
    last = lambda a, n: np.where(a.any(axis=1), n - a[:, ::-1].argmax(axis=1), n)
    return np.stack([first(cols, w), first(rows, h), last(cols, w), last(rows, h)], axis=1).astype(np.float32)


def train_dataset(sources: Split, global_batch: int, seed: int, *, start_step: int = 0,
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Endless (lines [b, HEIGHT, WIDTH, 1], labels [b, MAX_DIGITS]) per-replica batches composed from
    sources (digits and marks, uint8 [n, 28, 28], labels with NOT_A_DIGIT for marks)."""
    positions = tf.data.Dataset.from_tensors(tf.range(global_batch, dtype=tf.int64)).repeat()
    batches = pipeline.shard_global_batches(positions.enumerate(start_step), global_batch, input_context)
    digits, boxes = tf.constant(sources.images), tf.constant(ink_boxes(sources.images))
    labels = tf.constant(sources.labels.astype(np.int32))

    def make_batch(step, row, rows):
        del row
        params = {k: tf.gather(v, rows) for k, v in line_params(seed, step, global_batch).items()}
        return compose_lines(params, digits, boxes, labels)

    return pipeline.with_fixed_parallelism(
        batches.map(make_batch, num_parallel_calls=pipeline.PARALLEL_CALLS).prefetch(pipeline.PREFETCH))


def fixed_lines(sources: Split, count: int, seed: int) -> Split:
    """`count` lines composed once (uint8 [count, HEIGHT, WIDTH], labels int32 [count, MAX_DIGITS]): an
    evaluation set, the same for every run with this seed."""
    params = line_params(seed, 0, count)
    images, labels = compose_lines(params, tf.constant(sources.images), tf.constant(ink_boxes(sources.images)),
                                   tf.constant(sources.labels.astype(np.int32)))
    return Split(np.round(images.numpy()[..., 0] * 255).astype(np.uint8), labels.numpy())
