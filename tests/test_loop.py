"""digits.training.loop and digits.training.experiment: the smoke run, evaluation counting, is_time, checkpoints."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_TEST, make_digits, smoke_config

from digits.data import arrays, pipeline
from digits.errors import DigitsError
from digits.training import experiment, loop, model


def test_smoke_run_learns(smoke_run):
    cfg, results, lines = smoke_run
    losses = [float(line.split('loss ')[1].split()[0]) for line in lines if line.startswith('train')]
    assert len(losses) == 6  # log every 10 of 60 steps
    assert losses[-1] < 0.5 * losses[0], losses
    assert results['test_accuracy'] > 0.9 and results['test_examples'] == TINY_TEST
    assert results['global_step'] == 60


def test_results_json_has_the_promised_fields(smoke_run):
    cfg, results, _ = smoke_run
    with open(os.path.join(cfg.run_dir, 'results.json')) as f:
        stored = json.load(f)
    for key in ('test_accuracy', 'test_loss', 'test_examples', 'global_step', 'train_examples_per_sec',
                'wall_seconds', 'flags'):
        assert key in stored, key
    assert stored['flags']['batch_size'] == 32 and stored['test_accuracy'] == results['test_accuracy']
    assert stored['train_examples_per_sec'] > 0 and stored['wall_seconds'] > 0


def test_progress_lines_are_readable(smoke_run):
    _, _, lines = smoke_run
    train_line = next(line for line in lines if line.startswith('train'))
    for word in ('step', 'epoch', 'loss', 'accuracy', 'lr', 'ex/s', 'eta'):
        assert word in train_line
    assert any(line.startswith('eval') and f'({TINY_TEST} examples)' in line for line in lines)


def test_checkpoints_on_interval_and_at_end(smoke_run):
    cfg, _, _ = smoke_run
    state = tf.train.get_checkpoint_state(os.path.join(cfg.run_dir, 'checkpoints'))
    names = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    assert names == ['ckpt-20', 'ckpt-40', 'ckpt-60']


@pytest.mark.parametrize('step,previous,every,last,expected', [
    (10, 0, 10, 100, True), (9, 0, 10, 100, False), (25, 15, 10, 100, True), (29, 21, 10, 100, False),
    (100, 95, 1000, 100, True), (50, 0, 7, 100, True)])
def test_is_time(step, previous, every, last, expected):
    assert loop.is_time(step, previous, every, last) is expected


@pytest.mark.parametrize('batch_size', [64, 203, 1000])
def test_evaluate_counts_every_example_exactly(batch_size):
    """Accuracy and loss equal a plain NumPy computation over all 203 examples, whatever the batching."""
    split = arrays.Split(*make_digits(TINY_TEST, 11))
    net = model.create('simple')
    strategy = tf.distribute.get_strategy()
    metrics = loop.make_evaluator(strategy, lambda x: net(x, training=False), split, batch_size)()
    logits = net(pipeline.to_float(tf.constant(split.images)), training=False).numpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - logits.max(1, keepdims=True)
    assert metrics['num_examples'] == TINY_TEST
    assert metrics['accuracy'] == pytest.approx(np.mean(logits.argmax(1) == split.labels), abs=1e-9)
    assert metrics['loss'] == pytest.approx(-np.mean(log_probs[np.arange(TINY_TEST), split.labels]), rel=1e-4)


def test_step_function_is_traced_once(tmp_path, tiny_data_dir, monkeypatch):
    """A run whose last call has fewer steps (65 = 6 x 10 + 5) still traces train_fn once: num_steps is a
    tensor, and every batch has the same shape. The evaluation (padded batches) traces once too."""
    made = []
    for name in ('make_train_fn', 'make_eval_fn'):
        real = getattr(loop, name)
        monkeypatch.setattr(loop, name, lambda *a, _real=real, **k: made.append(_real(*a, **k)) or made[-1])
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple', train_steps=65, eval_every_steps=20)
    experiment.train_and_evaluate(cfg, log=lambda line: None)
    train_fn, eval_fn = made[0], made[1]
    assert train_fn.experimental_get_tracing_count() == 1
    assert eval_fn.experimental_get_tracing_count() == 1  # 203 examples in padded batches of 64


def test_profile_steps_writes_a_trace_and_memory_is_reported(tmp_path, tiny_data_dir):
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple', profile_steps=10)
    results = experiment.train_and_evaluate(cfg, log=lambda line: None)
    traces = list((tmp_path / 'logs' / 'smoke' / 'train' / 'plugins' / 'profile').glob('*/*.xplane.pb'))
    assert len(traces) == 1 and traces[0].stat().st_size > 0
    assert results['peak_memory_mb'] > 100  # TensorFlow alone takes more


def test_label_smoothing_matches_keras_and_zero_is_plain():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(6, 10)), tf.float32)
    labels = tf.constant(rng.integers(0, 10, 6), tf.int32)
    keras_loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction=None)
    np.testing.assert_allclose(loop.smoothed_losses(logits, labels, 0.1).numpy(),
                               keras_loss(tf.one_hot(labels, 10), logits).numpy(), rtol=1e-5)
    np.testing.assert_array_equal(loop.smoothed_losses(logits, labels, 0.0).numpy(),
                                  loop.example_losses(logits, labels).numpy())


def test_a_negative_is_trained_towards_the_uniform_distribution():
    """Outlier exposure: a label equal to the number of classes targets 1/classes each, smoothed or not;
    digits' losses are unchanged by the negatives beside them."""
    rng = np.random.default_rng(1)
    logits = tf.constant(rng.normal(size=(4, 10)), tf.float32)
    labels = tf.constant([3, 10, 7, 10], tf.int32)
    uniform = -tf.reduce_mean(tf.nn.log_softmax(logits), axis=-1).numpy()
    for smoothing in (0.0, 0.1):
        losses = loop.smoothed_losses(logits, labels, smoothing, negatives=True).numpy()
        np.testing.assert_allclose(losses[[1, 3]], uniform[[1, 3]], rtol=1e-5)
        digits = loop.smoothed_losses(tf.gather(logits, [0, 2]), tf.constant([3, 7]), smoothing).numpy()
        np.testing.assert_allclose(losses[[0, 2]], digits, rtol=1e-5)


def test_label_smoothing_trains_and_evaluates_with_the_plain_loss(tmp_path, tiny_data_dir):
    """Smoothed targets keep the training loss above the smoothing's entropy floor; evaluation stays plain."""
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple', label_smoothing=0.2)
    lines = []
    results = experiment.train_and_evaluate(cfg, log=lines.append)
    train_loss = float([line for line in lines if line.startswith('train')][-1].split('loss ')[1].split()[0])
    floor = -(0.82 * np.log(0.82) + 9 * 0.02 * np.log(0.02))  # entropy of the smoothed target: 0.87
    assert train_loss > floor and results['test_accuracy'] > 0.9
    assert results['test_loss'] < floor  # the plain cross-entropy of a confident, right model


def test_each_member_of_an_ensemble_trains_as_it_would_alone():
    """One SGD step on an ensemble moves each member as the same step on that member alone, on that
    member's batch, would; the reported loss is the members' mean loss."""
    split = arrays.Split(*make_digits(64, 3))
    (a_images, a_labels), (b_images, b_labels) = batches(split, 32, 2)
    ensemble = model.create('simple', dropout=0.0, ensemble=2)
    alone = model.create('simple', dropout=0.0)
    alone.set_weights(ensemble.members[1].get_weights())
    before = [float(tf.reduce_mean(loop.example_losses(m(x, training=True), y)))
              for m, x, y in zip(ensemble.members, (a_images, b_images), (a_labels, b_labels))]
    first_before = ensemble.members[0].get_weights()
    stacked = (tf.stack([a_images, b_images], axis=1), tf.stack([a_labels, b_labels], axis=1))
    strategy = tf.distribute.get_strategy()
    state = loop.create_state(ensemble, tf.keras.optimizers.SGD(0.5))
    metrics = loop.make_train_fn(strategy, state, 32)(iter(tf.data.Dataset.from_tensors(stacked)), tf.constant(1))
    state = loop.create_state(alone, tf.keras.optimizers.SGD(0.5))
    loop.make_train_fn(strategy, state, 32)(iter(tf.data.Dataset.from_tensors((b_images, b_labels))), tf.constant(1))
    assert float(metrics['loss']) == pytest.approx(np.mean(before), rel=1e-5)
    for got, want in zip(ensemble.members[1].get_weights(), alone.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert all(not np.allclose(w, w0) for w, w0 in zip(ensemble.members[0].get_weights(), first_before))


def batches(split, batch_size, count):
    """The first `count` (images, labels) batches of split's plain training pipeline."""
    return list(pipeline.train_dataset(split, batch_size, 0, False).take(count))


def test_a_nan_in_the_weights_is_counted_whatever_the_kernels():
    """A NaN batch-norm moving mean never touches the training loss or the gradients (training uses the
    batch's statistics), so only the weights check can see it, on any CPU."""
    split = arrays.Split(*make_digits(64, 3))
    net = model.create('cnn')
    state = loop.create_state(net, tf.keras.optimizers.SGD(0.01))
    moving_mean = next(v for v in net.non_trainable_variables if v.path.endswith('moving_mean'))
    moving_mean.assign(tf.fill(moving_mean.shape, np.nan))
    train_fn = loop.make_train_fn(tf.distribute.get_strategy(), state, 32)
    batches = iter(pipeline.train_dataset(split, 32, 0, False))
    metrics = {k: float(v) for k, v in train_fn(batches, tf.constant(2)).items()}
    assert np.isfinite(metrics['loss']) and metrics['nonfinite_gradients'] == 0
    assert metrics['nonfinite_weights'] == moving_mean.shape[0]
    expected = (rf'^training diverged in steps 11-12: non-finite weights \({moving_mean.shape[0]} NaN or Inf '
                rf'values\); nothing of these steps was saved')
    with pytest.raises(DigitsError, match=expected):
        loop.check_training(metrics, 10, 12, lowest_loss=None, max_loss=23.0)


SOUND = {'loss': 0.3, 'nonfinite_gradients': 0.0, 'nonfinite_weights': 0.0}


def test_a_finite_but_exploding_loss_is_divergence():
    limit = loop.divergence_limit(10)
    assert limit == pytest.approx(10 * np.log(10))
    loop.check_training(dict(SOUND, loss=0.99 * limit), 0, 50, lowest_loss=0.1, max_loss=limit)  # passes
    with pytest.raises(DigitsError, match=r'^training diverged in steps 101-150: training loss 2.7e\+18, up from '
                                          r'0.05 \(the limit is 23, 10x the loss of a uniform guess\); nothing '
                                          r'of these steps was saved, so the latest checkpoint \(if any\)'):
        loop.check_training(dict(SOUND, loss=2.7e18), 100, 150, lowest_loss=0.05, max_loss=limit)


@pytest.mark.parametrize('metrics,what', [
    (dict(SOUND, nonfinite_gradients=3.0), r'non-finite gradients \(3 replica-steps with NaN or Inf\)'),
    (dict(SOUND, loss=float('inf')), r'non-finite training loss \(inf\)'),
    (dict(SOUND, loss=float('nan')), r'non-finite training loss \(nan\)'),
    (dict(SOUND, loss=1e6), r'training loss 1e\+06 \(the limit')])
def test_each_kind_of_divergence_is_named(metrics, what):
    with pytest.raises(DigitsError, match=rf'^training diverged in steps 1-50: {what}'):
        loop.check_training(metrics, 0, 50, lowest_loss=None, max_loss=23.0)
