"""Assembles a training run (strategy, data, model, checkpoint, loop, results, export) and evaluation.

The entry points call `train_and_evaluate` and `evaluate_saved`; both take a config, never flags.
"""
import dataclasses
import math
import os
import time

import tensorflow as tf

from digits import config as config_lib
from digits import data, distribute, export, loop, model as model_lib, run_dir, summaries
from digits.errors import DigitsError


def train_and_evaluate(config: config_lib.TrainConfig, log=print) -> dict:
    """Trains per `config`, evaluates on the test set, writes results.json and the export; returns results."""
    wall_start = time.time()
    strategy = distribute.create_strategy(config.strategy, config.cpu_replicas)
    chief = distribute.is_chief(strategy)
    run = run_dir.create(config.run_dir)
    run_dir.write_json(run.config_path, dataclasses.asdict(config))
    tf.keras.utils.set_random_seed(config.seed)

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
        model = model_lib.create(config.model, config.l2)
        optimizer = loop.create_optimizer(config.optimizer, config.learning_rate, config.lr_schedule,
                                          total_steps, config.warmup_steps, config.momentum,
                                          config.weight_decay)
        state = loop.create_state(model, optimizer)
    manager = run_dir.checkpoint_manager(state.checkpoint(), run)
    restore_latest(manager, log)

    train_ds = strategy.distribute_datasets_from_function(
        lambda ctx: data.train_dataset(train_split, config.batch_size, config.seed, config.augment,
                                       start_step=int(state.step.numpy()), input_context=ctx))
    run_eval = make_evaluator(strategy, lambda images: model(images, training=False), eval_split,
                              config.eval_batch_size)
    intervals = loop.Intervals(total_steps, config.steps_per_loop, config.log_every_steps,
                               config.eval_every_steps, config.checkpoint_every_steps)
    writers = summaries.Writers(run.root if chief else None)
    outcome = loop.train(state, loop.make_train_fn(strategy, state, config.batch_size), iter(train_ds),
                         intervals, steps_per_epoch, config.batch_size, run_eval,
                         lambda step: manager.save(checkpoint_number=step), writers, log)

    final = outcome['eval'] or run_eval()
    results = {f'{eval_name}_accuracy': final['accuracy'], f'{eval_name}_loss': final['loss'],
               f'{eval_name}_examples': final['num_examples'], 'global_step': int(state.step.numpy()),
               'train_examples_per_sec': outcome['train_examples_per_sec'],
               'wall_seconds': time.time() - wall_start, 'flags': dataclasses.asdict(config)}
    if eval_name != 'test':
        test = run_eval_on(strategy, model, arrays.test, config.eval_batch_size)
        results.update(test_accuracy=test['accuracy'], test_loss=test['loss'],
                       test_examples=test['num_examples'])
    if chief:
        export.save(model, config.export_dir)
        results['wall_seconds'] = time.time() - wall_start
        run_dir.write_json(run.results_path, results)
        log(f'done   test accuracy {100 * results["test_accuracy"]:.2f}% on {results["test_examples"]} '
            f'examples, {results["wall_seconds"]:.0f}s; results {run.results_path}, export {config.export_dir}')
    return results


def restore_latest(manager: tf.train.CheckpointManager, log) -> int | None:
    """Restores the latest checkpoint if there is one; returns its step."""
    if not manager.latest_checkpoint:
        return None
    manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    step = int(manager.checkpoint.step.numpy())
    log(f'resumed from step {step} ({manager.latest_checkpoint})')
    return step


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
