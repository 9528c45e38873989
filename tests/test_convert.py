"""digits.convert and digits.litert: an export converted in each quantization, its accuracy checked
against the SavedModel's on real test images; the files read with LiteRT alone; bad input in one line."""
import os

import numpy as np
import pytest

from conftest import run_module
from digits import export, litert
from digits.errors import DigitsError


@pytest.fixture(scope='module')
def real_arrays(real_model):
    from digits import data
    return data.load('mnist_10k', real_model[0].data_dir)


@pytest.mark.parametrize('quantize', ['none', 'float16', 'int8'])
def test_each_quantization_reads_the_test_set_as_the_saved_model_does(real_model, real_arrays, tmp_path, quantize):
    cfg = real_model[0]
    output = tmp_path / f'{quantize}.tflite'
    proc = run_module('digits.convert', f'--model={cfg.export_dir}', f'--output={output}', f'--quantize={quantize}',
                      f'--data_dir={cfg.data_dir}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f'LiteRT ({quantize})' in proc.stdout and f'wrote {output}' in proc.stdout
    lite, _ = litert.accuracy(litert.load(str(output)), real_arrays.test.images, real_arrays.test.labels)
    module = export.load(cfg.export_dir)
    saved, _ = litert.accuracy(lambda x: {'probabilities': module.serve(x)['probabilities'].numpy()},
                               real_arrays.test.images, real_arrays.test.labels)
    assert abs(lite - saved) * 100 <= litert.TOLERANCE_POINTS[quantize] and saved > 0.95
    assert f'{100 * lite:.2f}%, SavedModel {100 * saved:.2f}%' in proc.stdout
    if quantize == 'int8':  # a quarter of the float32 weights' bytes, and more than that of the file
        assert os.path.getsize(output) <= 0.35 * len(litert.convert(module, (28, 28), 'none'))


def test_a_file_reads_batches_of_any_size_with_both_outputs(real_model, tmp_path):
    module = export.load(real_model[0].export_dir)
    model = litert.LiteModel(litert.convert(module, (28, 28), 'none'), 'test')
    pixels = np.random.default_rng(0).random((5, 28, 28)).astype(np.float32)
    want = module.serve(pixels)
    for batch in (pixels[:1], pixels):
        got = model(batch)
        assert sorted(got) == ['logits', 'probabilities']
        np.testing.assert_allclose(got['probabilities'], want['probabilities'].numpy()[:len(batch)], atol=1e-5)


def test_a_file_that_is_not_a_digits_model_is_refused(tmp_path):
    path = tmp_path / 'not.tflite'
    path.write_bytes(b'not a flatbuffer at all')
    with pytest.raises(DigitsError, match=r'is not a LiteRT model'):
        litert.load(str(path))
    with pytest.raises(DigitsError, match='cannot be read'):
        litert.load(str(tmp_path / 'missing.tflite'))


@pytest.mark.parametrize('args,message', [
    (['--output=x.tflite'], '--model is required'),
    (['--model=m', '--output=x.onnx'], '--output (x.onnx) must name a .tflite file'),
    (['--model=m', '--output=x.tflite', '--quantize=int8'], '--quantize=int8 calibrates on training images'),
    (['--model=m', '--output=x.tflite', '--quantize=int4'], '--quantize=int4: value should be one of'),
    (['--model=/nonexistent', '--output=x.tflite'], '--model (/nonexistent) is not an exported SavedModel')])
def test_usage_errors_are_one_line(args, message):
    proc = run_module('digits.convert', *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], lines
