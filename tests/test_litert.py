"""digits.convert and digits.export.litert: an export converted in each quantization, its accuracy checked
against the SavedModel's on real test images; the files read with LiteRT alone; bad input in one line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_module
from PIL import Image

from digits import config
from digits.errors import DigitsError
from digits.export import litert, saved_model
from digits.reading import drawing, prediction
from support import synthetic


@pytest.fixture(scope='module')
def real_arrays(real_model):
    from digits.data import arrays
    return arrays.load('mnist_10k', real_model[0].data_dir)


@pytest.fixture(scope='module')
def saved_accuracy(real_model, real_arrays) -> float:
    """The export's own test accuracy, every file's reference."""
    module = saved_model.load(real_model[0].export_dir)
    return litert.accuracy(lambda x: {'probabilities': module.serve(x)['probabilities'].numpy()},
                           real_arrays.test.images, real_arrays.test.labels)[0]


@pytest.mark.parametrize('quantize', ['none', 'float16', 'int8'])
def test_each_quantization_reads_the_test_set_as_the_saved_model_does(real_model, real_arrays, saved_accuracy,
                                                                      lite_file, tmp_path, quantize):
    cfg, lines = real_model[0], []
    output = tmp_path / f'{quantize}.tflite'
    figures = litert.convert_export(config.ConvertConfig(cfg.export_dir, str(output), quantize, data_dir=cfg.data_dir),
                                    log=lines.append)
    lite, _ = litert.accuracy(litert.load(str(output)), real_arrays.test.images, real_arrays.test.labels)
    assert figures['saved_model_accuracy'] == saved_accuracy > 0.95 and figures['litert_accuracy'] == lite
    assert abs(lite - saved_accuracy) * 100 <= litert.TOLERANCE_POINTS[quantize]
    assert f'LiteRT ({quantize}) {100 * lite:.2f}%, SavedModel {100 * saved_accuracy:.2f}%' in lines[0]
    if quantize == 'int8':  # weights of a quarter of the bytes
        assert os.path.getsize(output) <= 0.35 * os.path.getsize(lite_file)


def test_the_command_converts_and_says_what_it_checked(real_model, tmp_path):
    cfg = real_model[0]
    output = tmp_path / 'digits.tflite'
    proc = run_module('digits.convert', f'--model={cfg.export_dir}', f'--output={output}', '--quantize=float16',
                      f'--data_dir={cfg.data_dir}')
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr[-2000:]
    assert 'LiteRT (float16)' in proc.stdout and f'wrote {output}' in proc.stdout and output.stat().st_size > 0


def test_a_file_beyond_the_tolerance_is_not_written(real_model, tmp_path, monkeypatch):
    """With no difference allowed at all (a negative tolerance), even a faithful file is refused."""
    cfg = real_model[0]
    monkeypatch.setitem(litert.TOLERANCE_POINTS, 'none', -1.0)
    output = tmp_path / 'refused.tflite'
    with pytest.raises(DigitsError, match=r'beyond the -1.0 points allowed for --quantize=none: not written'):
        litert.convert_export(config.ConvertConfig(cfg.export_dir, str(output), 'none', data_dir=cfg.data_dir),
                              log=lambda line: None)
    assert not output.exists()


def test_a_file_reads_batches_of_any_size_with_both_outputs(real_model, tmp_path):
    module = saved_model.load(real_model[0].export_dir)
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


def test_predict_refuses_what_is_not_a_digits_tflite_in_one_line(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32], tf.float32, name='images')])
    def other(images):
        return {'probabilities': tf.nn.softmax(tf.reduce_mean(images, axis=2)[:, :10])}

    wrong_shape = tmp_path / 'wrong.tflite'
    converter = tf.lite.TFLiteConverter.from_concrete_functions([other.get_concrete_function()], tf.Module())
    wrong_shape.write_bytes(converter.convert())
    not_lite = tmp_path / 'text.tflite'
    not_lite.write_text('not a model')
    for model, message in ((wrong_shape, 'takes images of shape [32, 32]; a digits .tflite takes [n, 28, 28]'),
                           (not_lite, 'is not a LiteRT model')):
        proc = run_module('digits.predict', f'--model={model}', 'docs/images/seven.png',
                          env=without_tensorflow(tmp_path))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], lines


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


@pytest.fixture(scope='module')
def lite_file(real_model, tmp_path_factory) -> str:
    """The real-data model as a float32 .tflite file."""
    path = tmp_path_factory.mktemp('lite') / 'digits.tflite'
    path.write_bytes(litert.convert(saved_model.load(real_model[0].export_dir), (28, 28), 'none'))
    return str(path)


def without_tensorflow(tmp_path) -> dict:
    """An environment in which `import tensorflow` fails, as where it is not installed."""
    blocker = tmp_path / 'no_tensorflow' / 'tensorflow'
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / '__init__.py').write_text("raise ImportError('No module named tensorflow (blocked by the test)')\n")
    return {'PYTHONPATH': str(blocker.parent)}


def test_predict_reads_a_tflite_file_without_tensorflow(real_model, real_arrays, lite_file, tmp_path):
    """The same digits read from the same files as the export reads them, with TensorFlow unimportable."""
    files = []
    for i, body in enumerate(synthetic.png_digits(real_arrays.test.images[:6])):
        files.append(tmp_path / f'{i}.png')
        files[-1].write_bytes(body)
    out = {}
    ways = (('lite', lite_file, without_tensorflow(tmp_path)), ('saved', real_model[0].export_dir, {}))
    for name, model, env in ways:
        proc = run_module('digits.predict', f'--model={model}', f'--output_json={tmp_path / name}.json',
                          *map(str, files), env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[name] = json.loads((tmp_path / f'{name}.json').read_text())
    assert [p['text'] for p in out['lite']] == [p['text'] for p in out['saved']]
    for lite, saved in zip(out['lite'], out['saved']):
        assert lite['probability'] == pytest.approx(saved['probability'], abs=1e-4)


def test_evaluate_reads_a_tflite_file_without_tensorflow(real_model, lite_file, saved_accuracy, tmp_path):
    out = tmp_path / 'metrics.json'
    proc = run_module('digits.evaluate', f'--model={lite_file}', f'--data_dir={real_model[0].data_dir}',
                      f'--output_json={out}', env=without_tensorflow(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads(out.read_text())
    assert metrics['num_examples'] == 10000 and abs(metrics['accuracy'] - saved_accuracy) <= 0.0002
    assert f'test accuracy {100 * metrics["accuracy"]:.2f}%' in proc.stdout and proc.stderr == ''


def test_serve_answers_from_a_tflite_file_without_tensorflow(real_model, real_arrays, lite_file, tmp_path):
    """The page's API and TF Serving's REST predict, from LiteRT alone; metadata says why it has none."""
    import urllib.error
    import urllib.request

    from support import traffic
    proc, url, _ = traffic.start_server(lite_file, env=without_tensorflow(tmp_path))
    try:
        lite = litert.load(lite_file)
        pixels = real_arrays.test.images[:3]
        body = json.dumps({'signature_name': 'serving_uint8', 'instances': pixels.tolist()}).encode()
        with urllib.request.urlopen(urllib.request.Request(url + '/v1/models/digits:predict', data=body)) as r:
            got = [p['probabilities'] for p in json.loads(r.read())['predictions']]
        np.testing.assert_allclose(got, lite(pixels)['probabilities'], atol=1e-6)
        png = synthetic.png_digits(pixels[:1])[0]
        with urllib.request.urlopen(urllib.request.Request(url + '/api/predict', data=png)) as r:
            assert json.loads(r.read())['text'] == str(real_arrays.test.labels[0])
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url + '/v1/models/digits/metadata')
        assert error.value.code == 501 and 'LiteRT file' in json.loads(error.value.read())['error']
    finally:
        stdout, stderr = traffic.stop_server(proc)
    assert 'digits.serve: stopped' in stdout and 'Traceback' not in stderr, stderr[-2000:]


def test_the_python_reader_reads_a_tflite_file_without_tensorflow(real_model, lite_file, tmp_path):
    """digits.Reader.load on a .tflite, with TensorFlow unimportable, reads '2026' written with the page's pen
    as digits.Reader on the export does."""
    page = np.concatenate([drawing.render_strokes(drawing.STROKES[d], 16) for d in (2, 0, 2, 6)], axis=1)
    path = str(tmp_path / 'year.png')
    Image.fromarray((page[..., 0] * 255).astype(np.uint8)).save(path)
    code = ('import json, sys; import digits; reading = digits.Reader.load(sys.argv[1]).read(sys.argv[2]); '
            "assert 'tensorflow' not in sys.modules; print(json.dumps(reading))")
    env = {**os.environ, **without_tensorflow(tmp_path)}
    proc = subprocess.run([sys.executable, '-c', code, lite_file, path], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lite = json.loads(proc.stdout.strip().splitlines()[-1])
    saved = prediction.Reader.load(real_model[0].export_dir).read(path)
    assert lite['text'] == saved['text'] and [d['box'] for d in lite['digits']] == [d['box'] for d in saved['digits']]


def test_the_line_reader_converts_beside_the_digit_model_and_reads_as_its_export(line_export, tmp_path):
    """digits.convert on an export holding a line reader also writes FILE.lines.tflite, checked on the test
    lines; its frames are the SavedModel's for lines of any width."""
    cfg, lines = line_export[0], []
    output = tmp_path / 'digits.tflite'
    figures = litert.convert_export(config.ConvertConfig(cfg.export_dir, str(output), 'none', data_dir=cfg.data_dir),
                                    log=lines.append)
    line = figures[config.LINE_READER]
    assert litert.line_reader_file(str(output)) == str(tmp_path / 'digits.lines.tflite')
    assert os.path.isfile(tmp_path / 'digits.lines.tflite')
    assert abs(line['litert_exact_lines'] - line['saved_model_exact_lines']) <= 0.001  # a line of 1,000 at most
    assert any(text.startswith('digits.convert: the line reader reads 1000 test lines exactly') for text in lines)
    module = saved_model.load(os.path.join(cfg.export_dir, config.LINE_READER), lines=True)
    lite = litert.load(litert.line_reader_file(str(output)), lines=True)
    rng = np.random.default_rng(0)
    for width in (28, 120, 400):
        batch = rng.random((3, 28, width)).astype(np.float32)
        np.testing.assert_allclose(lite(batch)['probabilities'], module.serve(batch)['probabilities'].numpy(),
                                   atol=1e-4)
    with pytest.raises(DigitsError, match='a digits .tflite has one, taking "images"'):
        litert.load(litert.line_reader_file(str(output)))  # a line reader's file is no digit model


def test_the_python_reader_reads_numbers_written_fast_from_tflite_files_without_tensorflow(line_export, tmp_path):
    """digits.Reader.load on a .tflite with its .lines.tflite beside it, TensorFlow unimportable, reads numbers
    whose digits touch as digits.Reader on the export does."""
    from test_predict import write_touching_numbers
    cfg = line_export[0]
    output = tmp_path / 'digits.tflite'
    litert.convert_export(config.ConvertConfig(cfg.export_dir, str(output), 'none', data_dir=cfg.data_dir),
                          log=lambda line: None)
    paths, _ = write_touching_numbers(str(tmp_path), 6, seed=1)
    code = ('import json, sys; import digits; reader = digits.Reader.load(sys.argv[1]); '
            'readings = reader.read_many(sys.argv[2:]); '
            "assert 'tensorflow' not in sys.modules and reader.line_model; print(json.dumps(readings))")
    env = {**os.environ, **without_tensorflow(tmp_path)}
    proc = subprocess.run([sys.executable, '-c', code, str(output), *paths], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lite = json.loads(proc.stdout.strip().splitlines()[-1])
    saved = prediction.Reader.load(cfg.export_dir).read_many(paths)
    assert [r['text'] for r in lite] == [r['text'] for r in saved]
    assert [[d['box'] for d in r['digits']] for r in lite] == [[d['box'] for d in r['digits']] for r in saved]
