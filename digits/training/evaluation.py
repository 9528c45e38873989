"""Evaluates what training left: an export, or a run's latest checkpoint (rebuilt from its config.json).

The training run and this use the same evaluation (loop.make_evaluator), so evaluating a run's export
reproduces the test accuracy in its results.json exactly. Imports no training assembly.
"""
import os

import numpy as np
import tensorflow as tf

from digits import atomic
from digits.config import EvalConfig, train_config_from_stored
from digits.data import arrays, datasets
from digits.errors import DigitsError
from digits.export import saved_model
from digits.reporting import analysis, reports
from digits.training import loop, run_dir
from digits.training import model as model_lib
from digits.training import optimizer as optimizer_lib


def evaluate_saved(config: EvalConfig, log=print) -> dict:
    """Evaluates an export or a run's latest checkpoint on a test set; returns accuracy, loss, num_examples."""
    if config.model:
        module = saved_model.load(config.model)
        logits_fn = lambda images: module.serve(images)['logits']
        dataset = config.dataset or datasets.DEFAULT
    else:
        model, dataset = restore_model(config.run_dir)
        dataset = config.dataset or dataset
        logits_fn = lambda images: model(images, training=False)
    test = arrays.load(dataset, config.data_dir).test
    metrics = loop.make_evaluator(tf.distribute.get_strategy(), logits_fn, test, config.batch_size,
                                  probabilities=bool(config.report_dir))()
    probabilities = metrics.pop('probabilities', None)  # metrics: plain numbers
    log(f'{config.model or config.run_dir}: {dataset} test accuracy {100 * metrics["accuracy"]:.2f}%  '
        f'loss {metrics["loss"]:.4f}  ({metrics["num_examples"]} examples)')
    if config.output_json:
        atomic.write_json(config.output_json, metrics)
    if config.report_dir:
        result = analysis.Analysis(probabilities, test.labels.astype(np.int64))  # the same pass, no second one
        path = reports.write_report(config.report_dir, result, test, dataset=dataset,
                                      source=config.model or config.run_dir)
        log(f'report: {path}')
    return metrics


def restore_model(root: str):
    """Rebuilds a run's model from its config.json and restores the latest checkpoint's weights (their
    moving average if the run kept one); returns (model, dataset name)."""
    run = run_dir.RunDir(root)
    config = train_config_from_stored(atomic.read_json(run.config_path))
    if config.arch == 'line':
        raise DigitsError(f'--run_dir ({root}) trained the line reader, which reads lines, not digits: its '
                          f'results.json has its test lines; give the digit model\'s run, '
                          f'{os.path.dirname(os.path.abspath(root))}')
    latest = tf.train.latest_checkpoint(run.checkpoint_dir)
    if latest is None:
        raise DigitsError(f'--run_dir ({root}) has no checkpoint in {run.checkpoint_dir}')
    model = model_lib.create_for(config, precision='float32')
    if not config.ema_decay:
        run_dir.read_checkpoint(tf.train.Checkpoint(model=model), latest).expect_partial()
        return model, config.dataset
    # The weights' moving average lives in the optimizer: rebuild it as trained, restore, swap it in.
    optimizer = optimizer_lib.create_for(config, total_steps=max(config.train_steps, config.warmup_steps + 2))
    state = loop.create_state(model, optimizer)
    run_dir.read_checkpoint(state.checkpoint(), latest).expect_partial()
    optimizer_lib.base_optimizer(optimizer).finalize_variable_values(model.trainable_variables)
    return model, config.dataset
