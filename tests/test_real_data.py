"""On real MNIST (the bundled mnist_10k): a short training run and exact evaluation."""
import dataclasses
import json
import os

import pytest
from absl import flags
from conftest import ROOT, run_module

from digits import config
from digits.data import datasets
from digits.training import experiment, loop


def test_short_training_on_real_mnist(real_model, real_data_dir, tmp_path):
    cfg, results = real_model
    assert results['test_examples'] == 10000  # 384 does not divide 10,000: padding is masked
    assert results['test_accuracy'] > 0.95, results
    proc = run_module('digits.evaluate', f'--model={cfg.export_dir}', f'--data_dir={real_data_dir}',
                      '--batch_size=384', f'--output_json={tmp_path}/eval.json')
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'eval.json') as f:
        metrics = json.load(f)
    assert metrics['num_examples'] == 10000 and metrics['accuracy'] == results['test_accuracy']


@pytest.mark.parametrize('recipe,data_fixture', [('mnist.cfg', 'real_data_dir'),
                                                 ('fashion_mnist.cfg', 'fashion_data_dir')])
def test_recipes_train_far_below_the_divergence_limit(recipe, data_fixture, request):
    """A recipe's largest training loss comes at its start (measured over 5 seeds x 400 steps with
    scripts/divergence_margin.py: the first call's, at most 1.54 for either recipe); the mean of its first
    25 steps, above that of the whole first call, must stay far below the limit (23)."""
    values = flags.FlagValues()
    config.define_train_flags(values)
    values(['prog', f'--flagfile={os.path.join(ROOT, "configs", recipe)}',
            f'--data_dir={request.getfixturevalue(data_fixture)}', '--run_name=margin'])
    cfg = config.train_config_from_flags(values)
    losses = experiment.early_losses(dataclasses.replace(cfg, steps_per_loop=25), steps=25)
    limit = loop.divergence_limit(datasets.DATASETS[cfg.dataset].num_classes)
    assert len(losses) == 1 and losses[0] < limit / 5, losses
