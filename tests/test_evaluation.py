"""digits.training.evaluation: an export or a run's checkpoint evaluates to the run's own results."""
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import smoke_config

from digits import config
from digits.data import arrays, pipeline
from digits.errors import DigitsError
from digits.export import saved_model
from digits.training import evaluation, experiment
from digits.training import model as model_lib

QUIET = dict(log=lambda line: None)


def test_run_without_checkpoint_is_one_line_error(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'config.json').write_text('{"model": "simple", "dataset": "mnist"}')
    with pytest.raises(DigitsError, match=rf'^--run_dir \({run}\) has no checkpoint in {run}/checkpoints$'):
        evaluation.restore_model(str(run))


def train_and_evaluate_three_ways(cfg) -> dict:
    """Trains cfg; checks that evaluate --run_dir and evaluate --model read what results.json says."""
    results = experiment.train_and_evaluate(cfg, **QUIET)
    from_run = evaluation.evaluate_saved(config.EvalConfig(run_dir=cfg.run_dir, data_dir=cfg.data_dir), **QUIET)
    from_export = evaluation.evaluate_saved(config.EvalConfig(model=cfg.export_dir, data_dir=cfg.data_dir), **QUIET)
    assert from_run['accuracy'] == from_export['accuracy'] == results['test_accuracy']
    assert from_run['loss'] == pytest.approx(results['test_loss'], rel=1e-5)
    return results


@pytest.mark.parametrize('strategy,replicas', [('default', 0), ('mirrored', 2)])
def test_ema_weights_are_evaluated_exported_and_restored(tmp_path, tiny_data_dir, strategy, replicas):
    """With --ema_decay, results, the export and evaluate --run_dir all use the averaged weights, while
    the checkpoint keeps the trained ones (training resumes from those)."""
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple', ema_decay=0.9, lr_schedule='constant',
                       strategy=strategy, cpu_replicas=replicas)
    results = train_and_evaluate_three_ways(cfg)
    averaged, _ = evaluation.restore_model(cfg.run_dir)
    assert experiment.weights_fingerprint(averaged) == results['weights_sha256']
    latest = tf.train.latest_checkpoint(os.path.join(cfg.run_dir, 'checkpoints'))
    trained = model_lib.create('simple')
    tf.train.Checkpoint(model=trained).restore(latest).expect_partial()
    assert experiment.weights_fingerprint(trained) != results['weights_sha256']


def test_tta_is_in_the_results_the_export_and_the_restored_run(tmp_path, tiny_data_dir):
    """With --tta (the default recipe's), every evaluation reads the mean probability over the shifts."""
    cfg = smoke_config(str(tmp_path), tiny_data_dir, width=8, blocks=3, first_block_convs=1, tta=True)
    train_and_evaluate_three_ways(cfg)
    restored, _ = evaluation.restore_model(cfg.run_dir)
    images = pipeline.to_float(arrays.load('mnist', tiny_data_dir).test.images[:16])
    shifted = [tf.nn.softmax(restored.plain_logits(x, training=False)) for x in model_lib.shifted_copies(images)]
    module = saved_model.load(cfg.export_dir)  # held: serve's variables live as long as the module
    np.testing.assert_allclose(module.serve(images)['probabilities'], np.mean(shifted, axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('strategy,replicas', [('default', 0), ('mirrored', 2)])
def test_an_ensemble_is_in_the_results_the_export_and_the_restored_run(tmp_path, tiny_data_dir, strategy, replicas):
    """With --ensemble, every evaluation and the export read the mean probability of the trained members."""
    cfg = smoke_config(str(tmp_path), tiny_data_dir, arch='simple', ensemble=2, strategy=strategy,
                       cpu_replicas=replicas)
    results = train_and_evaluate_three_ways(cfg)
    assert results['test_accuracy'] > 0.9
    restored, _ = evaluation.restore_model(cfg.run_dir)
    assert experiment.weights_fingerprint(restored) == results['weights_sha256']
    images = pipeline.to_float(arrays.load('mnist', tiny_data_dir).test.images[:16])
    # In log space: trained members agree to 1e-6 on the likely class, but not on the unlikely ones.
    members = np.array([tf.nn.log_softmax(member(images, training=False)) for member in restored.members], np.float64)
    assert np.abs(members[0] - members[1]).max() > 0.1
    want = np.logaddexp(members[0], members[1]) - np.log(2)  # log of the mean probability
    module = saved_model.load(cfg.export_dir)
    np.testing.assert_allclose(tf.nn.log_softmax(module.serve(images)['logits']), want, rtol=1e-4, atol=1e-4)
