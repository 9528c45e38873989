"""Training throughput of digits' loop vs. Keras model.fit, and of the tf.data pipeline alone.

    python scripts/benchmark.py [--json=bench.json]

One process, one machine, the same data, model (`simple`, the keras.io convnet), optimizer (Adam) and
global batch for every contestant. After a warm-up (tracing, oneDNN's first-call setup), the
contestants are measured in turn, --repeats times, alternating, so that a machine that slows down or
speeds up during the run affects them alike; each figure is the median of its repeats, in images/sec.

  digits          digits.training.loop.make_train_fn: --steps_per_loop steps per tf.function call
  digits_1step    the same with one step per call (--steps_per_loop=1): a return to Python after every
                  step, as fit does; what the multi-step tf.function buys
  digits_xla      the same with --jit_compile (XLA on the forward and backward pass)
  keras_fit       model.fit on a keras.Sequential of the same layers, compiled as keras.io does
                  (compile(loss, optimizer='adam', metrics=['accuracy']): jit_compile='auto', which Keras
                  resolves to XLA only where TensorFlow sees a GPU or TPU), timed from its first to its
                  last batch of each repeat (fit's own start-up excluded, to its advantage)
  keras_fit_nojit the same with jit_compile=False
  keras_fit_arrays model.fit(x, y, batch_size, epochs=1) on NumPy arrays as keras.io calls it, the whole
                  call timed (its per-call start-up included, as a user running fit pays it)
  pipeline        digits.data.train_dataset alone (what feeds digits and keras_fit), batches consumed
                  and discarded
  bare_step       the ceiling: forward, backward and Adam update on one batch already in memory,
                  --steps_per_loop steps per tf.function call, no input pipeline, no metrics; no loop
                  around the same TensorFlow ops can train this model faster on this machine
  cnn_WxBxCxF     with --cnn=WxBxCxF: the bare step of digits' cnn of --width W, --blocks B,
                  --convs_per_block C and --first_block_convs F (the default recipe: 16x3x2x1): what an
                  architecture costs per image

The headline ratio is against the fastest model.fit variant, so the comparison is with Keras at its best.
bare_step / best fit is the most that any loop, digits' or another, could gain over model.fit here: the
rest of a step is the model's own computation (the same convolutions), which every loop shares.
--precision=mixed_bfloat16 runs every contestant (fit included) under that Keras dtype policy.
"""
import dataclasses
import json
import os
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from digits import config
from digits.data import arrays, pipeline
from digits.errors import DigitsError
from digits.training import fit_epoch, loop
from digits.training import model as model_lib


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """What scripts/benchmark.py measures, and how long."""
    dataset: str = 'mnist_10k'
    data_dir: str | None = None
    batch_size: int = 128  # global, for every contestant
    steps: int = 200  # training steps per repeat
    repeats: int = 5
    steps_per_loop: int = 50  # digits: steps per tf.function call
    augment: bool = False
    precision: str = 'float32'  # or mixed_bfloat16 (float16 would need loss scaling)
    only: tuple[str, ...] = ()  # contestants to run (empty: all)
    cnn: tuple[str, ...] = ()  # WIDTHxBLOCKSxCONVSxFIRST: bare steps of these cnn shapes
    json: str | None = None


def check_config(cfg: BenchmarkConfig):
    """Raises DigitsError naming the first bad field and its value."""
    for spec in cfg.cnn:
        parts = spec.split('x')
        if len(parts) != 4 or not all(part.isdigit() and int(part) > 0 for part in parts):
            raise DigitsError(f'--cnn ({spec}) must be WIDTHxBLOCKSxCONVSxFIRST (--width, --blocks, '
                              f'--convs_per_block, --first_block_convs), positive integers, e.g. 16x3x2x1')
    for name in ('batch_size', 'steps', 'repeats', 'steps_per_loop'):
        if getattr(cfg, name) <= 0:
            raise DigitsError(f'--{name} ({getattr(cfg, name)}) must be positive')
    if cfg.steps % cfg.steps_per_loop:
        raise DigitsError(f'--steps ({cfg.steps}) must be a multiple of --steps_per_loop ({cfg.steps_per_loop})')
    unknown = [name for name in cfg.only if name not in CONTESTANTS]
    if unknown:
        raise DigitsError(f'--only ({unknown[0]}) must be one of {", ".join(CONTESTANTS)}')


def run_benchmark(cfg: BenchmarkConfig, log=print) -> dict:
    """Measures the contestants on cfg's training images; prints and returns the summary (and writes it)."""
    check_config(cfg)
    split = arrays.load(cfg.dataset, cfg.data_dir).train
    log(f'benchmark: {len(split)} {cfg.dataset} images, batch {cfg.batch_size}, {cfg.steps} steps x '
        f'{cfg.repeats} repeats, {cfg.precision}, TensorFlow {tf.__version__}, Keras {keras.__version__}, '
        f'{os.cpu_count()} CPUs')
    summary = summarize(measure(cfg, split, log), cfg)
    log(format_summary(summary))
    if cfg.json:
        with open(cfg.json, 'w') as f:
            json.dump(summary, f, indent=2)
    return summary


class DigitsLoop:
    """digits' training step function, called as the outer loop calls it."""

    def __init__(self, split, cfg, jit_compile=False, steps_per_call=None):
        model = model_lib.create('simple', precision=cfg.precision)
        state = loop.create_state(model, keras.optimizers.Adam(1e-3))
        self._train_fn = loop.make_train_fn(tf.distribute.get_strategy(), state, cfg.batch_size,
                                            jit_compile=jit_compile)
        self._iterator = iter(pipeline.train_dataset(split, cfg.batch_size, 0, cfg.augment))
        self._per_call = steps_per_call or cfg.steps_per_loop

    def run(self, steps: int) -> float:
        """Trains `steps` steps; returns the seconds they took (the float() waits for the result)."""
        start = time.perf_counter()
        for _ in range(steps // self._per_call):
            float(self._train_fn(self._iterator, tf.constant(self._per_call))['loss'])
        return time.perf_counter() - start


class BareStep:
    """The ceiling: the training step alone, on one in-memory batch, with nothing around it."""

    def __init__(self, split, cfg, cnn: str | None = None):
        model = create_cnn(cnn, cfg.precision) if cnn else model_lib.create('simple', precision=cfg.precision)
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(model.trainable_variables)
        images, labels = next(iter(pipeline.train_dataset(split, cfg.batch_size, 0, cfg.augment)))
        self._per_call = cfg.steps_per_loop

        @tf.function
        def train_steps(num_steps):
            loss = tf.constant(0.0)
            for _ in tf.range(num_steps):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(loop.example_losses(model(images, training=True), labels))
                optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                              model.trainable_variables))
            return loss

        self._train_steps = train_steps

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps // self._per_call):
            float(self._train_steps(tf.constant(self._per_call)))
        return time.perf_counter() - start


def create_cnn(spec: str, precision: str) -> keras.Model:
    """The cnn of --width x --blocks x --convs_per_block x --first_block_convs `spec` (e.g. '16x3x2x1'),
    as digits.train builds it."""
    width, blocks, convs, first = (int(part) for part in spec.split('x'))
    return model_lib.create_for(config.TrainConfig(width=width, blocks=blocks, convs_per_block=convs,
                                                   first_block_convs=first), precision=precision)


class BatchClock(keras.callbacks.Callback):
    """Times from the end of fit's first batch to the end of its last, excluding fit's start-up."""

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch == 0:
            self.first = now
        self.last, self.batches = now, batch + 1


class KerasFit:
    """model.fit on the same pipeline, one epoch of `steps` + 1 batches per repeat."""

    def __init__(self, split, cfg, jit_compile='auto'):
        self._model = fit_epoch.keras_io_convnet(cfg.precision)
        self._model.compile(loss='sparse_categorical_crossentropy', optimizer='adam', metrics=['accuracy'],
                            jit_compile=jit_compile)
        self._dataset = pipeline.train_dataset(split, cfg.batch_size, 0, cfg.augment)

    def run(self, steps: int) -> float:
        clock = BatchClock()
        # One batch more: the clock starts when the first one ends.
        self._model.fit(self._dataset, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[clock],
                        shuffle=False)  # The dataset shuffles itself.
        return (clock.last - clock.first) * steps / (clock.batches - 1)


class KerasFitArrays:
    """model.fit on NumPy arrays, as keras.io calls it; the whole call is timed."""

    def __init__(self, split, cfg):
        self._model = fit_epoch.keras_io_convnet(cfg.precision)
        self._model.compile(loss='sparse_categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
        self._x = split.images[..., None].astype(np.float32) / 255.0  # [n, 28, 28, 1], as keras.io prepares it
        self._y = split.labels.astype(np.int32)
        self._batch = cfg.batch_size

    def run(self, steps: int) -> float:
        n = steps * self._batch
        reps = -(-n // len(self._x))  # More steps than one epoch: repeat the arrays.
        x, y = np.concatenate([self._x] * reps)[:n], np.concatenate([self._y] * reps)[:n]
        start = time.perf_counter()
        self._model.fit(x, y, batch_size=self._batch, epochs=1, verbose=0)
        return time.perf_counter() - start


class Pipeline:
    """The input pipeline alone."""

    def __init__(self, split, cfg):
        self._iterator = iter(pipeline.train_dataset(split, cfg.batch_size, 0, cfg.augment))

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            next(self._iterator)
        return time.perf_counter() - start


CONTESTANTS = {
    'digits': lambda split, cfg: DigitsLoop(split, cfg),
    'digits_1step': lambda split, cfg: DigitsLoop(split, cfg, steps_per_call=1),
    'digits_xla': lambda split, cfg: DigitsLoop(split, cfg, jit_compile=True),
    'keras_fit': lambda split, cfg: KerasFit(split, cfg),
    'keras_fit_nojit': lambda split, cfg: KerasFit(split, cfg, jit_compile=False),
    'keras_fit_arrays': lambda split, cfg: KerasFitArrays(split, cfg),
    'pipeline': lambda split, cfg: Pipeline(split, cfg),
    'bare_step': lambda split, cfg: BareStep(split, cfg),
}
PIPELINE_STEPS = 10  # The pipeline runs this many times more batches per repeat: it is that much faster.


def measure(cfg: BenchmarkConfig, split, log=print) -> dict:
    """{contestant: [images/sec of each repeat]}, measured in alternation after one warm-up each."""
    names = [n for n in CONTESTANTS if not cfg.only or n in cfg.only]
    runners = {name: CONTESTANTS[name](split, cfg) for name in names}
    for spec in cfg.cnn:
        names.append(f'cnn_{spec}')
        runners[f'cnn_{spec}'] = BareStep(split, cfg, cnn=spec)
    steps = {name: cfg.steps * (PIPELINE_STEPS if name == 'pipeline' else 1) for name in names}
    for runner in runners.values():
        runner.run(cfg.steps_per_loop)  # warm-up: tracing, compilation, first-call allocations
    rates = {name: [] for name in names}
    for repeat in range(cfg.repeats):
        for name, runner in runners.items():
            rates[name].append(steps[name] * cfg.batch_size / runner.run(steps[name]))
        log(f'repeat {repeat + 1}/{cfg.repeats}: ' + '  '.join(f'{name} {rates[name][-1]:,.0f}' for name in names))
    return rates


def summarize(rates: dict, cfg) -> dict:
    """Medians, and the ratios docs/performance.md quotes."""
    median = {name: statistics.median(values) for name, values in rates.items()}
    summary = {'images_per_sec': median, 'repeats': rates, 'batch_size': cfg.batch_size,
               'steps_per_repeat': cfg.steps, 'augment': cfg.augment, 'precision': cfg.precision,
               'tensorflow': tf.__version__, 'keras': keras.__version__, 'cpu_count': os.cpu_count()}
    fits = [median[n] for n in ('keras_fit', 'keras_fit_nojit', 'keras_fit_arrays') if n in median]
    if fits and 'digits' in median:
        summary['digits_vs_best_fit'] = median['digits'] / max(fits)
    if 'keras_fit_arrays' in median and 'digits' in median:
        summary['digits_vs_fit_arrays'] = median['digits'] / median['keras_fit_arrays']
    if 'keras_fit_arrays' in median:
        summary['fit_epoch_seconds'] = fit_epoch.IMAGES / median['keras_fit_arrays']
    if 'pipeline' in median and 'digits' in median:
        summary['pipeline_vs_digits'] = median['pipeline'] / median['digits']
    if 'bare_step' in median and 'digits' in median:
        summary['digits_vs_bare_step'] = median['digits'] / median['bare_step']
    if 'bare_step' in median and fits:
        summary['bare_step_vs_best_fit'] = median['bare_step'] / max(fits)
    return summary


def format_summary(summary: dict) -> str:
    """The medians and their ratios, a line each."""
    lines = [f'{name:<16} {rate:>10,.0f} images/sec (median of {len(summary["repeats"][name])})'
             for name, rate in summary['images_per_sec'].items()]
    ratios = [('digits_vs_best_fit', 'digits / best model.fit   {:.2f}x'),
              ('digits_vs_fit_arrays', 'digits / model.fit(x, y) {:.2f}x'),
              ('fit_epoch_seconds', 'one fit-epoch              {:.2f} s (10,000 images of model.fit(x, y))'),
              ('pipeline_vs_digits', 'pipeline / digits         {:.1f}x'),
              ('digits_vs_bare_step', 'digits / bare step        {:.2f} (1.00: no loop overhead at all)'),
              ('bare_step_vs_best_fit', 'bare step / best model.fit {:.2f}x (the most any loop can gain)')]
    return '\n'.join(lines + [text.format(summary[key]) for key, text in ratios if key in summary])
