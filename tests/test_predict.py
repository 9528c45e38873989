"""python -m digits.predict: a user's own image files in, one line (and a JSON record) per file out."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import run_module, smoke_config
from digits import classify, config, data, experiment, export


def write_inputs(directory) -> list[str]:
    """One digit-like stroke in each supported format and mode, plus an empty file and a text file."""
    ink = np.zeros((80, 60), np.uint8)
    ink[10:70, 25:35] = 255  # a '1'
    paths = []
    for name, mode in (('grey.png', 'L'), ('rgb.jpg', 'RGB'), ('anim.gif', 'P'), ('win.bmp', 'RGB')):
        path = os.path.join(directory, name)
        Image.fromarray(255 - ink).convert(mode).save(path)  # dark ink on white paper
        paths.append(path)
    rgba = np.zeros(ink.shape + (4,), np.uint8)
    rgba[..., 3] = ink  # black ink on a transparent canvas
    paths.append(os.path.join(directory, 'ink.png'))
    Image.fromarray(rgba, 'RGBA').save(paths[-1])
    for name, content in (('empty.png', b''), ('notes.txt', b'not an image')):
        paths.append(os.path.join(directory, name))
        with open(paths[-1], 'wb') as f:
            f.write(content)
    return paths


def test_cli_classifies_every_readable_file_and_reports_the_others(smoke_run, tmp_path):
    cfg = smoke_run[0]
    paths = write_inputs(str(tmp_path))
    out, seen = tmp_path / 'predictions.json', tmp_path / 'seen'
    proc = run_module('digits.predict', f'--model={cfg.export_dir}', f'--output_json={out}',
                      f'--save_preprocessed={seen}', *paths)
    assert proc.returncode == 1, proc.stderr[-2000:]  # two files failed
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('digits.predict:')]
    assert errors == [f'digits.predict: error: {paths[5]}: the file is empty',
                      f'digits.predict: error: {paths[6]}: not a PNG, JPEG, GIF or BMP image']
    lines = proc.stdout.splitlines()
    assert [line.split(':')[0] for line in lines] == paths[:5]
    with open(out) as f:
        records = json.load(f)
    assert [r['file'] for r in records] == paths[:5]
    for record, line in zip(records, lines):
        top3 = record['top3']
        assert [t['digit'] for t in top3][0] == record['digit'] and len({t['digit'] for t in top3}) == 3
        probs = [t['probability'] for t in top3]
        assert probs == sorted(probs, reverse=True) and record['probability'] == probs[0] and sum(probs) <= 1.0001
        assert line.startswith(f'{record["file"]}: {record["digit"]} ({100 * record["probability"]:.1f}%)  next ')
    saved = sorted(os.listdir(seen))
    assert saved == ['anim.png', 'grey.png', 'ink.png', 'rgb.png', 'win.png']
    assert np.array(Image.open(seen / 'grey.png')).shape == (28, 28)


def test_cli_exits_0_when_all_files_are_classified(smoke_run, tmp_path):
    path = write_inputs(str(tmp_path))[0]
    proc = run_module('digits.predict', f'--model={smoke_run[0].export_dir}', path)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1, proc.stderr[-2000:]


@pytest.mark.parametrize('args,message', [
    (['x.png'], '--model is required'), (['--model=m'], 'no image files given'),
    (['--model=/nonexistent', 'x.png'], 'is not an exported SavedModel')])
def test_cli_usage_errors_are_one_line(args, message):
    proc = run_module('digits.predict', *args)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('digits.predict:')]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]


def render_on_paper(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 MNIST digit as a user might scan it: dark ink on a white 200x200 RGB page, enlarged to
    60-140 pixels and placed off-centre."""
    size = int(rng.integers(60, 141))
    big = tf.image.resize(digit[..., None].astype(np.float32), (size, size), method='bilinear').numpy()[..., 0]
    page = np.full((200, 200), 255.0, np.float32)
    top, left = rng.integers(0, 200 - size + 1, size=2)
    page[top:top + size, left:left + size] -= np.clip(big, 0, 255)
    return np.repeat(np.clip(page, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


@pytest.fixture(scope='module')
def real_model(real_data_dir, tmp_path_factory):
    """A cnn trained for 300 steps on the real training images: (export dir, test split)."""
    tmp = tmp_path_factory.mktemp('real_model')
    cfg = smoke_config(str(tmp), real_data_dir, model='cnn', batch_size=128, train_steps=300,
                       steps_per_loop=50, warmup_steps=50, eval_every_steps=300, checkpoint_every_steps=300,
                       augment=True, eval_batch_size=1000)
    experiment.train_and_evaluate(cfg, log=lambda line: None)
    return cfg.export_dir, data.load('mnist', real_data_dir).test


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
def test_real_digits_on_paper_are_read_as_well_as_the_originals(real_model, tmp_path, fmt):
    """500 test digits rendered as dark ink on a white page are classified within 1 point of the originals."""
    export_dir, test = real_model
    chosen = np.random.default_rng(0).choice(len(test), 500, replace=False)
    originals, labels = test.images[chosen], test.labels[chosen]
    rng, paths = np.random.default_rng(1), []
    for i, digit in enumerate(originals):
        paths.append(str(tmp_path / f'digit-{i}.{fmt.lower()}'))
        options = {'quality': 90} if fmt == 'JPEG' else {}
        Image.fromarray(render_on_paper(digit, rng)).save(paths[-1], format=fmt, **options)
    module = export.load(export_dir)
    original_accuracy = np.mean(module.serve(originals)['probabilities'].numpy().argmax(1) == labels)
    predictions, errors = classify.classify_files(config.PredictConfig(export_dir, tuple(paths)),
                                                  log=lambda line: None)
    assert not errors
    paper_accuracy = np.mean([p['digit'] for p in predictions] == labels)
    print(f'{fmt}: originals {100 * original_accuracy:.1f}%, on paper {100 * paper_accuracy:.1f}%')
    assert original_accuracy > 0.95
    assert abs(paper_accuracy - original_accuracy) <= 0.01, (paper_accuracy, original_accuracy)
