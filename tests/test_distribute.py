"""digits.training.distribute and the loop under tf.distribute: same math on 1, 2 and 4 replicas, exact evaluation."""
import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TINY_TEST, make_digits, run_module, smoke_config

from digits.data import arrays, pipeline, synthetic_lines
from digits.errors import DigitsError
from digits.training import ctc, distribute, experiment, loop, model

GLOBAL_BATCH = 32


def strategy_for(replicas):
    if replicas == 0:
        return tf.distribute.get_strategy()  # the default strategy, for reference
    return distribute.create_mirrored_strategy(replicas)


def one_sgd_step(replicas: int, name: str, l2: float, initial: list, jit_compile: bool = False) -> list:
    """Weights after one plain-SGD step on the same global batch, from the same initial weights."""
    strategy = strategy_for(replicas)
    split = arrays.Split(*make_digits(256, 5))
    with strategy.scope():
        net = model.create(name, l2=l2, dropout=0.0)  # no dropout: its masks differ per replica by design
        for variable, value in zip(net.weights, initial):
            variable.assign(value)
        state = loop.create_state(net, tf.keras.optimizers.SGD(0.5))
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: pipeline.train_dataset(split, GLOBAL_BATCH, seed=0, augment=True, input_context=ctx))
    metrics = loop.make_train_fn(strategy, state, GLOBAL_BATCH, jit_compile=jit_compile)(iter(dataset),
                                                                                       tf.constant(1))
    assert np.isfinite(float(metrics['loss']))
    return [v.numpy() for v in net.weights]


def assert_same_update(got: np.ndarray, want: np.ndarray, tolerance: float, context: str):
    """The update `got` is `want` as a whole: the norm of their difference is within `tolerance` of want's.

    A scaling or compilation mistake moves the whole update (50-100%). Rounding that batch norm amplifies in
    a near-constant channel moves a few entries a lot: an entry-wise bound failed 2 of 10 runs under
    TF_ENABLE_ONEDNN_OPTS=0 (2 of 64 entries off by 9% of the largest; 2 of 18,432 by 73%), while those
    differences were 1.5% and 0.7% of the update's norm.
    """
    difference = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-12)
    assert difference <= tolerance, f'{context}: the update differs by {100 * difference:.2f}% of its norm'


# L2 with cnn adds nothing that simple with L2 does not check: the penalty's scaling is model-independent.
@pytest.mark.parametrize('name,l2', [('simple', 0.0), ('simple', 0.05), ('cnn', 0.0)])
def test_one_step_is_the_same_on_1_2_and_4_replicas(name, l2):
    """The update of every variable agrees to 3% of its norm (a replica-scaling mistake is 50-100%).

    Not bit-exact: the replicas' partial sums (gradients, synchronized batch statistics) are added in
    another order, and batch norm amplifies such rounding in a few near-constant channels.
    """
    initial = [v.numpy() for v in model.create(name, l2=l2, dropout=0.0).weights]
    reference = [w - w0 for w, w0 in zip(one_sgd_step(0, name, l2, initial), initial)]
    assert all(np.abs(u).max() > 0 for u in reference[:2]), 'the step changed nothing'
    for replicas in (1, 2, 4):
        updates = [w - w0 for w, w0 in zip(one_sgd_step(replicas, name, l2, initial), initial)]
        for index, (got, want) in enumerate(zip(updates, reference)):
            assert_same_update(got, want, 0.03, f'{replicas} replicas, weight {index}')


def one_line_step(replicas: int, initial: list) -> list:
    """The line reader's weights after one plain-SGD step (CTC) on the same global batch of lines."""
    strategy = strategy_for(replicas)
    split = arrays.Split(*make_digits(256, 5))
    with strategy.scope():
        net = model.create('line')
        for variable, value in zip(net.weights, initial):
            variable.assign(value)
        state = loop.create_state(net, tf.keras.optimizers.SGD(0.05))
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: synthetic_lines.train_dataset(split, GLOBAL_BATCH, seed=0, input_context=ctx))
    train_fn = loop.make_train_fn(strategy, state, GLOBAL_BATCH, objective=ctc.line_objective())
    assert np.isfinite(float(train_fn(iter(dataset), tf.constant(1))['loss']))
    return [v.numpy() for v in net.weights]


# A freshly initialised line reader's first step is far more sensitive to the order of the replicas' sums
# than the digit models': lines are mostly paper, so many of its batch-normalised channels are near-constant.
# Over 6 random initialisations on one machine, a weight's update on 2 replicas differed from 1 replica's by
# at most 1.0-6.2% of its norm (with 4-column frames 1.5-17%); a replica-scaling mistake is 50-100%.
LINE_STEP_TOLERANCE = 0.25


def test_the_line_readers_step_is_the_same_on_1_and_2_replicas():
    """The line reader is trained by the same step: its CTC loss averaged over the global batch of lines."""
    keras.utils.set_random_seed(0)
    initial = [v.numpy() for v in model.create('line').weights]
    reference = [w - w0 for w, w0 in zip(one_line_step(0, initial), initial)]
    assert all(np.abs(u).max() > 0 for u in reference[:2]), 'the step changed nothing'
    for replicas in (1, 2):
        updates = [w - w0 for w, w0 in zip(one_line_step(replicas, initial), initial)]
        for index, (got, want) in enumerate(zip(updates, reference)):
            assert_same_update(got, want, LINE_STEP_TOLERANCE, f'{replicas} replicas, weight {index}')


@pytest.mark.parametrize('replicas', [0, 2])
@pytest.mark.parametrize('name,tolerance', [('simple', 0.01), ('cnn', 0.05)])
def test_jit_compile_computes_the_same_step(replicas, name, tolerance):
    """--jit_compile (XLA) changes how the step runs, not what it computes, also under mirrored.

    XLA fuses and reorders float sums; batch norm amplifies that rounding in a few channels of cnn.
    """
    initial = [v.numpy() for v in model.create(name, l2=0.05, dropout=0.0).weights]
    if name == 'cnn' and replicas > 1:
        with pytest.raises(DigitsError, match=r'^--jit_compile cannot compile --arch=cnn on 2 replicas'):
            one_sgd_step(replicas, name, 0.05, initial, jit_compile=True)
        return
    plain = one_sgd_step(replicas, name, 0.05, initial)
    compiled = one_sgd_step(replicas, name, 0.05, initial, jit_compile=True)
    for index, (got, want, w0) in enumerate(zip(compiled, plain, initial)):
        assert_same_update(got - w0, want - w0, tolerance, f'weight {index}')


def test_regularization_counts_once_whatever_the_replicas():
    """What L2 adds to the step is its gradient counted once, not once per replica: lr * 2 * l2 * w."""
    initial = [v.numpy() for v in model.create('simple', l2=0.05, dropout=0.0).weights]
    with_l2 = one_sgd_step(4, 'simple', 0.05, initial)
    without = one_sgd_step(4, 'simple', 0.0, initial)
    kernel = 0  # conv1 kernel
    np.testing.assert_allclose(without[kernel] - with_l2[kernel], 0.5 * 2 * 0.05 * initial[kernel],
                               rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize('replicas,batch', [(3, 384), (4, 64), (2, 1000)])
def test_evaluation_counts_every_example_on_any_layout(replicas, batch):
    split = arrays.Split(*make_digits(TINY_TEST, 11))
    initial = [v.numpy() for v in model.create('cnn').weights]
    results = []
    for n in (0, replicas):
        strategy = strategy_for(n)
        with strategy.scope():
            net = model.create('cnn')
            for variable, value in zip(net.weights, initial):
                variable.assign(value)
        results.append(loop.make_evaluator(strategy, lambda x, net=net: net(x, training=False), split, batch,
                                           probabilities=True)())
    single, multi = results
    assert multi['num_examples'] == single['num_examples'] == TINY_TEST
    assert multi['accuracy'] == single['accuracy']
    assert multi['loss'] == pytest.approx(single['loss'], rel=1e-5)
    # Each example's probabilities, gathered from every replica in the split's order, padding dropped.
    direct = tf.nn.softmax(net(pipeline.to_float(tf.constant(split.images)), training=False)).numpy()
    assert multi['probabilities'].shape == single['probabilities'].shape == (TINY_TEST, 10)
    np.testing.assert_allclose(single['probabilities'], direct, atol=1e-5)
    np.testing.assert_allclose(multi['probabilities'], direct, atol=1e-5)
    # The same predictions as the counted accuracy (within one example: argmax of float32 probabilities
    # may break a near-tie of logits the other way).
    assert np.mean(multi['probabilities'].argmax(1) == split.labels) == pytest.approx(multi['accuracy'],
                                                                                      abs=1.01 / TINY_TEST)


def test_mirrored_training_run_matches_default(tmp_path, tiny_data_dir):
    """A whole (short) run under mirrored with 2 replicas ends where the default strategy ends."""
    results = {}
    for strategy, replicas in (('default', 0), ('mirrored', 2)):
        cfg = smoke_config(str(tmp_path / strategy), tiny_data_dir, strategy=strategy, cpu_replicas=replicas,
                           train_steps=20, arch='simple', eval_every_steps=20)
        results[strategy] = experiment.train_and_evaluate(dataclasses.replace(cfg), log=lambda line: None)
    assert results['mirrored']['test_examples'] == TINY_TEST
    assert results['mirrored']['test_accuracy'] == pytest.approx(results['default']['test_accuracy'], abs=0.02)
    # Dropout masks differ per replica layout, so only closeness is expected here; the exact math is
    # checked step by step above.
    assert results['mirrored']['test_loss'] == pytest.approx(results['default']['test_loss'], rel=0.2)


def test_batch_must_divide_among_replicas(tmp_path, tiny_data_dir):
    cfg = smoke_config(str(tmp_path), tiny_data_dir, strategy='mirrored', cpu_replicas=3, batch_size=32)
    with pytest.raises(DigitsError, match=r'--batch_size \(32\) must be divisible by the number of replicas '
                                          r'\(3\); try 30'):
        experiment.train_and_evaluate(cfg, log=lambda line: None)


def test_mirrored_uses_the_requested_cpu_replicas():
    assert distribute.create_strategy('mirrored', cpu_replicas=2).num_replicas_in_sync == 2
    assert distribute.create_strategy('default').num_replicas_in_sync == 1
    assert distribute.is_chief(distribute.create_strategy('mirrored', cpu_replicas=2))


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv('TF_CONFIG', raising=False)
    with pytest.raises(DigitsError, match='needs TF_CONFIG'):
        distribute.create_strategy('multi_worker')


def test_tpu_without_a_tpu_is_one_line_error(tmp_path, tiny_data_dir):
    for extra in (['--tpu=local'], []):
        proc = run_module('digits.train', '--strategy=tpu', *extra, f'--data_dir={tiny_data_dir}',
                          f'--logdir={tmp_path}', timeout=120)
        lines = [line for line in proc.stderr.splitlines() if line.startswith('digits.train')]
        assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
        assert len(lines) == 1 and '--tpu' in lines[0], proc.stderr[-2000:]


def test_multi_worker_on_localhost(tmp_path, tiny_data_dir):
    """Two worker processes train together: identical final weights, and only the chief wrote outputs."""
    logdir, export_dir = tmp_path / 'logs', tmp_path / 'models' / 'mw'
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'scripts', 'launch_multi_worker.py'), '--num_workers=2',
         '--timeout=150', '--', '--strategy=multi_worker', '--arch=simple', '--line_steps=0',
         f'--data_dir={tiny_data_dir}',
         '--batch_size=32', '--train_steps=12', '--steps_per_loop=4', '--log_every_steps=4',
         '--eval_every_steps=12', '--checkpoint_every_steps=8', f'--logdir={logdir}', '--run_name=mw',
         f'--export_dir={export_dir}'],
        capture_output=True, text=True, timeout=200, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    fingerprints = {line.split('[worker ')[1][0]: line.split('weights sha256 ')[1].split()[0]
                    for line in proc.stdout.splitlines() if 'weights sha256' in line}
    assert sorted(fingerprints) == ['0', '1'] and len(set(fingerprints.values())) == 1, proc.stdout[-3000:]
    with open(logdir / 'mw' / 'results.json') as f:
        results = json.load(f)
    assert results['test_examples'] == TINY_TEST and results['global_step'] == 12
    assert results['weights_sha256'] == fingerprints['0']
    # The chief's outputs only (its hparams session is the one event file at the top); nothing of worker 1.
    top = sorted(name for name in os.listdir(logdir / 'mw') if not name.startswith('events.out.tfevents.'))
    assert top == ['checkpoints', 'config.json', 'eval', 'results.json', 'train']
    assert len(os.listdir(logdir / 'mw')) == len(top) + 1
    assert sorted(os.listdir(tmp_path / 'models')) == ['latest', 'mw']  # no worker's scratch export
    assert 'ckpt-12.index' in os.listdir(logdir / 'mw' / 'checkpoints')


@pytest.mark.parametrize('precision', ['mixed_float16', 'mixed_bfloat16'])
def test_mixed_precision_trains_under_mirrored(tmp_path, tiny_data_dir, precision):
    cfg = smoke_config(str(tmp_path), tiny_data_dir, strategy='mirrored', cpu_replicas=2, precision=precision,
                       train_steps=40, arch='simple', learning_rate=0.01)
    lines = []
    results = experiment.train_and_evaluate(cfg, log=lines.append)
    losses = [float(line.split('loss ')[1].split()[0]) for line in lines if line.startswith('train')]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses
    assert results['test_accuracy'] > 0.9 and results['test_examples'] == TINY_TEST
    assert tf.keras.mixed_precision.dtype_policy().name == 'float32'  # not leaked to later models
    saved = [name for name, _ in tf.train.list_variables(os.path.join(cfg.run_dir, 'checkpoints'))]
    assert any('dynamic_scale' in name for name in saved) == (precision == 'mixed_float16')


def test_mixed_float16_model_computes_in_float16_with_float32_logits():
    net = model.create('cnn', precision='mixed_float16')
    assert net.blocks.layers[0].compute_dtype == 'float16' and net.blocks.layers[0].variable_dtype == 'float32'
    assert net(tf.zeros([2, 28, 28, 1])).dtype == tf.float32
    assert model.create('cnn').blocks.layers[0].compute_dtype == 'float32'
