"""Assembles a training run (strategy, data, model, checkpoint, loop, results, export) and evaluation.

The entry points call `train_and_evaluate` and `evaluate_saved`; both take a config, never flags.
"""
import dataclasses
import hashlib
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from digits import config as config_lib
from digits import data, distribute, export, loop, model as model_lib, run_dir, summaries
from digits.errors import DigitsError


def train_and_evaluate(config: config_lib.TrainConfig, log=print) -> dict:
    """Trains per `config`, evaluates on the test set, writes results.json and the export; returns results."""
    wall_start = time.time()
    strategy = distribute.create_strategy(config.strategy, config.cpu_replicas, config.tpu)
    chief = distribute.is_chief(strategy)
    check_batch_size(config.batch_size, strategy.num_replicas_in_sync)
    run = run_dir.create(config.run_dir) if chief else run_dir.RunDir(config.run_dir)
    if chief:
        run_dir.write_json(run.config_path, dataclasses.asdict(config))
    keras.utils.set_random_seed(config.seed)

    arrays = data.load(config.dataset, config.data_dir)
    train_split, eval_split, eval_name = arrays.train, arrays.test, 'test'
    if config.validation_split:
        train_split, eval_split = data.hold_out(arrays.train, config.validation_split, config.seed)
        eval_name = 'validation'
    steps_per_epoch = len(train_split) // config.batch_size
    if steps_per_epoch == 0:
        raise DigitsError(f'--batch_size ({config.batch_size}) is larger than the training set '
                          f'({len(train_split)} examples)')
    total_steps = config.train_steps or config.epochs * steps_per_epoch
    log(f'digits: {config.dataset} {len(train_split)} train / {len(eval_split)} {eval_name} examples, '
        f'model {config.model}, {strategy.num_replicas_in_sync} replica(s), {total_steps} steps '
        f'({total_steps / steps_per_epoch:.1f} epochs), run {run.root}')

    with strategy.scope():
        state = create_train_state(config, total_steps)
    manager = run_dir.checkpoint_manager(state.checkpoint(), run, distribute.task_id(strategy), chief)
    restore_latest(state.checkpoint(), run.checkpoint_dir, log)

    train_ds = strategy.distribute_datasets_from_function(
        lambda ctx: data.train_dataset(train_split, config.batch_size, config.seed, config.augment,
                                       start_step=int(state.step.numpy()), input_context=ctx))
    run_eval = make_evaluator(strategy, lambda images: state.model(images, training=False), eval_split,
                              config.eval_batch_size)
    intervals = loop.Intervals(total_steps, config.steps_per_loop, config.log_every_steps,
                               config.eval_every_steps, config.checkpoint_every_steps)
    outcome = loop.train(state, loop.make_train_fn(strategy, state, config.batch_size), iter(train_ds),
                         intervals, steps_per_epoch, config.batch_size, run_eval, manager.save,
                         summaries.Writers(run.root if chief else None), log)

    final = outcome['eval'] or run_eval()
    results = {f'{eval_name}_accuracy': final['accuracy'], f'{eval_name}_loss': final['loss'],
               f'{eval_name}_examples': final['num_examples'], 'global_step': int(state.step.numpy()),
               'train_examples_per_sec': outcome['train_examples_per_sec'],
               'weights_sha256': weights_fingerprint(state.model), 'flags': dataclasses.asdict(config)}
    if eval_name != 'test':
        test = run_eval_on(strategy, state.model, arrays.test, config.eval_batch_size)
        results.update(test_accuracy=test['accuracy'], test_loss=test['loss'],
                       test_examples=test['num_examples'])
    log(f'weights sha256 {results["weights_sha256"]} (worker {distribute.task_id(strategy)})')
    export_model(state.model, config.export_dir, chief, distribute.task_id(strategy))
    results['wall_seconds'] = time.time() - wall_start
    if chief:
        run_dir.write_json(run.results_path, results)
        log(f'done   test accuracy {100 * results["test_accuracy"]:.2f}% on {results["test_examples"]} '
            f'examples, {results["wall_seconds"]:.0f}s; results {run.results_path}, export {config.export_dir}')
    return results


def check_batch_size(batch_size: int, num_replicas: int):
    """The global batch must split evenly over the replicas."""
    if batch_size % num_replicas:
        raise DigitsError(f'--batch_size ({batch_size}) must be divisible by the number of replicas '
                          f'({num_replicas}); try {batch_size // num_replicas * num_replicas or num_replicas}')


def create_train_state(config: config_lib.TrainConfig, total_steps: int) -> loop.TrainState:
    """Model, optimizer (loss-scaled for float16) and step; call inside strategy.scope()."""
    model = model_lib.create(config.model, config.l2, config.precision)
    optimizer = loop.create_optimizer(config.optimizer, config.learning_rate, config.lr_schedule,
                                      total_steps, config.warmup_steps, config.momentum, config.weight_decay)
    if config.precision == 'mixed_float16':
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return loop.create_state(model, optimizer)


def restore_latest(checkpoint: tf.train.Checkpoint, directory: str, log) -> int | None:
    """Restores the latest checkpoint in directory (every worker reads the chief's); returns its step."""
    latest = tf.train.latest_checkpoint(directory)
    if not latest:
        return None
    checkpoint.restore(latest).assert_existing_objects_matched()
    step = int(checkpoint.step.numpy())
    log(f'resumed from step {step} ({latest})')
    return step


def export_model(model, export_dir: str, chief: bool, task: int):
    """The chief exports; the other workers must take part in saving too, so they write a copy and delete it."""
    if chief:
        export.save(model, export_dir)
        return
    scratch = os.path.join(os.path.dirname(os.path.abspath(export_dir)), f'.worker-{task}-export')
    export.save(model, scratch)
    shutil.rmtree(scratch, ignore_errors=True)


def weights_fingerprint(model) -> str:
    """SHA-256 of every weight's bytes, in order: equal fingerprints mean bit-identical models."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def make_evaluator(strategy, logits_fn, split: data.Split, batch_size: int):
    """Returns a no-argument function that evaluates logits_fn on every example of split."""
    global_batch = eval_global_batch(batch_size, strategy.num_replicas_in_sync)
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: data.eval_dataset(split, global_batch, input_context=ctx))
    eval_fn = loop.make_eval_fn(strategy, logits_fn)
    return lambda: loop.evaluate(eval_fn, dataset)


def run_eval_on(strategy, model, split: data.Split, batch_size: int) -> dict:
    """Evaluates a Keras model on split once."""
    return make_evaluator(strategy, lambda images: model(images, training=False), split, batch_size)()


def eval_global_batch(batch_size: int, num_replicas: int) -> int:
    """The evaluation batch rounded up so every replica gets the same share (padding is masked)."""
    return math.ceil(batch_size / num_replicas) * num_replicas


def evaluate_saved(config: config_lib.EvalConfig, log=print) -> dict:
    """Evaluates an export or a run's latest checkpoint on a test set; returns accuracy, loss, num_examples."""
    strategy = tf.distribute.get_strategy()
    if config.model:
        module = export.load(config.model)
        logits_fn = lambda images: module.serve(images)['logits']
        dataset = config.dataset or 'mnist'
    else:
        model, dataset = restore_model(config.run_dir)
        dataset = config.dataset or dataset
        logits_fn = lambda images: model(images, training=False)
    test = data.load(dataset, config.data_dir).test
    metrics = make_evaluator(strategy, logits_fn, test, config.batch_size)()
    log(f'{config.model or config.run_dir}: {dataset} test accuracy {100 * metrics["accuracy"]:.2f}%  '
        f'loss {metrics["loss"]:.4f}  ({metrics["num_examples"]} examples)')
    if config.output_json:
        run_dir.write_json(config.output_json, metrics)
    return metrics


def restore_model(root: str):
    """Rebuilds a run's model from its config.json and restores the latest checkpoint's weights."""
    run = run_dir.RunDir(root)
    stored = run_dir.read_json(run.config_path)
    latest = tf.train.latest_checkpoint(run.checkpoint_dir)
    if latest is None:
        raise DigitsError(f'--run_dir ({root}) has no checkpoint in {run.checkpoint_dir}')
    model = model_lib.create(stored['model'], stored.get('l2', 0.0))
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model, stored['dataset']
