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


def save(model: keras.Model, export_dir: str, image_shape: tuple[int, int]):
    """Exports `model` (taking images of image_shape) to export_dir, replacing what is there only once
    the new export is complete."""
    classifier = Classifier(model, image_shape)
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


def load(export_dir: str) -> tf.Module:
    """Loads an export; its .serve(images) -> {'probabilities', 'logits'} takes either dtype."""
    if not os.path.isfile(os.path.join(export_dir, 'saved_model.pb')):
        raise DigitsError(f'--model ({export_dir}) is not an exported SavedModel (no saved_model.pb)')
    return tf.saved_model.load(export_dir)
