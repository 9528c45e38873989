"""digits.training.experiment as a long run sees it: resume, killed runs, bad numbers, refused flags, broken files."""
import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TINY_TEST, run_module, smoke_config

from digits import config
from digits.errors import DigitsError
from digits.reading import prediction
from digits.reporting import summaries
from digits.training import evaluation, experiment, loop

QUIET = dict(log=lambda line: None)


def copy_run(cfg, tmp_path):
    """A copy of a finished run's directory under tmp_path, and the config that points at it."""
    new = smoke_config(str(tmp_path), cfg.data_dir)
    shutil.copytree(cfg.run_dir, new.run_dir)
    return dataclasses.replace(new, **{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                                       if f.name not in ('logdir', 'export_dir')})


# An ensemble: every member's weights and batches; the line reader (narrow, to be quick): its lines, made on the fly.
@pytest.mark.parametrize('extra', [[], ['--ensemble=2'], ['--arch=line', '--width=4']])
def test_sigkill_then_rerun_ends_exactly_like_an_uninterrupted_run(tmp_path, tiny_data_dir, extra):
    proc = subprocess.run(
        [sys.executable, 'scripts/kill_and_resume.py', f'--logdir={tmp_path}/logs', '--prefix=k',
         '--kill_after_checkpoints=2', f'--data_dir={tiny_data_dir}', '--arch=simple', '--line_steps=0',
         '--batch_size=32', '--train_steps=120', '--steps_per_loop=10', '--checkpoint_every_steps=40',
         '--eval_every_steps=60', '--deterministic', *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'killed k-killed with SIGKILL after 2 checkpoint(s)' in proc.stdout
    assert 'resumed from step 80' in proc.stdout  # killed after ckpt-80, before ckpt-120 was listed
    assert proc.stdout.rstrip().endswith('identical')  # same step, test loss and weight bytes


def test_finished_run_is_not_trained_again(smoke_run, tmp_path):
    cfg, results, _ = smoke_run
    cfg = dataclasses.replace(copy_run(cfg, tmp_path), log_every_steps=5)  # intervals may change
    before = {f: os.path.getmtime(os.path.join(cfg.run_dir, 'checkpoints', f))
              for f in os.listdir(os.path.join(cfg.run_dir, 'checkpoints'))}
    lines = []
    again = experiment.train_and_evaluate(cfg, log=lines.append)
    assert again['weights_sha256'] == results['weights_sha256']
    assert len(lines) == 1 and 'already finished at step 60' in lines[0]
    assert before == {f: os.path.getmtime(os.path.join(cfg.run_dir, 'checkpoints', f))
                      for f in os.listdir(os.path.join(cfg.run_dir, 'checkpoints'))}


def test_the_line_reader_trains_after_the_digit_model_into_the_same_export(tmp_path, tiny_data_dir):
    """--line_steps: one run, one export; the line reader's run and export inside the digit model's; rerun,
    nothing is trained again; models/latest is the digit model's export."""
    cfg = smoke_config(str(tmp_path), tiny_data_dir, line_steps=20, train_steps=20, eval_every_steps=20)
    lines = []
    results = experiment.train_and_evaluate(cfg, log=lines.append)
    line_run = os.path.join(cfg.run_dir, config.LINE_READER)
    assert results[config.LINE_READER]['global_step'] == 20 and results[config.LINE_READER]['test_examples'] == 1000
    assert os.path.isfile(os.path.join(line_run, 'results.json'))
    assert os.path.isfile(os.path.join(cfg.export_dir, config.LINE_READER, 'saved_model.pb'))
    assert os.path.realpath(os.path.join(tmp_path, 'models', 'latest')) == os.path.realpath(cfg.export_dir)
    assert any(line.startswith('done   test exact lines') for line in lines)
    # TensorBoard: its scalars, the lines it trains on, and at each evaluation the test lines it read.
    assert {'eval/loss', 'eval/accuracy'} <= set(summaries.read_scalars(os.path.join(line_run, 'eval')))
    assert 'train/inputs' in summaries.read_events(os.path.join(line_run, 'train'), 'images')
    read = summaries.read_events(os.path.join(line_run, 'eval'), 'images')['eval/lines_read']
    assert [step for step, _ in read] == [20]
    assert prediction.Reader.load(cfg.export_dir).line_model is not None
    line_export = os.path.join(cfg.export_dir, config.LINE_READER)
    with pytest.raises(DigitsError, match=r"is a line reader's export: give the export that holds it"):
        prediction.Reader.load(line_export)
    with pytest.raises(DigitsError, match=r"is a line reader's export: give the export that holds it"):
        evaluation.evaluate_saved(config.EvalConfig(model=line_export, data_dir=tiny_data_dir), **QUIET)
    with pytest.raises(DigitsError, match=r'trained the line reader, which reads lines, not digits'):
        evaluation.evaluate_saved(config.EvalConfig(run_dir=line_run, data_dir=tiny_data_dir), **QUIET)
    again = []
    assert experiment.train_and_evaluate(cfg, log=again.append) == results
    assert len(again) == 2 and all('already finished' in line for line in again)


@pytest.mark.parametrize('flag,value', [('batch_size', 64), ('arch', 'simple'), ('dataset', 'fashion_mnist'),
                                        ('ema_decay', 0.99)])
def test_resume_with_a_flag_that_changes_the_run_is_refused(smoke_run, tmp_path, flag, value):
    cfg = dataclasses.replace(copy_run(smoke_run[0], tmp_path), **{flag: value})
    with pytest.raises(DigitsError, match=rf'^--{flag} \({value}\) differs from the run being resumed'):
        experiment.train_and_evaluate(cfg, **QUIET)


def test_longer_rerun_resumes_from_the_last_checkpoint(smoke_run, tmp_path):
    cfg = dataclasses.replace(copy_run(smoke_run[0], tmp_path), train_steps=80)
    lines = []
    results = experiment.train_and_evaluate(cfg, log=lines.append)
    assert any(line.startswith('resumed from step 60') for line in lines)
    assert results['global_step'] == 80 and results['test_examples'] == TINY_TEST


def poison_on_call(monkeypatch, call: int, variable: int):
    """Makes the train_fn's `call`-th call start from a NaN kernel, as a diverging run would."""
    real = loop.make_train_fn

    def make(strategy, state, global_batch, **options):
        train_fn, calls = real(strategy, state, global_batch, **options), []

        def poisoned(iterator, num_steps):
            calls.append(1)
            if len(calls) == call:
                kernel = state.model.trainable_variables[variable]
                kernel.assign(tf.fill(kernel.shape, np.nan))
            return train_fn(iterator, num_steps)
        return poisoned

    monkeypatch.setattr(loop, 'make_train_fn', make)


@pytest.mark.parametrize('variable', [-2, 0])  # the output kernel; the first conv kernel
def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data_dir, monkeypatch, variable):
    """Which quantity shows the NaN first depends on the CPU's kernels (oneDNN's ReLU and max-pool may drop a
    NaN of the first kernel); the guarantee does not: the run stops in the poisoned call and names a
    non-finite quantity, the last good checkpoint stays the latest, nothing is exported."""
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple')  # 10 steps per call, ckpt every 20
    poison_on_call(monkeypatch, 4, variable)
    with pytest.raises(DigitsError, match=r'^training diverged in steps 31-40: non-finite (gradients|training loss|'
                                          r'weights) .*; nothing of these steps was saved'):
        experiment.train_and_evaluate(cfg, **QUIET)
    latest = tf.train.latest_checkpoint(os.path.join(cfg.run_dir, 'checkpoints'))
    assert latest.endswith('ckpt-20')
    assert all(np.isfinite(tf.train.load_variable(latest, name)).all()
               for name, _ in tf.train.list_variables(latest) if 'model' in name)
    assert not os.path.exists(cfg.export_dir) and not os.path.exists(os.path.join(cfg.run_dir, 'results.json'))


def test_exploding_loss_stops_the_run_like_a_nan(tmp_path, tiny_data_dir):
    """Plain SGD at a learning rate of 1e6: the loss explodes (finite or not); the run stops at once."""
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple', optimizer='sgd', learning_rate=1e6,
                       lr_schedule='constant')
    with pytest.raises(DigitsError, match=r'^training diverged in steps 1-10: .*; nothing of these steps was saved'):
        experiment.train_and_evaluate(cfg, **QUIET)
    assert tf.train.latest_checkpoint(os.path.join(cfg.run_dir, 'checkpoints')) is None
    assert not os.path.exists(cfg.export_dir) and not os.path.exists(os.path.join(cfg.run_dir, 'results.json'))


def test_full_disk_during_a_checkpoint_is_one_line_error(tmp_path, tiny_data_dir, monkeypatch):
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple')
    real_save, calls = tf.train.CheckpointManager.save, []

    def save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # what TensorFlow raises when a write hits ENOSPC
            raise tf.errors.ResourceExhaustedError(None, None, 'ckpt-40.data: No space left on device')
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, 'save', save)
    with pytest.raises(DigitsError, match=r'cannot save the checkpoint of step 40 in .*: ckpt-40.data: No space '
                                          r'left on device; the latest checkpoint is still .*ckpt-20$'):
        experiment.train_and_evaluate(cfg, **QUIET)


def test_corrupt_latest_checkpoint_is_an_error_and_is_kept(smoke_run, tmp_path):
    cfg = dataclasses.replace(copy_run(smoke_run[0], tmp_path), train_steps=80)
    data_file = os.path.join(cfg.run_dir, 'checkpoints', 'ckpt-60.data-00000-of-00001')
    with open(data_file, 'r+b') as f:
        f.truncate(os.path.getsize(data_file) // 2)
    size = os.path.getsize(data_file)
    proc = run_module('digits.train', *(f'--{f.name}={getattr(cfg, f.name)}' for f in dataclasses.fields(cfg)
                                        if getattr(cfg, f.name) not in (None, '')))
    errors = [line for line in proc.stderr.splitlines() if line.startswith('digits.train:')]
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert errors == [errors[0]] and 'cannot restore the latest checkpoint' in errors[0]
    assert 'ckpt-60' in errors[0] and 'it was left as it is' in errors[0]
    assert os.path.getsize(data_file) == size
    assert tf.train.latest_checkpoint(os.path.join(cfg.run_dir, 'checkpoints')).endswith('ckpt-60')
    proc = run_module('digits.evaluate', f'--run_dir={cfg.run_dir}', f'--data_dir={cfg.data_dir}')
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert 'digits.evaluate: error: cannot restore the latest checkpoint' in proc.stderr


def test_a_run_that_fails_before_training_leaves_no_run_folder(tmp_path, tiny_data_dir):
    """A new run whose data cannot be read leaves nothing to resume from; a run with checkpoints keeps them."""
    cfg = smoke_config(str(tmp_path), str(tmp_path / 'missing'), arch='simple')
    with pytest.raises(DigitsError, match='is not a directory'):
        experiment.train_and_evaluate(cfg, log=lambda line: None)
    assert not os.path.exists(cfg.run_dir) and os.listdir(tmp_path / 'logs') == []
    trained = dataclasses.replace(cfg, data_dir=tiny_data_dir, train_steps=20)
    experiment.train_and_evaluate(trained, log=lambda line: None)
    with pytest.raises(DigitsError, match='is not a directory'):  # resuming it, longer, with a bad folder
        experiment.train_and_evaluate(dataclasses.replace(cfg, train_steps=40), log=lambda line: None)
    assert tf.train.latest_checkpoint(os.path.join(cfg.run_dir, 'checkpoints')).endswith('ckpt-20')


@pytest.mark.parametrize('flag', ['logdir', 'export_dir'])
def test_unwritable_output_is_one_line_error_before_training(tmp_path, tiny_data_dir, flag):
    (tmp_path / 'file').write_text('not a directory')
    target = tmp_path / 'file' / 'sub'
    proc = run_module('digits.train', f'--data_dir={tiny_data_dir}', '--run_name=r',
                      f'--logdir={target if flag == "logdir" else tmp_path / "logs"}',
                      f'--export_dir={target / "m" if flag == "export_dir" else tmp_path / "m"}')
    errors = [line for line in proc.stderr.splitlines() if line.startswith('digits.train:')]
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert len(errors) == 1 and 'cannot write' in errors[0] and 'Not a directory' in errors[0]
    assert 'train  step' not in proc.stdout
