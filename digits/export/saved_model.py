"""The exported SavedModel: images in, softmax probabilities out.

A SavedModel signature has one input dtype, so the export carries two:
  serving_default  images float32 in [0, 1]   shape [N, h, w] or [N, h, w, 1] (28x28 for MNIST)
  serving_uint8    images uint8 in [0, 255]   same shapes
Both return {'probabilities': [N, classes], 'logits': [N, classes]} (with --tta or --ensemble, logits are the
log of the probabilities averaged over the shifted copies or the members: their softmax is still the
probabilities). From Python, `tf.saved_model.load(dir).serve` accepts either dtype (it is one tf.function
traced for both).
"""
import os
import shutil
import uuid

import keras
import tensorflow as tf

from digits.data import line_format
from digits.errors import DigitsError
from digits.export.signatures import SIGNATURES


class Classifier(tf.Module):
    """Wraps a logits model with the input conventions of the export."""

    def __init__(self, model: keras.Model, image_shape: tuple[int, int]):
        super().__init__()
        self.model, self.image_shape = model, tuple(image_shape)

    @tf.function
    def serve(self, images):
        """images: [N, h, w] or [N, h, w, 1], uint8 0-255 or float 0-1."""
        x = tf.cast(images, tf.float32)
        if images.dtype == tf.uint8:
            x = x / 255.0
        logits = tf.cast(self.model(tf.reshape(x, [-1, *self.image_shape, 1]), training=False), tf.float32)
        return {'probabilities': tf.nn.softmax(logits), 'logits': logits}


class LineReader(tf.Module):
    """Wraps the line reader with the input conventions of the export: lines [N, line_format.HEIGHT, w] or
    [N, line_format.HEIGHT, w, 1] of any width w (a multiple of 4), uint8 0-255 or float 0-1 -> {'probabilities',
    'logits'} [N, w / FRAME_COLUMNS, classes + 2], a frame every FRAME_COLUMNS columns (digits.training.ctc)."""

    def __init__(self, model: keras.Model):
        super().__init__()
        self.model = model

    @tf.function
    def serve(self, lines):
        x = tf.cast(lines, tf.float32)
        if lines.dtype == tf.uint8:
            x = x / 255.0
        x = tf.reshape(x, [tf.shape(x)[0], line_format.HEIGHT, -1, 1])
        logits = tf.cast(self.model(x, training=False), tf.float32)
        return {'probabilities': tf.nn.softmax(logits), 'logits': logits}


def save(model: keras.Model, export_dir: str, image_shape: tuple[int, int] | None):
    """Exports `model` (taking images of image_shape; None: the line reader, taking lines) to export_dir,
    replacing what is there only once the new export is complete."""
    classifier = Classifier(model, image_shape) if image_shape else LineReader(model)
    signatures = {name: classifier.serve.get_concrete_function(tf.TensorSpec(None, signature.dtype, 'images'))
                  for name, signature in SIGNATURES.items()}
    parent = os.path.dirname(os.path.abspath(export_dir))
    staging = os.path.join(parent, f'.{os.path.basename(export_dir)}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        os.makedirs(parent, exist_ok=True)
        tf.saved_model.save(classifier, staging, signatures=signatures)
        replace_dir(staging, export_dir)
    except (OSError, tf.errors.OpError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise DigitsError(f'cannot write the export to --export_dir ({export_dir}): '
                          f'{getattr(e, "strerror", None) or e}') from None


def replace_dir(source: str, target: str):
    """Moves directory source to target; an existing target is swapped out, then deleted."""
    old = None
    if os.path.exists(target):
        old = f'{target}.{uuid.uuid4().hex[:8]}.old'
        os.rename(target, old)
    os.rename(source, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


LATEST = 'latest'  # models/latest: the newest export beside it, for commands that follow a run


def link_latest(export_dir: str):
    """Points <parent of export_dir>/latest at export_dir (atomically), unless a real file or folder has
    that name."""
    link = os.path.join(os.path.dirname(os.path.abspath(export_dir)), LATEST)
    if os.path.basename(os.path.abspath(export_dir)) == LATEST or (os.path.exists(link) and not os.path.islink(link)):
        return
    staging = f'{link}.{uuid.uuid4().hex[:8]}.tmp'
    os.symlink(os.path.basename(os.path.abspath(export_dir)), staging)
    os.replace(staging, link)


def load(export_dir: str, lines: bool = False) -> tf.Module:
    """Loads an export; its .serve(images) -> {'probabilities', 'logits'} takes either dtype. lines: the
    export is a line reader's (LineReader), which reads lines, not digits; DigitsError if it is not."""
    if not os.path.isfile(os.path.join(export_dir, 'saved_model.pb')):
        raise DigitsError(f'--model ({export_dir}) is not an exported SavedModel (no saved_model.pb)')
    module = tf.saved_model.load(export_dir)
    if reads_lines(module) != lines:
        raise DigitsError(f'--model ({export_dir}) is a line reader\'s export: give the export that holds it, '
                          f'{os.path.dirname(os.path.abspath(export_dir))}' if not lines else
                          f'{export_dir} is not a line reader\'s export (digits.train --arch=line makes one)')
    return module


def reads_lines(module) -> bool:
    """Whether a loaded export is a line reader's: its probabilities are per frame, [n, frames, classes]."""
    return module.signatures['serving_default'].structured_outputs['probabilities'].shape.rank == 3
