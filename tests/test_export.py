"""digits.export.saved_model: the serving signatures on uint8 and float inputs, with and without the channel axis."""
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits

from digits.errors import DigitsError
from digits.export import saved_model
from digits.training import model


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    net = model.create('simple')
    path = str(tmp_path_factory.mktemp('export') / 'm')
    saved_model.save(net, path, (28, 28))
    return net, path


def test_signatures_on_uint8_and_float(exported):
    net, path = exported
    images = make_digits(6, 3)[0]  # uint8 [6, 28, 28]
    expected = tf.nn.softmax(net(images[..., None] / 255.0, training=False)).numpy()
    loaded = tf.saved_model.load(path)
    outputs = [
        loaded.signatures['serving_default'](images=tf.constant(images / 255.0, tf.float32)),
        loaded.signatures['serving_default'](images=tf.constant(images[..., None] / 255.0, tf.float32)),
        loaded.signatures['serving_uint8'](images=tf.constant(images)),
        loaded.signatures['serving_uint8'](images=tf.constant(images[..., None])),
        loaded.serve(tf.constant(images)),
        loaded.serve(tf.constant(images / 255.0, tf.float32)),
    ]
    for out in outputs:
        probs = out['probabilities'].numpy()
        assert probs.shape == (6, 10)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_export_replaces_a_previous_one_whole(exported, tmp_path):
    net, _ = exported
    path = str(tmp_path / 'm')
    saved_model.save(net, path, (28, 28))
    saved_model.save(net, path, (28, 28))
    assert sorted(os.listdir(tmp_path)) == ['m']


def test_load_rejects_a_non_export(tmp_path):
    with pytest.raises(DigitsError, match='is not an exported SavedModel'):
        saved_model.load(str(tmp_path))
