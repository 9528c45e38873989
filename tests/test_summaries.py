"""digits.reporting.summaries: the smoke run's TensorBoard event files, read back."""
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import ROOT

from digits.reporting import summaries
from digits.training import model


def read_scalars(event_dir: str) -> dict:
    """{tag: [(step, value), ...]}: summaries.read_scalars as pairs."""
    return {tag: list(zip(steps, values)) for tag, (steps, values) in summaries.read_scalars(event_dir).items()}


def test_train_and_eval_scalars_are_in_the_event_files(smoke_run):
    cfg, results, _ = smoke_run
    train = read_scalars(os.path.join(cfg.run_dir, 'train'))
    evals = read_scalars(os.path.join(cfg.run_dir, 'eval'))
    for tag in ('train/loss', 'train/accuracy', 'train/learning_rate', 'train/examples_per_sec',
                'train/step_time', 'train/grad_norm', 'train/weight_norm'):
        assert [step for step, _ in train[tag]] == [10, 20, 30, 40, 50, 60], tag
    assert [step for step, _ in evals['eval/accuracy']] == [30, 60]
    assert evals['eval/accuracy'][-1][1] == pytest.approx(results['test_accuracy'], abs=1e-6)
    assert evals['eval/loss'][-1][1] == pytest.approx(results['test_loss'], rel=1e-5)
    assert train['train/loss'][-1][1] < train['train/loss'][0][1]
    assert all(v > 0 for _, v in train['train/grad_norm'] + train['train/weight_norm'])
    per_class = [evals[f'eval/class_accuracy/{k}'][-1][1] for k in range(10)]
    # The test set has about 20 examples per class; the mean of the per-class accuracies is near the total.
    assert min(per_class) >= 0 and max(per_class) <= 1
    assert sum(per_class) / 10 == pytest.approx(results['test_accuracy'], abs=0.05)


def test_images_are_figures_at_each_evaluation(smoke_run):
    cfg, _, _ = smoke_run
    train = summaries.read_events(os.path.join(cfg.run_dir, 'train'), 'images')
    evals = summaries.read_events(os.path.join(cfg.run_dir, 'eval'), 'images')
    assert [step for step, _ in train['train/inputs']] == [0]
    for tag in ('eval/confusion_matrix', 'eval/worst_errors'):
        assert [step for step, _ in evals[tag]] == [30, 60], tag
        width, height, png = evals[tag][-1][1]  # an image summary: width, height, encoded images
        image = tf.io.decode_png(png).numpy()
        assert image.shape == (int(height), int(width), 3) and image.std() > 10  # a drawing, not blank


def test_weight_histograms_flags_and_hparams(smoke_run):
    cfg, _, _ = smoke_run
    histograms = summaries.read_events(os.path.join(cfg.run_dir, 'train'), 'histograms')
    variables = model.create_for(cfg).trainable_variables  # the run's own shape
    # Layer names get a process-wide counter suffix (batch_normalization_5): compare what is left.
    kinds = sorted(tag.split('/')[-1] for tag in histograms)
    assert kinds == sorted(v.path.split('/')[-1] for v in variables) and len(kinds) == 17
    assert all(tag.startswith('weights/cnn/') for tag in histograms)
    assert all([step for step, _ in values] == [30, 60] for values in histograms.values())
    flags_text = summaries.read_events(os.path.join(cfg.run_dir, 'train'), 'text')['train/flags'][0][1]
    assert b'| batch_size | 32 |' in flags_text.item()
    hparams = summaries.read_events(cfg.run_dir, "hparams")
    assert hparams, 'no HParams session in the run directory'


def test_window_weights_by_examples():
    window = summaries.Window()
    window.add({'loss': 1.0}, steps=1, examples=10, seconds=1.0)
    window.add({'loss': 4.0}, steps=3, examples=30, seconds=1.0)
    out = window.flush(learning_rate=0.1)
    assert out == {'loss': pytest.approx(3.25), 'examples_per_sec': 20.0, 'step_time': 0.5, 'learning_rate': 0.1}
    window.add({'loss': 2.0}, steps=1, examples=1, seconds=1.0)
    assert window.flush()['loss'] == 2.0


def test_plot_curves_script_draws_the_run(smoke_run, tmp_path):
    cfg, _, _ = smoke_run
    out = tmp_path / 'curves.png'
    proc = subprocess.run([sys.executable, 'scripts/plot_curves.py', cfg.run_dir, f'--output={out}'], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    image = tf.io.decode_png(out.read_bytes()).numpy()
    assert image.shape[:2] == (400, 1400) and image.std() > 10
    steps, values = summaries.read_scalars(os.path.join(cfg.run_dir, 'train'))['train/loss']
    assert steps == [10, 20, 30, 40, 50, 60] and values[-1] < values[0]


def test_plot_curves_on_a_folder_without_events_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, 'scripts/plot_curves.py', str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith(
        f'plot_curves: error: {tmp_path} has no TensorBoard scalars')
