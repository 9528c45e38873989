"""digits.serving.tf_serving: paths, request checks and answers of TF Serving's API, in-process."""
import os
import shutil

import numpy as np
import pytest

from digits.errors import DigitsError
from digits.serving import tf_serving


@pytest.mark.parametrize('path,parsed', [
    ('/v1/models/digits', ('digits', None, None, 'status')),
    ('/v1/models/digits/versions/12/metadata', ('digits', 12, None, 'metadata')),
    ('/v1/models/digits/labels/stable:predict', ('digits', None, 'stable', 'predict')),
    ('/v1/models/mnist:Classify', ('mnist', None, None, 'classify')),
    ('/v1/models/digits/versions/x', None), ('/v1/models/digits:explain', None), ('/v1/models', None)])
def test_rest_paths_are_read_as_tf_serving_reads_them(path, parsed):
    assert tf_serving.parse_rest_path(path) == parsed


def test_a_base_path_serves_its_highest_version(smoke_run, tmp_path):
    base = tmp_path / 'base'
    for version in ('1', '10', '9'):
        shutil.copytree(smoke_run[0].export_dir, base / version)
    os.makedirs(base / '11')  # no saved_model.pb: not a version
    os.makedirs(base / 'latest')
    servable = tf_serving.find_servable(str(base), ('stable',))
    assert servable.version == 10 and servable.export_dir == str(base / '10')
    assert set(servable.signature_defs.signature_def) >= {'serving_default', 'serving_uint8'}
    assert tf_serving.find_servable(smoke_run[0].export_dir, ()).version == 1
    with pytest.raises(DigitsError, match=r'nor a TF Serving base path \(<base>/<version>/saved_model.pb\)'):
        tf_serving.find_servable(str(base / '11'), ())


@pytest.mark.parametrize('name,version,label,code', [
    ('digits', None, None, None), ('digits', 1, None, None), ('digits', None, 'stable', None),
    ('mnist', None, None, 'NOT_FOUND'), ('digits', 2, None, 'NOT_FOUND'), ('digits', None, 'canary', 'NOT_FOUND'),
    ('digits', 1, 'stable', 'INVALID_ARGUMENT')])
def test_only_this_model_and_version_are_found(name, version, label, code):
    servable = tf_serving.Servable('unused', 1, ('stable',), None)
    if code is None:
        tf_serving.check_model(servable, name, version, label)
    else:
        with pytest.raises(tf_serving.ServingError) as error:
            tf_serving.check_model(servable, name, version, label)
        assert error.value.code == code


def test_pixels_are_checked_against_the_signature_and_given_as_the_model_takes_them():
    uint8, floats = tf_serving.SIGNATURES['serving_uint8'], tf_serving.SIGNATURES['serving_default']
    pixels = np.arange(2 * 28 * 28).reshape(2, 28, 28, 1) % 256
    got = tf_serving.check_pixels(pixels, uint8)
    assert got.dtype == np.float32 and got.shape == (2, 28, 28)
    np.testing.assert_array_equal(got, (pixels[..., 0] / 255).astype(np.float32))
    assert tf_serving.check_pixels(got, floats) is not None
    for bad, signature, message in [(pixels % 255 + 0.5, uint8, 'integers 0-255'), (pixels * 2, uint8, r'\[0, 255\]'),
                                    (got + 1, floats, r'\[0, 1\]'), (got * np.nan, floats, r'\[0, 1\]'),
                                    (got[:, :14], floats, r'shape \[2, 14, 28\]'), (got[:0], floats, '0 images')]:
        with pytest.raises(tf_serving.ServingError, match=message):
            tf_serving.check_pixels(bad, signature)


def test_row_and_columnar_answers_have_tf_servings_shape():
    outputs = {'probabilities': np.eye(2, 3), 'logits': np.ones((2, 3))}
    rows = tf_serving.rest_predict_answer(outputs, 'row')['predictions']
    assert rows == [{'logits': [1, 1, 1], 'probabilities': [1, 0, 0]},
                    {'logits': [1, 1, 1], 'probabilities': [0, 1, 0]}]
    assert tf_serving.rest_predict_answer(outputs, 'columnar') == {'outputs': {'logits': np.ones((2, 3)).tolist(),
                                                                              'probabilities': np.eye(2, 3).tolist()}}


def test_a_body_names_one_format_and_known_inputs():
    image = np.zeros((28, 28)).tolist()
    signature, pixels, format_ = tf_serving.parse_rest_predict({'signature_name': 'serving_uint8', 'inputs': [image]})
    assert (signature.name, pixels.shape, format_) == ('serving_uint8', (1, 28, 28), 'columnar')
    for body, message in [([image], 'JSON object'), ({'instances': [image], 'inputs': [image]}, 'one of'),
                          ({'instances': []}, 'non-empty'), ({'instances': [{'pixels': image}]}, 'one input'),
                          ({'instances': [True]}, 'numbers'), ({'instances': [image, [[0]]]}, 'numbers')]:
        with pytest.raises(tf_serving.ServingError, match=message):
            tf_serving.parse_rest_predict(body)
