"""The training loop: a multi-step tf.function around GradientTape, evaluation, and the outer loop.

The step function only updates the model and returns a dict of named tensors; the outer Python loop
checks them, then runs its periodic actions (log, evaluate, checkpoint, stop: PeriodicAction), each when
its interval says so and always at the last step. It is the only place that converts tensors to numbers.
"""
import dataclasses
import math
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from digits.data import arrays, pipeline
from digits.errors import DigitsError
from digits.reporting import summaries

SUM = tf.distribute.ReduceOp.SUM
# A training run has diverged when the mean loss of one tf.function call exceeds this multiple of the loss
# of a uniform guess (ln 10 = 2.30 for ten classes): a fresh model starts near that loss and training
# lowers it, so 23 is far above any sound run (docs/how-it-works.md: Divergence) and far below an
# exploding one, whose loss grows by orders of magnitude while it may stay finite.
DIVERGENCE_FACTOR = 10
CHECKS = ('nonfinite_gradients', 'nonfinite_weights')  # train_fn outputs that are checked, not logged


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


def create_state(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> TrainState:
    """Builds the optimizer's slots and the step (inside strategy.scope(), before any tf.function trace)."""
    optimizer.build(model.trainable_variables)
    return TrainState(model, optimizer, tf.Variable(0, dtype=tf.int64, trainable=False, name='step'))


def example_losses(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy per example [b], computed in float32 whatever the model's compute dtype."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))


def smoothed_losses(logits: tf.Tensor, labels: tf.Tensor, smoothing: float, negatives: bool = False) -> tf.Tensor:
    """Cross-entropy per example [b] against labels smoothed to (1 - s) * one_hot + s / classes; s=0: plain.

    negatives: labels may be `classes` (digits.training.negatives): a mark that is not a digit, whose target
    is the uniform distribution (outlier exposure)."""
    if not smoothing and not negatives:
        return example_losses(logits, labels)
    num_classes = logits.shape[-1]
    # tf.one_hot gives a row of zeros for the label `classes`; its uniform target gets the rest.
    outside = tf.cast(labels >= num_classes, tf.float32)[:, None]
    targets = (tf.one_hot(labels, num_classes) + outside / num_classes) * (1.0 - smoothing) + smoothing / num_classes
    return tf.nn.softmax_cross_entropy_with_logits(targets, tf.cast(logits, tf.float32))


def member_rows(logits: tf.Tensor, labels: tf.Tensor, members: int = 1) -> tuple[tf.Tensor, tf.Tensor, int]:
    """Training outputs as rows with their labels, and the number of members: an ensemble's logits
    [b, members, classes] and labels [b, members] become b * members rows; a single model's stay as they are."""
    if members == 1:
        return logits, labels, 1
    return tf.reshape(logits, [-1, logits.shape[-1]]), tf.reshape(labels, [-1]), members


def is_correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """1.0 where argmax(logits) == label, else 0.0; [b]."""
    return tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a model is trained on and evaluated by, per example (a row): its loss, whether it was read right,
    and whether the accuracy counts it (not a mark that is not a digit); max_loss: the training loss above
    which a run has diverged."""
    losses: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (outputs, labels) -> [rows] float32
    correct: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (outputs, labels) -> [rows] 1.0 or 0.0
    counted: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (outputs, labels) -> [rows] 1.0 or 0.0
    max_loss: float


def digit_objective(num_classes: int = 10, *, label_smoothing: float = 0.0, negatives: bool = False) -> Objective:
    """A digit model's: cross-entropy of its logits [rows, classes] (smoothed_losses), accuracy over the
    examples of a class."""
    return Objective(losses=lambda logits, labels: smoothed_losses(logits, labels, label_smoothing, negatives),
                     correct=is_correct,
                     counted=lambda logits, labels: tf.cast(labels < logits.shape[-1], tf.float32),
                     max_loss=divergence_limit(num_classes))


# What each replica's step adds up over a tf.function call: the loss summed over its examples, how many
# examples of a class (not marks that are not digits) it read right and how many it saw, the gradient's
# norm, and the steps whose gradients were not finite.
STEP_SUMS = ('loss', 'correct', 'class_examples', 'grad_norm', 'nonfinite_gradients')


def make_train_fn(strategy: tf.distribute.Strategy, state: TrainState, global_batch: int, *,
                  jit_compile: bool = False, label_smoothing: float = 0.0, negatives: bool = False,
                  objective: Objective | None = None) -> Callable:
    """Returns train_fn(iterator, num_steps) -> {'loss', 'accuracy', 'grad_norm', 'weight_norm',
    'nonfinite_*'} over num_steps (grad_norm: the mean over the steps; weight_norm: after the last).

    `nonfinite_gradients` counts steps whose gradients held a NaN or Inf (summed over replicas). A
    LossScaleOptimizer skips such steps by design, so under float16 they are not counted.
    `nonfinite_weights` counts NaN / Inf weights after the last step: a NaN can hide behind a ReLU or a
    max-pool (oneDNN's max drops it), leaving the loss finite while the weights are not.
    jit_compile: XLA-compile the forward and backward pass, the part that compiles everywhere (the
    iterator and the optimizer's cross-replica update stay outside).
    label_smoothing: train against smoothed targets; the reported loss is then the smoothed one.
    negatives: batches hold marks that are not digits (label `classes`), trained towards the uniform
    distribution; the loss covers them too, the accuracy only the examples of a class.
    objective: what to train on instead of a digit model's (digit_objective with the two above).
    """
    objective = objective or digit_objective(label_smoothing=label_smoothing, negatives=negatives)
    gradients_fn = make_gradients_fn(state, global_batch, objective)
    if jit_compile:
        check_jit_compilable(state.model, strategy.num_replicas_in_sync)
        gradients_fn = tf.function(gradients_fn, jit_compile=True)

    def step(images, labels):
        return replica_step(strategy, state, gradients_fn, images, labels)

    @tf.function
    def train_fn(iterator, num_steps):
        totals = dict.fromkeys(STEP_SUMS, tf.constant(0.0))
        for _ in tf.range(num_steps):
            sums = sum_over_replicas(strategy, step, next(iterator))
            totals = {name: total + sums[name] for name, total in totals.items()}
        return step_metrics(totals, state.model, examples=num_steps * global_batch,
                            replica_steps=num_steps * strategy.num_replicas_in_sync)

    return train_fn


def make_gradients_fn(state: TrainState, global_batch: int, objective: Objective) -> Callable:
    """(images, labels) -> (gradients, this replica's sums of 'loss', 'correct' and 'class_examples'): the
    forward and backward pass, the part jit_compile may compile."""
    model, optimizer = state.model, state.optimizer

    def gradients_and_sums(images, labels):
        with tf.GradientTape() as tape:
            logits, targets, members = member_rows(model(images, training=True), labels,
                                                   getattr(model, 'num_members', 1))
            losses = objective.losses(logits, targets)  # [b * members]
            # Averaged over the *global* batch: the optimizer sums the replicas' gradients. An ensemble's
            # members' losses add up, so each member's weights get that member's own gradient.
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled_loss = optimizer.scale_loss(loss)  # Loss scaling for float16; identity otherwise.
        grads = tape.gradient(scaled_loss, model.trainable_variables)
        # Reported: the members' mean, comparable with a single model's.
        counted = objective.counted(logits, targets)
        return grads, {'loss': tf.reduce_sum(losses) / members,
                       'correct': tf.reduce_sum(objective.correct(logits, targets) * counted) / members,
                       'class_examples': tf.reduce_sum(counted) / members}

    return gradients_and_sums


def replica_step(strategy: tf.distribute.Strategy, state: TrainState, gradients_fn: Callable, images,
                 labels) -> dict:
    """One optimizer step on this replica's share of the batch; returns its STEP_SUMS."""
    grads, sums = gradients_fn(images, labels)
    norm = gradient_norm(strategy, state.optimizer, grads)  # Before the update, which may change the loss scale.
    # A LossScaleOptimizer unscales these, and skips the update if any is not finite.
    state.optimizer.apply_gradients(zip(grads, state.model.trainable_variables))
    finite = tf.math.is_finite(norm)
    loss_scaled = isinstance(state.optimizer, keras.optimizers.LossScaleOptimizer)
    return {**sums, 'grad_norm': tf.where(finite, norm, 0.0),
            'nonfinite_gradients': tf.constant(0.0) if loss_scaled else 1.0 - tf.cast(finite, tf.float32)}


def gradient_norm(strategy: tf.distribute.Strategy, optimizer: keras.optimizers.Optimizer, grads) -> tf.Tensor:
    """The global norm of the whole batch's gradient (the replicas' gradients summed), unscaled."""
    if strategy.num_replicas_in_sync > 1:  # One extra all-reduce per step: exact, and cheap here.
        grads = tf.distribute.get_replica_context().all_reduce(SUM, grads)
    norm = tf.linalg.global_norm(grads)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return norm / optimizer.dynamic_scale
    return norm


def step_metrics(totals: dict, model: keras.Model, *, examples, replica_steps) -> dict:
    """train_fn's answer from the STEP_SUMS of its steps: means, the weights' norm and the non-finite counts."""
    return {'loss': totals['loss'] / tf.cast(examples, tf.float32),
            'accuracy': totals['correct'] / tf.maximum(totals['class_examples'], 1.0),
            'grad_norm': totals['grad_norm'] / tf.cast(replica_steps, tf.float32),  # each replica adds the norm
            'weight_norm': tf.linalg.global_norm(model.trainable_variables),
            'nonfinite_gradients': totals['nonfinite_gradients'],
            'nonfinite_weights': count_nonfinite(model.weights)}


def sum_over_replicas(strategy: tf.distribute.Strategy, fn: Callable, args, *, gathered: tuple = ()) -> dict:
    """fn(*args) runs on each replica and returns {name: float32 scalar}; returns their sums over all
    replicas, reduced as one stacked vector (one all-reduce; MultiWorkerMirroredStrategy cannot reduce
    a dict). The names in `gathered` are per-example tensors [b, ...] instead, concatenated over every
    replica in the global batch's row order (strategy.gather: on several workers, all take part)."""
    names = []

    def stacked(*replica_args):
        outputs = fn(*replica_args)
        names[:] = sorted(k for k in outputs if k not in gathered)  # known once fn is traced
        return tf.stack([outputs[name] for name in names]), {k: outputs[k] for k in gathered}

    sums, per_example = strategy.run(stacked, args=args)
    total = strategy.reduce(SUM, sums, axis=None)
    result = {name: total[i] for i, name in enumerate(names)}
    result.update({k: strategy.gather(v, axis=0) for k, v in per_example.items()})
    return result


def check_jit_compilable(model: keras.Model, num_replicas: int):
    """Synchronized batch norm all-reduces inside the forward pass: not in a nested XLA function."""
    if num_replicas > 1 and any(getattr(layer, 'synchronized', False) for layer in model._flatten_layers()):
        raise DigitsError(f'--jit_compile cannot compile --arch={model.name} on {num_replicas} replicas: its '
                          f'synchronized batch norm talks to the other replicas mid-step; use one replica '
                          f'or drop --jit_compile')


def count_nonfinite(variables) -> tf.Tensor:
    """The number of NaN or Inf values in variables, as a float32 scalar."""
    return tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(v), tf.float32)) for v in variables
                     if tf.as_dtype(v.dtype).is_floating])


def make_eval_fn(strategy: tf.distribute.Strategy, logits_fn: Callable, *, probabilities: bool = False,
                 objective: Objective | None = None) -> Callable:
    """Returns eval_fn(batch) -> {'loss', 'correct', 'count'} sums, weighted so padding counts for nothing;
    with probabilities, also every row's 'probabilities' [global batch, classes] and 'weights' [global batch].
    objective: a digit model's (plain cross-entropy) unless given."""
    gathered = ('probabilities', 'weights') if probabilities else ()
    objective = objective or digit_objective()

    def replica_step(images, labels, weights):
        logits = logits_fn(images)
        outputs = {'loss': tf.reduce_sum(objective.losses(logits, labels) * weights),
                   'correct': tf.reduce_sum(objective.correct(logits, labels) * weights),
                   'count': tf.reduce_sum(weights)}
        if probabilities:
            outputs.update(probabilities=tf.nn.softmax(tf.cast(logits, tf.float32)), weights=weights)
        return outputs

    @tf.function
    def eval_fn(batch):
        return sum_over_replicas(strategy, replica_step, batch, gathered=gathered)

    return eval_fn


def evaluate(eval_fn: Callable, dataset) -> dict:
    """Runs eval_fn over a finite distributed dataset: {'loss', 'accuracy', 'num_examples'} as numbers, and
    'probabilities' [examples, classes] in the split's order if eval_fn gives them (padding dropped)."""
    totals, probabilities = {}, []
    for batch in dataset:
        outputs = eval_fn(batch)
        for name in ('loss', 'correct', 'count'):
            totals[name] = totals.get(name, 0.0) + float(outputs[name])  # summed in float64
        if 'probabilities' in outputs:
            probabilities.append(outputs['probabilities'].numpy()[outputs['weights'].numpy() > 0])
    metrics = {'loss': totals['loss'] / totals['count'], 'accuracy': totals['correct'] / totals['count'],
               'num_examples': int(round(totals['count']))}
    if probabilities:
        metrics['probabilities'] = np.concatenate(probabilities)
    return metrics


def make_evaluator(strategy: tf.distribute.Strategy, logits_fn: Callable, split: arrays.Split,
                   batch_size: int, *, probabilities: bool = False, objective: Objective | None = None
                   ) -> Callable[[], dict]:
    """A no-argument function that evaluates logits_fn on every example of split (see evaluate)."""
    global_batch = eval_global_batch(batch_size, strategy.num_replicas_in_sync)
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: pipeline.eval_dataset(split, global_batch, input_context=ctx))
    eval_fn = make_eval_fn(strategy, logits_fn, probabilities=probabilities, objective=objective)
    return lambda: evaluate(eval_fn, dataset)


def eval_global_batch(batch_size: int, num_replicas: int) -> int:
    """The evaluation batch rounded up so every replica gets the same share (padding is masked)."""
    return math.ceil(batch_size / num_replicas) * num_replicas


def is_time(step: int, previous_step: int, every: int, last_step: int) -> bool:
    """True if a multiple of `every` lies in (previous_step, step], or at the last step."""
    return step // every > previous_step // every or step == last_step


@dataclasses.dataclass
class Progress:
    """Where the outer loop is after a tf.function call, as a periodic action sees it."""
    step: int
    previous: int  # the step before the call
    last: int  # the run's last step
    window: summaries.Window  # training metrics since the last log line


class PeriodicAction:
    """A chore of the outer loop (Orbit's train_actions, CLU's PeriodicAction): `run` is called when a
    multiple of `every` lies in (previous, step], and always at the last step."""
    every = 1

    def before_call(self, step: int):
        """Called before each tf.function call."""

    def run(self, progress: Progress):
        raise NotImplementedError

    def finish(self):
        """Called once when training ends."""


def train(state: TrainState, train_fn: Callable, iterator, *, total_steps: int, steps_per_loop: int,
          global_batch: int, actions: list[PeriodicAction], max_loss: float) -> dict:
    """The outer loop, from state.step to total_steps; returns train_examples_per_sec and first_call_done
    (the Unix time the first call returned).

    After each tf.function call it checks the numbers (before anything can be saved: check_training, with
    max_loss from divergence_limit), then runs the actions that are due, in order.
    """
    step, window = int(state.step.numpy()), summaries.Window()
    train_seconds, trained_examples, first_call_done, lowest_loss = 0.0, 0, None, None
    while step < total_steps:
        num_steps = min(steps_per_loop, total_steps - step)
        for action in actions:
            action.before_call(step)
        start = time.perf_counter()
        metrics = {k: float(v) for k, v in train_fn(iterator, tf.constant(num_steps)).items()}
        seconds = time.perf_counter() - start  # float() above waited for the device: this is real time.
        first_call_done = first_call_done or time.time()
        previous, step = step, step + num_steps
        check_training(metrics, previous, step, lowest_loss=lowest_loss, max_loss=max_loss)
        lowest_loss = metrics['loss'] if lowest_loss is None else min(lowest_loss, metrics['loss'])
        state.step.assign(step)
        window.add({k: v for k, v in metrics.items() if k not in CHECKS}, num_steps, num_steps * global_batch,
                   seconds)
        train_seconds, trained_examples = train_seconds + seconds, trained_examples + num_steps * global_batch
        progress = Progress(step, previous, total_steps, window)
        for action in actions:
            if is_time(step, previous, action.every, total_steps):
                action.run(progress)
    for action in actions:
        action.finish()
    return {'train_examples_per_sec': trained_examples / max(train_seconds, 1e-9),
            'first_call_done': first_call_done}


class LogProgress(PeriodicAction):
    """The progress line and the train/ scalars of the window since the last one."""

    def __init__(self, every: int, *, optimizer, steps_per_epoch: int, writers: summaries.Writers, log):
        self.every, self._optimizer, self._steps_per_epoch = every, optimizer, steps_per_epoch
        self._writers, self._log = writers, log

    def run(self, progress: Progress):
        # convert_to_tensor: a constant rate is a MirroredVariable under mirrored, which float() refuses.
        scalars = progress.window.flush(learning_rate=float(tf.convert_to_tensor(self._optimizer.learning_rate)))
        self._log(progress_line(progress.step, progress.last, self._steps_per_epoch, scalars))
        self._writers.write('train', progress.step, scalars)

    def finish(self):
        self._writers.flush()


class Evaluate(PeriodicAction):
    """Evaluates, prints the eval line, writes eval/ scalars, then on_eval(step, metrics); keeps the last
    result."""

    def __init__(self, every: int, *, run_eval: Callable[[], dict], writers: summaries.Writers, log,
                 on_eval: Callable[[int, dict], None] | None = None):
        self.every, self._run_eval, self._writers, self._log, self._on_eval = every, run_eval, writers, log, on_eval
        self.last: dict | None = None  # {'loss', 'accuracy', 'num_examples'} of the latest evaluation

    def run(self, progress: Progress):
        self.last = metrics = self._run_eval()
        self._log(f'eval   step {progress.step:>6}  loss {metrics["loss"]:.4f}  accuracy '
                  f'{100 * metrics["accuracy"]:.2f}%  ({metrics["num_examples"]} examples)')
        self._writers.write('eval', progress.step, {k: metrics[k] for k in ('loss', 'accuracy')})
        if self._on_eval:
            self._on_eval(progress.step, metrics)


class SaveCheckpoint(PeriodicAction):
    """Saves a checkpoint numbered by the step."""

    def __init__(self, every: int, *, save: Callable[[int], str]):
        self.every, self._save = every, save

    def run(self, progress: Progress):
        self._save(progress.step)


class StopOnSignal(PeriodicAction):
    """After every call: lets digits.training.preemption's stop save a checkpoint and raise Interrupted."""

    def __init__(self, stop, *, save: Callable[[int], str], writers: summaries.Writers):
        self._stop, self._save, self._writers = stop, save, writers

    def run(self, progress: Progress):
        self._writers.flush()  # Cheap, and nothing is lost if check ends the run.
        self._stop.check(progress.step, self._save)


class Profile(PeriodicAction):
    """summaries.Profiler around the tf.function calls it should trace."""

    def __init__(self, profiler: summaries.Profiler):
        self._profiler = profiler

    def before_call(self, step: int):
        self._profiler.before_call(step)

    def run(self, progress: Progress):
        self._profiler.after_call(progress.step)

    def finish(self):
        self._profiler.close()


def divergence_limit(num_classes: int) -> float:
    """The training loss above which a run has diverged: DIVERGENCE_FACTOR x that of a uniform guess."""
    return DIVERGENCE_FACTOR * math.log(num_classes)


def check_training(metrics: dict, previous: int, step: int, *, lowest_loss: float | None, max_loss: float):
    """Stops the run before a diverged model (a loss over max_loss, or any NaN / Inf) can reach a
    checkpoint or the export; lowest_loss (of the calls before, if any) says how far the loss rose."""
    if metrics.get('nonfinite_gradients', 0) > 0:
        what = f'non-finite gradients ({int(metrics["nonfinite_gradients"])} replica-steps with NaN or Inf)'
    elif not math.isfinite(metrics["loss"]):
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
