"""The line reader's objective: CTC (Graves et al. 2006) over its frames, and exact lines as its accuracy.

The model gives every frame logits over the ten digits, NOT_A_DIGIT and the blank (the last class). A line's
label is its digits, padded with line_format.PAD; its loss is -log of the probability of every alignment of the
frames that reads exactly those digits. Reading a line greedily takes each frame's most probable class,
joins repeats and drops the blanks (digits.reading.lines does the same in numpy, with each digit's
probability and columns).
"""
import math

import tensorflow as tf

from digits.data import line_format
from digits.training import loop


def blank_of(logits: tf.Tensor) -> int:
    """The blank's class: the last of logits [b, frames, classes]."""
    return logits.shape[-1] - 1


def line_losses(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """CTC loss [b] of logits [b, frames, classes] against labels [b, max digits] (line_format.PAD after the last)."""
    logits = tf.cast(logits, tf.float32)
    frames = tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1])
    # Sparse labels run TensorFlow's CTC kernel: the dense labels' version is a graph of while loops, 3-4x
    # slower on a CPU, that the graph optimizer fails to rewrite when evaluation's batch differs from training's.
    return tf.nn.ctc_loss(sparse_labels(labels), logits, label_length=None, logit_length=frames,
                          logits_time_major=False, blank_index=blank_of(logits))


def sparse_labels(labels: tf.Tensor) -> tf.SparseTensor:
    """Labels [b, max digits] (line_format.PAD after the last) as a SparseTensor of the labels themselves."""
    where = tf.where(labels != line_format.PAD)
    return tf.SparseTensor(where, tf.gather_nd(labels, where), tf.shape(labels, out_type=tf.int64))


def greedy_decode(logits: tf.Tensor) -> tf.Tensor:
    """Each line's most probable frame by frame reading, repeats joined and blanks dropped: [b, frames] int32,
    line_format.PAD after its last class."""
    best = tf.argmax(logits, axis=-1, output_type=tf.int32)  # [b, frames]
    previous = tf.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    kept = (best != blank_of(logits)) & (best != previous)
    return tf.ragged.boolean_mask(best, kept).to_tensor(default_value=line_format.PAD, shape=tf.shape(best))


def exact_lines(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """1.0 for each line [b] read exactly (every digit and mark, nothing more), else 0.0."""
    read = greedy_decode(logits)
    frames, width = tf.shape(read)[1], tf.shape(labels)[1]
    size = tf.maximum(frames, width)
    read = tf.pad(read, [[0, 0], [0, size - frames]], constant_values=line_format.PAD)
    truth = tf.pad(labels, [[0, 0], [0, size - width]], constant_values=line_format.PAD)
    return tf.cast(tf.reduce_all(read == truth, axis=1), tf.float32)


def line_objective(num_classes: int = 10) -> loop.Objective:
    """The line reader's: CTC loss, exact lines, every line counted. It has diverged when its loss passes
    DIVERGENCE_FACTOR x that of a uniform guess on a training line's frames (every alignment of them, at most)."""
    frames, classes = line_format.WIDTH // line_format.FRAME_COLUMNS, num_classes + 2
    return loop.Objective(losses=line_losses, correct=exact_lines,
                          counted=lambda logits, labels: tf.ones([tf.shape(labels)[0]], tf.float32),
                          max_loss=loop.DIVERGENCE_FACTOR * frames * math.log(classes))
