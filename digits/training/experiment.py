"""Assembles a training run: strategy, data, model, checkpoint, the loop and its actions, results, export.

The entry point calls `train_and_evaluate` with a config, never flags. Evaluating an export or a
checkpoint afterwards is digits.training.evaluation's job.
"""
import contextlib
import dataclasses
import hashlib
import math
import os
import resource
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

import digits
from digits import atomic
from digits import config as config_lib
from digits.data import arrays, datasets, line_format, pipeline, synthetic_lines
from digits.errors import DigitsError
from digits.export import saved_model
from digits.reporting import reports, summaries
from digits.training import ctc, distribute, loop, negatives, preemption, run_dir
from digits.training import model as model_lib
from digits.training import optimizer as optimizer_lib


def train_and_evaluate(config: config_lib.TrainConfig, log=print) -> dict:
    """Trains per `config` (resuming its run if it exists), evaluates, writes results.json and the export.

    Returns the results; a run that already finished is not trained again: its results are returned. A
    new run that fails before its first checkpoint leaves no run directory behind.
    """
    wall_start = time.time()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()  # Also makes tf.data keep its order.
    strategy = distribute.create_strategy(config.strategy, config.cpu_replicas, config.tpu)
    check_batch_size(config.batch_size, strategy.num_replicas_in_sync)
    chief = distribute.is_chief(strategy)
    fresh = chief and not os.path.exists(config.run_dir)
    run = prepare_run_dir(config, chief)
    with removed_unless_started(run, fresh):
        results = train_in(config, strategy, run, log)
    if 'wall_seconds' not in results:  # not a finished run's stored results
        results['wall_seconds'] = time.time() - wall_start
        if chief:
            atomic.write_json(run.results_path, results)
            log(f'done   test {"exact lines" if reads_lines(config) else "accuracy"} '
                f'{100 * results["test_accuracy"]:.2f}% on {results["test_examples"]} '
                f'{"lines" if reads_lines(config) else "examples"}, {results["wall_seconds"]:.0f}s (first step after '
                f'{results["time_to_first_step"]}s, peak memory {results["peak_memory_mb"]:.0f} MiB); results '
                f'{run.results_path}, export {config.export_dir}')
    if config.line_steps and not reads_lines(config):
        results = with_line_reader(config, results, run, chief, log)
    if chief and not reads_lines(config):  # models/latest: what digits.predict and digits.serve read
        saved_model.link_latest(config.export_dir)
    return results


def with_line_reader(config: config_lib.TrainConfig, results: dict, run: run_dir.RunDir, chief: bool, log) -> dict:
    """Trains the line reader after the digit model (config.line_reader_config(): its run and export inside
    this run's), or returns its stored results; the run's results gain them, as 'line_reader'."""
    line = train_and_evaluate(config.line_reader_config(), log)
    summary = {k: line[k] for k in ('test_accuracy', 'test_loss', 'test_examples', 'global_step', 'wall_seconds',
                                    'weights_sha256')}
    if results.get(config_lib.LINE_READER) != summary:
        results = {**results, config_lib.LINE_READER: summary}
        if chief:
            atomic.write_json(run.results_path, results)
    return results


def train_in(config: config_lib.TrainConfig, strategy, run: run_dir.RunDir, log) -> dict:
    """Loads the data, builds or restores the train state, trains, evaluates and exports; returns results."""
    chief, task = distribute.is_chief(strategy), distribute.task_id(strategy)
    keras.utils.set_random_seed(config.seed)
    data = arrays.load(config.dataset, config.data_dir)
    train_split, eval_split, eval_name = split_for_training(data, config)
    digit_count = len(train_split)
    num_examples = digit_count + negatives.count_for(digit_count, config.negatives)
    steps_per_epoch = config.steps_per_epoch(num_examples)
    total_steps = config.total_steps(num_examples)
    finished = finished_results(run, total_steps)
    if finished:
        log(f'digits: run {run.root} already finished at step {finished["global_step"]} (test accuracy '
            f'{100 * finished["test_accuracy"]:.2f}%, {run.results_path}); nothing to do. Use a new '
            f'--run_name to train again')
        return finished
    train_split = with_negatives(config, train_split)  # after the check: a finished run needs no marks made
    eval_split = line_split(config, eval_split) if reads_lines(config) else eval_split
    members = f' x {config.ensemble}' if config.ensemble > 1 else ''  # an ensemble of that many
    refusing = f' + {len(train_split) - digit_count} not digits' if len(train_split) > digit_count else ''
    what = 'lines' if reads_lines(config) else 'examples'
    log(f'digits: {config.dataset} ({arrays.source_of(config.dataset, config.data_dir)}): {digit_count} train'
        f'{refusing} / {len(eval_split)} {eval_name} {what}, arch {config.arch}{members}, '
        f'{strategy.num_replicas_in_sync} replica(s), {total_steps} steps '
        f'({total_steps / steps_per_epoch:.1f} epochs), run {run.root}')

    with strategy.scope():
        state = create_train_state(config, total_steps)
    saver = run_dir.checkpoint_manager(state.checkpoint(), run, task, chief)
    restore_latest(state.checkpoint(), run.checkpoint_dir, log)
    train_ds = strategy.distribute_datasets_from_function(
        lambda ctx: train_dataset(config, train_split, start_step=int(state.step.numpy()), input_context=ctx))
    objective = objective_for(config)
    # Evaluation sees the weights' moving average when --ema_decay is set (optimizer.averaged_weights).
    run_eval = optimizer_lib.averaging(state.model, state.optimizer, loop.make_evaluator(
        strategy, lambda images: state.model(images, training=False), eval_split, config.eval_batch_size,
        probabilities=reports.reports_evaluations(config), objective=objective_for(config, evaluation=True)))
    train_fn = loop.make_train_fn(strategy, state, config.batch_size, jit_compile=config.jit_compile,
                                  objective=objective)
    writers = summaries.Writers(run.root if chief else None)
    reports.write_run_summaries(writers, config, train_split, int(state.step.numpy()))
    with create_stop(strategy, config, saver) as stop:
        actions = create_actions(config, state, run_eval=run_eval, eval_split=eval_split, saver=saver, stop=stop,
                                 writers=writers, profile_dir=run.summary_dir('train') if chief else None,
                                 steps_per_epoch=steps_per_epoch, log=log)
        outcome = loop.train(state, train_fn, iter(train_ds), total_steps=total_steps,
                             steps_per_loop=config.steps_per_loop, global_batch=config.batch_size, actions=actions,
                             max_loss=objective.max_loss)
    last_eval = next(action.last for action in actions if isinstance(action, loop.Evaluate))
    with optimizer_lib.averaged_weights(state.model, state.optimizer):
        results = finish_run(config, strategy, state, outcome=outcome, last_eval=last_eval or run_eval(),
                             test_split=data.test, eval_name=eval_name, log=log)
    results.update(dataset=config.dataset, data_source=arrays.source_of(config.dataset, config.data_dir),
                   train_examples=digit_count, train_negatives=len(train_split) - digit_count)
    return results


@contextlib.contextmanager
def removed_unless_started(run: run_dir.RunDir, fresh: bool):
    """Inside: a failure of a new run (fresh) before its first checkpoint removes its run directory, so a
    failed download or a bad data folder leaves nothing behind to resume from."""
    try:
        yield
    except BaseException:
        if fresh and tf.train.latest_checkpoint(run.checkpoint_dir) is None:
            shutil.rmtree(run.root, ignore_errors=True)
        raise


def create_actions(config: config_lib.TrainConfig, state: loop.TrainState, *, run_eval, eval_split: arrays.Split,
                   saver, stop, writers: summaries.Writers, profile_dir: str | None, steps_per_epoch: int,
                   log) -> list[loop.PeriodicAction]:
    """The outer loop's chores, in the order they run after a call: profile, log, evaluate, checkpoint, stop."""
    on_eval = reports.make_eval_report(writers, config, state.model, eval_split)
    profiler = summaries.Profiler(profile_dir, config.profile_steps if profile_dir else 0,
                                  skip_until=int(state.step.numpy()) + 1)
    return [loop.Profile(profiler),
            loop.LogProgress(config.log_every_steps, optimizer=state.optimizer, steps_per_epoch=steps_per_epoch,
                             writers=writers, log=log),
            loop.Evaluate(config.eval_every_steps, run_eval=run_eval, writers=writers, log=log,
                          on_eval=on_eval and optimizer_lib.averaging(state.model, state.optimizer, on_eval)),
            loop.SaveCheckpoint(config.checkpoint_every_steps, save=saver.save),
            loop.StopOnSignal(stop, save=saver.save, writers=writers)]


def finish_run(config: config_lib.TrainConfig, strategy, state: loop.TrainState, *, outcome: dict,
               last_eval: dict, test_split: arrays.Split, eval_name: str, log) -> dict:
    """Results from the last evaluation (and the test set, if training evaluated on validation), checks,
    export."""
    chief, task = distribute.is_chief(strategy), distribute.task_id(strategy)
    final = last_eval
    results = {f'{eval_name}_accuracy': final['accuracy'], f'{eval_name}_loss': final['loss'],
               f'{eval_name}_examples': final['num_examples'], 'global_step': int(state.step.numpy()),
               'train_examples_per_sec': outcome['train_examples_per_sec'],
               'time_to_first_step': seconds_since_start(outcome['first_call_done']),
               'peak_memory_mb': peak_memory_mb(),
               'weights_sha256': weights_fingerprint(state.model), 'flags': dataclasses.asdict(config)}
    if eval_name != 'test':
        test = run_eval_on(strategy, state.model, line_split(config, test_split) if reads_lines(config)
                           else test_split, config.eval_batch_size, objective=objective_for(config, evaluation=True))
        results.update(test_accuracy=test['accuracy'], test_loss=test['loss'],
                       test_examples=test['num_examples'])
    check_finite_results(results)
    log(f'weights sha256 {results["weights_sha256"]} (worker {task})')
    export_model(state.model, config.export_dir, None if reads_lines(config)
                 else datasets.DATASETS[config.dataset].image_shape, chief=chief, task=task)
    return results


def prepare_run_dir(config: config_lib.TrainConfig, chief: bool) -> run_dir.RunDir:
    """Creates or reopens the run directory; refuses to resume with incompatible flags; stores the flags."""
    if not chief:
        return run_dir.RunDir(config.run_dir)
    run = run_dir.create(config.run_dir)
    atomic.check_writable(os.path.dirname(os.path.abspath(config.export_dir)),
                           f'the parent of --export_dir ({config.export_dir})')
    if os.path.exists(run.config_path):
        config_lib.check_resumable(config, atomic.read_json(run.config_path), run.config_path)
    atomic.write_json(run.config_path, dataclasses.asdict(config))
    return run


def with_negatives(config: config_lib.TrainConfig, split: arrays.Split) -> arrays.Split:
    """The training split with config's marks that are not digits after it (none with --negatives=0). The
    line reader's are letters, signs and scribbles, labelled line_format.NOT_A_DIGIT: two digits touching are
    not a mark on a line."""
    if reads_lines(config):
        return negatives.with_negatives(split, config.negatives, config.seed, line_format.NOT_A_DIGIT,
                                        kinds=('glyph', 'scribble'))
    return negatives.with_negatives(split, config.negatives, config.seed,
                                    datasets.DATASETS[config.dataset].num_classes)


def reads_lines(config: config_lib.TrainConfig) -> bool:
    """Whether the run trains the line reader (--arch=line) rather than a digit model."""
    return config.arch == 'line'


def objective_for(config: config_lib.TrainConfig, evaluation: bool = False) -> loop.Objective:
    """What the run's model is trained on (or, evaluation, evaluated by): CTC over lines, or cross-entropy
    over digits (in evaluation the plain one: no smoothing, and no marks in the evaluation sets)."""
    num_classes = datasets.DATASETS[config.dataset].num_classes
    if reads_lines(config):
        return ctc.line_objective(num_classes)
    if evaluation:
        return loop.digit_objective(num_classes)
    return loop.digit_objective(num_classes, label_smoothing=config.label_smoothing, negatives=bool(config.negatives))


def train_dataset(config: config_lib.TrainConfig, split: arrays.Split, *, start_step: int, input_context):
    """The run's endless training batches: lines composed from split's digits and marks, or its digits."""
    if reads_lines(config):
        return synthetic_lines.train_dataset(split, config.batch_size, config.seed, start_step=start_step,
                                   input_context=input_context)
    return pipeline.train_dataset_for(config, split, start_step=start_step, input_context=input_context)


def line_split(config: config_lib.TrainConfig, split: arrays.Split) -> arrays.Split:
    """synthetic_lines.EVAL_LINES lines composed once from an evaluation split's digits (the same for every
    seed)."""
    return synthetic_lines.fixed_lines(split, synthetic_lines.EVAL_LINES, seed=0)


def split_for_training(data: arrays.Arrays, config: config_lib.TrainConfig):
    """(train, eval, eval name): the test set, or a held-out part of the training set to tune on."""
    if config.validation_split:
        train_split, eval_split = arrays.hold_out(data.train, config.validation_split, config.seed)
        eval_name = 'validation'
    else:
        train_split, eval_split, eval_name = data.train, data.test, 'test'
    arrays.check_batch_fits(train_split, config.batch_size)  # before steps_per_epoch divides by it
    return train_split, eval_split, eval_name


def finished_results(run: run_dir.RunDir, total_steps: int) -> dict | None:
    """The run's results if it already trained to total_steps, else None."""
    if not os.path.exists(run.results_path):
        return None
    results = atomic.read_json(run.results_path)
    return results if results.get('global_step', 0) >= total_steps else None


def create_stop(strategy, config: config_lib.TrainConfig, saver):
    """What stops training cleanly on SIGTERM / SIGINT (see digits.training.preemption)."""
    if config.strategy == 'multi_worker':
        with strategy.scope():
            return preemption.MultiWorkerStop(strategy, saver)
    return preemption.SignalStop()


def check_finite_results(results: dict):
    """Never export or report a model whose evaluation is not a number."""
    for key in ('test_loss', 'validation_loss'):
        if key in results and not math.isfinite(results[key]):
            raise DigitsError(f'{key} is {results[key]}: the weights are not finite; nothing exported. '
                              f'Lower --learning_rate and use a new --run_name')


def check_batch_size(batch_size: int, num_replicas: int):
    """The global batch must split evenly over the replicas."""
    if batch_size % num_replicas:
        raise DigitsError(f'--batch_size ({batch_size}) must be divisible by the number of replicas '
                          f'({num_replicas}); try {batch_size // num_replicas * num_replicas or num_replicas}')


def create_train_state(config: config_lib.TrainConfig, total_steps: int) -> loop.TrainState:
    """Model, optimizer (loss-scaled for float16) and step; call inside strategy.scope()."""
    model = model_lib.create_for(config)
    return loop.create_state(model, optimizer_lib.create_for(config, total_steps))


def restore_latest(checkpoint: tf.train.Checkpoint, directory: str, log) -> int | None:
    """Restores the latest checkpoint in directory (every worker reads the chief's); returns its step."""
    latest = tf.train.latest_checkpoint(directory)
    if not latest:
        return None
    run_dir.read_checkpoint(checkpoint, latest, '; it was left as it is: delete it to resume from an earlier '
                                                'one, or use a new --run_name')
    step = int(checkpoint.step.numpy())
    log(f'resumed from step {step} ({latest})')
    return step


def export_model(model, export_dir: str, image_shape: tuple[int, int] | None, *, chief: bool, task: int):
    """The chief exports (image_shape None: a line reader); the other workers must take part in saving too,
    so they write a copy and delete it."""
    if chief:
        saved_model.save(model, export_dir, image_shape)
        return
    scratch = os.path.join(os.path.dirname(os.path.abspath(export_dir)), f'.worker-{task}-export')
    saved_model.save(model, scratch, image_shape)
    shutil.rmtree(scratch, ignore_errors=True)


def seconds_since_start(when: float | None) -> float | None:
    """Seconds from process start (digits.PROCESS_START) to `when` (None if nothing was trained in this process)."""
    return None if when is None else round(when - digits.PROCESS_START, 2)


def peak_memory_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def weights_fingerprint(model) -> str:
    """SHA-256 of every weight's bytes, in order: equal fingerprints mean bit-identical models."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def run_eval_on(strategy, model, split: arrays.Split, batch_size: int, *, objective: loop.Objective | None = None
                ) -> dict:
    """Evaluates a Keras model on split once (a digit model's objective unless given one)."""
    return loop.make_evaluator(strategy, lambda images: model(images, training=False), split, batch_size,
                               objective=objective)()


def early_losses(cfg: config_lib.TrainConfig, steps: int) -> list[float]:
    """The mean training loss of each tf.function call over cfg's first `steps` steps."""
    keras.utils.set_random_seed(cfg.seed)
    train = with_negatives(cfg, arrays.load(cfg.dataset, cfg.data_dir).train)
    total_steps = cfg.total_steps(len(train))
    state = create_train_state(cfg, total_steps)
    strategy = tf.distribute.get_strategy()
    train_fn = loop.make_train_fn(strategy, state, cfg.batch_size, label_smoothing=cfg.label_smoothing,
                                  negatives=bool(cfg.negatives))
    iterator = iter(pipeline.train_dataset_for(cfg, train))
    calls = -(-steps // cfg.steps_per_loop)
    return [float(train_fn(iterator, tf.constant(cfg.steps_per_loop))['loss']) for _ in range(calls)]
