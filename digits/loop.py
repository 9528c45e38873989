"""The training loop: a multi-step tf.function around GradientTape, evaluation, and the outer loop.

The step function only updates the model and returns tensors; the outer Python loop decides when to
log, evaluate and checkpoint (`is_time`), and is the only place that converts tensors to numbers.
"""
import contextlib
import dataclasses
import math
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from digits import summaries
from digits.errors import DigitsError

SUM = tf.distribute.ReduceOp.SUM
# A training run has diverged when the mean loss of one tf.function call exceeds this multiple of the loss
# of a uniform guess (ln 10 = 2.30 for ten classes): a fresh model starts near that loss and training
# lowers it, so 23 is far above any sound run (measured: README, Fault tolerance) and far below an
# exploding one, whose loss grows by orders of magnitude while it may stay finite.
DIVERGENCE_FACTOR = 10


@dataclasses.dataclass
class TrainState:
    """What a checkpoint holds: the model, the optimizer (with its slots) and the global step."""
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    step: tf.Variable

    def checkpoint(self) -> tf.train.Checkpoint:
        # Keras does not checkpoint its layers' random-number state (dropout's SeedGenerator); without it
        # a resumed run would draw different dropout masks than a run that never stopped.
        rng = [v for v in self.model.variables if v.path.endswith('seed_generator_state')]
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step, rng=rng)


@dataclasses.dataclass(frozen=True)
class Intervals:
    """When the outer loop does each of its chores, in steps."""
    total_steps: int
    steps_per_loop: int
    log_every: int
    eval_every: int
    checkpoint_every: int


def create_optimizer(name: str, learning_rate: float, schedule: str, total_steps: int, warmup_steps: int,
                     momentum: float = 0.9, weight_decay: float = 0.0,
                     ema_decay: float = 0.0) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule (create inside strategy.scope()).

    ema_decay > 0: the optimizer also keeps an exponential moving average of the weights (Keras'
    use_ema), which evaluation and the export use (see averaged_weights).
    """
    lr = learning_rate
    if schedule == 'cosine':
        warmup = min(warmup_steps, total_steps - 1)
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else learning_rate, decay_steps=total_steps - warmup,
            warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
    ema = dict(use_ema=True, ema_momentum=ema_decay) if ema_decay else {}
    if name == 'sgd':
        return keras.optimizers.SGD(lr, momentum=momentum, **ema)
    if name == 'adam':
        return keras.optimizers.Adam(lr, **ema)
    return keras.optimizers.AdamW(lr, weight_decay=weight_decay, **ema)


@contextlib.contextmanager
def averaged_weights(state: TrainState):
    """Inside: the model holds the optimizer's moving averages of its weights (if it keeps them);
    on exit the trained weights are back. Evaluation and export run inside, training outside."""
    optimizer = base_optimizer(state.optimizer)
    if not optimizer.use_ema:
        yield
        return
    variables = state.model.trainable_variables
    trained = [tf.identity(v) for v in variables]  # copies, not references to the variables
    optimizer.finalize_variable_values(variables)  # assigns the averages to the variables
    try:
        yield
    finally:
        for variable, value in zip(variables, trained):
            variable.assign(value)


def create_state(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> TrainState:
    """Builds the optimizer's slots and the step (inside strategy.scope(), before any tf.function trace)."""
    optimizer.build(model.trainable_variables)
    return TrainState(model, optimizer, tf.Variable(0, dtype=tf.int64, trainable=False, name='step'))


def base_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer itself, or the one a LossScaleOptimizer wraps (which holds the weight averages)."""
    return getattr(optimizer, 'inner_optimizer', optimizer)


def averaging(state: TrainState, fn: Callable) -> Callable:
    """fn, called inside averaged_weights(state)."""

    def averaged(*args, **kwargs):
        with averaged_weights(state):
            return fn(*args, **kwargs)

    return averaged


def example_losses(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy per example [b], computed in float32 whatever the model's compute dtype."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))


def smoothed_losses(logits: tf.Tensor, labels: tf.Tensor, smoothing: float) -> tf.Tensor:
    """Cross-entropy per example [b] against labels smoothed to (1 - s) * one_hot + s / 10; s=0: plain."""
    if not smoothing:
        return example_losses(logits, labels)
    num_classes = logits.shape[-1]
    targets = tf.one_hot(labels, num_classes) * (1.0 - smoothing) + smoothing / num_classes
    return tf.nn.softmax_cross_entropy_with_logits(targets, tf.cast(logits, tf.float32))


def count_correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """1.0 where argmax(logits) == label, else 0.0; [b]."""
    return tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)


def make_train_fn(strategy: tf.distribute.Strategy, state: TrainState, global_batch: int,
                  jit_compile: bool = False, label_smoothing: float = 0.0) -> Callable:
    """Returns train_fn(iterator, num_steps) -> {'loss', 'accuracy', 'grad_norm', 'weight_norm',
    'nonfinite_*'} over num_steps (grad_norm: the mean over the steps; weight_norm: after the last).

    `nonfinite_gradients` counts steps whose gradients held a NaN or Inf (summed over replicas). A
    LossScaleOptimizer skips such steps by design, so under float16 they are not counted.
    `nonfinite_weights` counts NaN / Inf weights after the last step: a NaN can hide behind a ReLU or a
    max-pool (oneDNN's max drops it), leaving the loss finite while the weights are not.
    jit_compile: XLA-compile the forward and backward pass, the part that compiles everywhere (the
    iterator and the optimizer's cross-replica update stay outside).
    label_smoothing: train against smoothed targets; the reported loss is then the smoothed one.
    """
    model, optimizer = state.model, state.optimizer
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def compute_gradients(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            losses = smoothed_losses(logits, labels, label_smoothing)
            # Averaged over the *global* batch: the optimizer sums the replicas' gradients.
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled_loss = optimizer.scale_loss(loss)  # Loss scaling for float16; identity otherwise.
        grads = tape.gradient(scaled_loss, model.trainable_variables)
        return grads, tf.stack([tf.reduce_sum(losses), tf.reduce_sum(count_correct(logits, labels))])

    if jit_compile:
        check_jit_compilable(model, strategy.num_replicas_in_sync)
        compute_gradients = tf.function(compute_gradients, jit_compile=True)

    def replica_step(images, labels):
        grads, sums = compute_gradients(images, labels)
        norm = gradient_norm(grads)  # Before the update, which may change the loss scale.
        # A LossScaleOptimizer unscales these, and skips the update if any is not finite.
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        bad_grads = 0.0 if loss_scaled else 1.0 - tf.cast(tf.math.is_finite(norm), tf.float32)
        return tf.concat([sums, [bad_grads, tf.where(tf.math.is_finite(norm), norm, 0.0)]], axis=0)

    def gradient_norm(grads):
        """The global norm of the whole batch's gradient (the replicas' gradients summed), unscaled."""
        if strategy.num_replicas_in_sync > 1:  # One extra all-reduce per step: exact, and cheap here.
            grads = tf.distribute.get_replica_context().all_reduce(SUM, grads)
        norm = tf.linalg.global_norm(grads)
        return norm / optimizer.dynamic_scale if loss_scaled else norm

    @tf.function
    def train_fn(iterator, num_steps):
        # [sum of example losses, number correct, bad-gradient steps, sum of gradient norms], all replicas.
        totals = tf.zeros([4])
        for _ in tf.range(num_steps):
            per_replica = strategy.run(replica_step, args=next(iterator))
            totals += strategy.reduce(SUM, per_replica, axis=None)
        examples = tf.cast(num_steps * global_batch, tf.float32)
        steps = tf.cast(num_steps * strategy.num_replicas_in_sync, tf.float32)  # each replica adds the norm
        return {'loss': totals[0] / examples, 'accuracy': totals[1] / examples,
                'grad_norm': totals[3] / steps, 'weight_norm': tf.linalg.global_norm(model.trainable_variables),
                'nonfinite_gradients': totals[2], 'nonfinite_weights': count_nonfinite(model.weights)}

    return train_fn


def check_jit_compilable(model: keras.Model, num_replicas: int):
    """Synchronized batch norm all-reduces inside the forward pass: not in a nested XLA function."""
    if num_replicas > 1 and any(getattr(layer, 'synchronized', False) for layer in model._flatten_layers()):
        raise DigitsError(f'--jit_compile cannot compile --model={model.name} on {num_replicas} replicas: its '
                          f'synchronized batch norm talks to the other replicas mid-step; use one replica '
                          f'or drop --jit_compile')


def count_nonfinite(variables) -> tf.Tensor:
    """The number of NaN or Inf values in variables, as a float32 scalar."""
    return tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(v), tf.float32)) for v in variables
                     if tf.as_dtype(v.dtype).is_floating])


def make_eval_fn(strategy: tf.distribute.Strategy, logits_fn: Callable) -> Callable:
    """Returns eval_fn(batch) -> [loss sum, correct, examples], weighted so padding counts for nothing."""

    def replica_step(images, labels, weights):
        logits = logits_fn(images)
        return tf.stack([tf.reduce_sum(example_losses(logits, labels) * weights),
                         tf.reduce_sum(count_correct(logits, labels) * weights), tf.reduce_sum(weights)])

    @tf.function
    def eval_fn(batch):
        return strategy.reduce(SUM, strategy.run(replica_step, args=batch), axis=None)

    return eval_fn


def evaluate(eval_fn: Callable, dataset) -> dict:
    """Runs eval_fn over a finite distributed dataset: {'loss', 'accuracy', 'num_examples'} as numbers."""
    totals = np.zeros(3, np.float64)
    for batch in dataset:
        totals += eval_fn(batch).numpy()
    loss_sum, correct, count = totals
    return {'loss': float(loss_sum / count), 'accuracy': float(correct / count),
            'num_examples': int(round(count))}


def is_time(step: int, previous_step: int, every: int, last_step: int) -> bool:
    """True if a multiple of `every` lies in (previous_step, step], or at the last step."""
    return step // every > previous_step // every or step == last_step


@dataclasses.dataclass
class Hooks:
    """What the outer loop calls between tf.function calls."""
    run_eval: Callable[[], dict]  # -> {'loss', 'accuracy', 'num_examples'}
    save_checkpoint: Callable[[int], str]  # step -> checkpoint path
    writers: summaries.Writers
    log: Callable[[str], None] = print
    stop: object | None = None  # digits.preemption: .check(step, save_checkpoint) may raise Interrupted
    profiler: summaries.Profiler | None = None
    on_eval: Callable[[int], None] | None = None  # after each evaluation: the chief's images, histograms


def train(state: TrainState, train_fn: Callable, iterator, intervals: Intervals, steps_per_epoch: int,
          global_batch: int, hooks: Hooks, *, max_loss: float) -> dict:
    """The outer loop, from state.step to intervals.total_steps; returns the last train and eval metrics.

    After each tf.function call it checks the numbers (before anything can be saved: check_training, with
    max_loss from divergence_limit), then does the chores that are due. Also returns `first_call_done`: the Unix time the first call returned.
    """
    step, last = int(state.step.numpy()), intervals.total_steps
    window = summaries.Window()
    train_seconds, trained_examples, eval_metrics, first_call_done = 0.0, 0, {}, None
    lowest_loss = None
    while step < last:
        num_steps = min(intervals.steps_per_loop, last - step)
        if hooks.profiler:
            hooks.profiler.before_call(step)
        start = time.perf_counter()
        metrics = {k: float(v) for k, v in train_fn(iterator, tf.constant(num_steps)).items()}
        seconds = time.perf_counter() - start  # float() above waited for the device: this is real time.
        first_call_done = first_call_done or time.time()
        previous, step = step, step + num_steps
        check_training(metrics, previous, step, lowest_loss=lowest_loss, max_loss=max_loss)
        lowest_loss = metrics['loss'] if lowest_loss is None else min(lowest_loss, metrics['loss'])
        state.step.assign(step)
        window.add({k: metrics[k] for k in ('loss', 'accuracy', 'grad_norm', 'weight_norm')}, num_steps,
                   num_steps * global_batch, seconds)
        train_seconds, trained_examples = train_seconds + seconds, trained_examples + num_steps * global_batch
        eval_metrics = do_chores(state, hooks, intervals, window, previous, step, steps_per_epoch) or eval_metrics
    hooks.writers.flush()
    if hooks.profiler:
        hooks.profiler.close()
    return {'eval': eval_metrics, 'train_examples_per_sec': trained_examples / max(train_seconds, 1e-9),
            'first_call_done': first_call_done}


def do_chores(state: TrainState, hooks: Hooks, intervals: Intervals, window: summaries.Window, previous: int,
              step: int, steps_per_epoch: int) -> dict | None:
    """Logs, evaluates, checkpoints when is_time says so, then lets hooks.stop act; returns eval metrics."""
    if hooks.profiler:
        hooks.profiler.after_call(step)
    last, eval_metrics = intervals.total_steps, None
    if is_time(step, previous, intervals.log_every, last):
        # convert_to_tensor: a constant rate is a MirroredVariable under mirrored, which float() refuses.
        scalars = window.flush(learning_rate=float(tf.convert_to_tensor(state.optimizer.learning_rate)))
        hooks.log(progress_line(step, last, steps_per_epoch, scalars))
        hooks.writers.write('train', step, scalars)
    if is_time(step, previous, intervals.eval_every, last):
        eval_metrics = hooks.run_eval()
        hooks.log(f'eval   step {step:>6}  loss {eval_metrics["loss"]:.4f}  accuracy '
                  f'{100 * eval_metrics["accuracy"]:.2f}%  ({eval_metrics["num_examples"]} examples)')
        hooks.writers.write('eval', step, {k: eval_metrics[k] for k in ('loss', 'accuracy')})
        if hooks.on_eval:
            hooks.on_eval(step)
    if is_time(step, previous, intervals.checkpoint_every, last):
        hooks.save_checkpoint(step)
    if hooks.stop is not None:
        hooks.writers.flush()  # Cheap, and nothing is lost if stop.check ends the run.
        hooks.stop.check(step, hooks.save_checkpoint)
    return eval_metrics


def divergence_limit(num_classes: int) -> float:
    """The training loss above which a run has diverged: DIVERGENCE_FACTOR x that of a uniform guess."""
    return DIVERGENCE_FACTOR * math.log(num_classes)


def check_training(metrics: dict, previous: int, step: int, *, lowest_loss: float | None, max_loss: float):
    """Stops the run before a diverged model (a loss over max_loss, or any NaN / Inf) can reach a
    checkpoint or the export; lowest_loss (of the calls before, if any) says how far the loss rose."""
    if metrics.get('nonfinite_gradients', 0) > 0:
        what = f'non-finite gradients ({int(metrics["nonfinite_gradients"])} replica-steps with NaN or Inf)'
    elif not np.isfinite(metrics['loss']):
        what = f'non-finite training loss ({metrics["loss"]})'
    elif metrics['loss'] > max_loss:
        rise = f', up from {lowest_loss:.3g}' if lowest_loss is not None else ''
        what = (f'training loss {metrics["loss"]:.3g}{rise} (the limit is {max_loss:.3g}, {DIVERGENCE_FACTOR}x '
                f'the loss of a uniform guess)')
    elif metrics.get('nonfinite_weights', 0) > 0:
        what = f'non-finite weights ({int(metrics["nonfinite_weights"])} NaN or Inf values)'
    else:
        return
    raise DigitsError(f'training diverged in steps {previous + 1}-{step}: {what}; nothing of these steps was '
                      f'saved, so the latest checkpoint (if any) is the last good one: rerun with a lower '
                      f'--learning_rate (or more --warmup_steps) to resume from it')


def progress_line(step: int, last: int, steps_per_epoch: int, scalars: dict) -> str:
    """One human-readable line: where the run is, how it is doing, and how long is left."""
    eta = (last - step) * scalars['step_time']
    return (f'train  step {step:>6}/{last}  epoch {step / steps_per_epoch:5.1f}  loss {scalars["loss"]:.4f}  '
            f'accuracy {100 * scalars["accuracy"]:6.2f}%  lr {scalars["learning_rate"]:.2e}  '
            f'{scalars["examples_per_sec"]:6.0f} ex/s  eta {format_seconds(eta)}')


def format_seconds(seconds: float) -> str:
    """62.5 -> '1m02s'."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f'{minutes}m{secs:02d}s' if minutes else f'{secs}s'
