"""digits.summaries: the smoke run's TensorBoard event files, read back."""
import glob
import os

import pytest
import tensorflow as tf

from digits import summaries


def read_scalars(event_dir: str) -> dict:
    """{tag: [(step, value), ...]} from every event file in event_dir."""
    scalars = {}
    for path in sorted(glob.glob(os.path.join(event_dir, 'events.out.tfevents.*'))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField('tensor') else value.simple_value
                scalars.setdefault(value.tag, []).append((event.step, number))
    return scalars


def test_train_and_eval_scalars_are_in_the_event_files(smoke_run):
    cfg, results, _ = smoke_run
    train = read_scalars(os.path.join(cfg.run_dir, 'train'))
    evals = read_scalars(os.path.join(cfg.run_dir, 'eval'))
    for tag in ('train/loss', 'train/accuracy', 'train/learning_rate', 'train/examples_per_sec',
                'train/step_time'):
        assert [step for step, _ in train[tag]] == [10, 20, 30, 40, 50, 60], tag
    assert [step for step, _ in evals['eval/accuracy']] == [30, 60]
    assert evals['eval/accuracy'][-1][1] == pytest.approx(results['test_accuracy'], abs=1e-6)
    assert evals['eval/loss'][-1][1] == pytest.approx(results['test_loss'], rel=1e-5)
    assert train['train/loss'][-1][1] < train['train/loss'][0][1]


def test_window_weights_by_examples():
    window = summaries.Window()
    window.add({'loss': 1.0}, steps=1, examples=10, seconds=1.0)
    window.add({'loss': 4.0}, steps=3, examples=30, seconds=1.0)
    out = window.flush(learning_rate=0.1)
    assert out == {'loss': pytest.approx(3.25), 'examples_per_sec': 20.0, 'step_time': 0.5, 'learning_rate': 0.1}
    window.add({'loss': 2.0}, steps=1, examples=1, seconds=1.0)
    assert window.flush()['loss'] == 2.0
