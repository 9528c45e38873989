"""Training throughput of digits' loop vs. Keras model.fit, and of the tf.data pipeline alone.

    python scripts/benchmark.py --data_dir=../shared/datasets/mnist-10k [--json=bench.json]

One process, one machine, the same data, model (`simple`, the keras.io convnet), optimizer (Adam) and
global batch for every contestant. After a warm-up (tracing, oneDNN's first-call setup), the
contestants are measured in turn, --repeats times, alternating, so that a machine that slows down or
speeds up during the run affects them alike; each figure is the median of its repeats, in images/sec.

  digits          digits.loop.make_train_fn: --steps_per_loop steps per tf.function call
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
  cnn_WxBxC[xF]   with --cnn=WxBxC[xF]: the bare step of digits' cnn of --width W, --blocks B,
                  --convs_per_block C, --first_block_convs F (default C): what an architecture costs
                  per image, for Time to accuracy

The headline ratio is against the fastest model.fit variant, so the comparison is with Keras at its best.
bare_step / best fit is the most that any loop, digits' or another, could gain over model.fit here: the
rest of a step is the model's own computation (the same convolutions), which every loop shares.
--precision=mixed_bfloat16 runs every contestant (fit included) under that Keras dtype policy.
"""
import argparse
import json
import os
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from digits import config, data, fit_epoch, loop, model as model_lib
from digits.errors import DigitsError


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data_dir', help='MNIST folder (IDX or npz); unset: Keras\' download.')
    parser.add_argument('--batch_size', type=int, default=128, help='Global batch, for everyone.')
    parser.add_argument('--steps', type=int, default=200, help='Training steps per repeat.')
    parser.add_argument('--repeats', type=int, default=5, help='Measured repeats of each contestant.')
    parser.add_argument('--steps_per_loop', type=int, default=50, help='digits: steps per tf.function call.')
    parser.add_argument('--augment', action='store_true', help='Random affine augmentation in the pipeline.')
    parser.add_argument('--precision', default='float32', choices=('float32', 'mixed_bfloat16'),
                        help='Keras dtype policy of every model (float16 would need loss scaling).')
    parser.add_argument('--only', default='', help='Comma-separated contestants to run (default: all).')
    parser.add_argument('--cnn', action='append', default=[], metavar='WIDTHxBLOCKSxCONVS[xFIRST]',
                        help='Also the bare step of the cnn with these --width, --blocks, --convs_per_block '
                             'and --first_block_convs (default: CONVS), e.g. 16x3x2x1; repeatable. '
                             'Contestant "cnn_16x3x2x1".')
    parser.add_argument('--json', help='Also write the figures here.')
    args = parser.parse_args(argv)
    for spec in args.cnn:
        parts = spec.split('x')
        if len(parts) not in (3, 4) or not all(part.isdigit() and int(part) > 0 for part in parts):
            parser.exit(2, f'benchmark: error: --cnn ({spec}) must be WIDTHxBLOCKSxCONVS[xFIRST], positive '
                           f'integers, e.g. 16x3x2x1\n')
    for name in ('batch_size', 'steps', 'repeats', 'steps_per_loop'):
        if getattr(args, name) <= 0:
            parser.exit(2, f'benchmark: error: --{name} ({getattr(args, name)}) must be positive\n')
    if args.steps % args.steps_per_loop:
        parser.exit(2, f'benchmark: error: --steps ({args.steps}) must be a multiple of --steps_per_loop '
                       f'({args.steps_per_loop})\n')
    return args


class DigitsLoop:
    """digits' training step function, called as the outer loop calls it."""

    def __init__(self, split, args, jit_compile=False, steps_per_call=None):
        model = model_lib.create('simple', precision=args.precision)
        state = loop.create_state(model, keras.optimizers.Adam(1e-3))
        self._train_fn = loop.make_train_fn(tf.distribute.get_strategy(), state, args.batch_size,
                                            jit_compile=jit_compile)
        self._iterator = iter(data.train_dataset(split, args.batch_size, 0, args.augment))
        self._per_call = steps_per_call or args.steps_per_loop

    def run(self, steps: int) -> float:
        """Trains `steps` steps; returns the seconds they took (the float() waits for the result)."""
        start = time.perf_counter()
        for _ in range(steps // self._per_call):
            float(self._train_fn(self._iterator, tf.constant(self._per_call))['loss'])
        return time.perf_counter() - start


class BareStep:
    """The ceiling: the training step alone, on one in-memory batch, with nothing around it."""

    def __init__(self, split, args, cnn: str | None = None):
        model = create_cnn(cnn, args.precision) if cnn else model_lib.create('simple', precision=args.precision)
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(model.trainable_variables)
        images, labels = next(iter(data.train_dataset(split, args.batch_size, 0, args.augment)))
        self._per_call = args.steps_per_loop

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
    """The cnn of --width x --blocks x --convs_per_block [x --first_block_convs] `spec` (e.g. '16x3x2x1'),
    as digits.train builds it."""
    width, blocks, convs, *first = (int(part) for part in spec.split('x'))
    return model_lib.create_for(config.TrainConfig(width=width, blocks=blocks, convs_per_block=convs,
                                                   first_block_convs=first[0] if first else 0),
                                precision=precision)


class BatchClock(keras.callbacks.Callback):
    """Times from the end of fit's first batch to the end of its last, excluding fit's start-up."""

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch == 0:
            self.first = now
        self.last, self.batches = now, batch + 1


class KerasFit:
    """model.fit on the same pipeline, one epoch of `steps` + 1 batches per repeat."""

    def __init__(self, split, args, jit_compile='auto'):
        self._model = fit_epoch.keras_io_convnet(args.precision)
        self._model.compile(loss='sparse_categorical_crossentropy', optimizer='adam', metrics=['accuracy'],
                            jit_compile=jit_compile)
        self._dataset = data.train_dataset(split, args.batch_size, 0, args.augment)

    def run(self, steps: int) -> float:
        clock = BatchClock()
        # One batch more: the clock starts when the first one ends.
        self._model.fit(self._dataset, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[clock],
                        shuffle=False)  # The dataset shuffles itself.
        return (clock.last - clock.first) * steps / (clock.batches - 1)


class KerasFitArrays:
    """model.fit on NumPy arrays, as keras.io calls it; the whole call is timed."""

    def __init__(self, split, args):
        self._model = fit_epoch.keras_io_convnet(args.precision)
        self._model.compile(loss='sparse_categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
        self._x = split.images[..., None].astype(np.float32) / 255.0  # [n, 28, 28, 1], as keras.io prepares it
        self._y = split.labels.astype(np.int32)
        self._batch = args.batch_size

    def run(self, steps: int) -> float:
        n = steps * self._batch
        reps = -(-n // len(self._x))  # More steps than one epoch: repeat the arrays.
        x, y = np.concatenate([self._x] * reps)[:n], np.concatenate([self._y] * reps)[:n]
        start = time.perf_counter()
        self._model.fit(x, y, batch_size=self._batch, epochs=1, verbose=0)
        return time.perf_counter() - start


class Pipeline:
    """The input pipeline alone."""

    def __init__(self, split, args):
        self._iterator = iter(data.train_dataset(split, args.batch_size, 0, args.augment))

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            next(self._iterator)
        return time.perf_counter() - start


CONTESTANTS = {
    'digits': lambda split, args: DigitsLoop(split, args),
    'digits_1step': lambda split, args: DigitsLoop(split, args, steps_per_call=1),
    'digits_xla': lambda split, args: DigitsLoop(split, args, jit_compile=True),
    'keras_fit': lambda split, args: KerasFit(split, args),
    'keras_fit_nojit': lambda split, args: KerasFit(split, args, jit_compile=False),
    'keras_fit_arrays': lambda split, args: KerasFitArrays(split, args),
    'pipeline': lambda split, args: Pipeline(split, args),
    'bare_step': lambda split, args: BareStep(split, args),
}
PIPELINE_STEPS = 10  # The pipeline runs this many times more batches per repeat: it is that much faster.


def measure(args, split) -> dict:
    """{contestant: [images/sec of each repeat]}, measured in alternation after one warm-up each."""
    names = [n for n in CONTESTANTS if not args.only or n in args.only.split(',')]
    runners = {name: CONTESTANTS[name](split, args) for name in names}
    for spec in args.cnn:
        names.append(f'cnn_{spec}')
        runners[f'cnn_{spec}'] = BareStep(split, args, cnn=spec)
    steps = {name: args.steps * (PIPELINE_STEPS if name == 'pipeline' else 1) for name in names}
    for name, runner in runners.items():
        runner.run(args.steps_per_loop)  # warm-up: tracing, compilation, first-call allocations
    rates = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name, runner in runners.items():
            rates[name].append(steps[name] * args.batch_size / runner.run(steps[name]))
        print(f'repeat {repeat + 1}/{args.repeats}: ' +
              '  '.join(f'{name} {rates[name][-1]:,.0f}' for name in names), flush=True)
    return rates


def summarize(rates: dict, args) -> dict:
    """Medians, and the ratios the README quotes."""
    median = {name: statistics.median(values) for name, values in rates.items()}
    summary = {'images_per_sec': median, 'repeats': rates, 'batch_size': args.batch_size,
               'steps_per_repeat': args.steps, 'augment': args.augment, 'precision': args.precision,
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


def print_summary(summary: dict):
    for name, rate in summary['images_per_sec'].items():
        print(f'{name:<16} {rate:>10,.0f} images/sec (median of {len(summary["repeats"][name])})')
    if 'digits_vs_best_fit' in summary:
        print(f'digits / best model.fit   {summary["digits_vs_best_fit"]:.2f}x')
    if 'digits_vs_fit_arrays' in summary:
        print(f'digits / model.fit(x, y) {summary["digits_vs_fit_arrays"]:.2f}x')
    if 'keras_fit_arrays' in summary['images_per_sec']:
        print(f'one fit-epoch              {summary["fit_epoch_seconds"]:.2f} s (10,000 images of model.fit(x, y))')
    if 'pipeline_vs_digits' in summary:
        print(f'pipeline / digits         {summary["pipeline_vs_digits"]:.1f}x')
    if 'digits_vs_bare_step' in summary:
        print(f'digits / bare step        {summary["digits_vs_bare_step"]:.2f} (1.00: no loop overhead at all)')
    if 'bare_step_vs_best_fit' in summary:
        print(f'bare step / best model.fit {summary["bare_step_vs_best_fit"]:.2f}x (the most any loop can gain)')


def main(argv=None):
    args = parse_args(argv)
    try:
        split = data.load('mnist', args.data_dir).train
    except DigitsError as e:
        sys.exit(f'benchmark: error: {e}')
    print(f'benchmark: {len(split)} MNIST images, batch {args.batch_size}, {args.steps} steps x '
          f'{args.repeats} repeats, {args.precision}, TensorFlow {tf.__version__}, Keras {keras.__version__}, '
          f'{os.cpu_count()} CPUs', flush=True)
    summary = summarize(measure(args, split), args)
    print_summary(summary)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=2)


if __name__ == '__main__':
    main()
