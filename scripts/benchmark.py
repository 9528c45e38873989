"""Training throughput of digits' loop vs. Keras model.fit, and of the tf.data pipeline alone.

    python scripts/benchmark.py [--json=bench.json]

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
  cnn_WxBxCxF     with --cnn=WxBxCxF: the bare step of digits' cnn of --width W, --blocks B,
                  --convs_per_block C and --first_block_convs F (the default recipe: 16x3x2x1): what an
                  architecture costs per image

The headline ratio is against the fastest model.fit variant, so the comparison is with Keras at its best.
bare_step / best fit is the most that any loop, digits' or another, could gain over model.fit here: the
rest of a step is the model's own computation (the same convolutions), which every loop shares.
--precision=mixed_bfloat16 runs every contestant (fit included) under that Keras dtype policy.
"""
from absl import flags

from digits import cli

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_10k', 'Dataset whose training images every contestant trains on.')
flags.DEFINE_string('data_dir', None, 'Folder with the dataset\'s IDX files or npz (unset: bundled or downloaded).')
flags.DEFINE_integer('batch_size', 128, 'Global batch, for everyone.')
flags.DEFINE_integer('steps', 200, 'Training steps per repeat.')
flags.DEFINE_integer('repeats', 5, 'Measured repeats of each contestant.')
flags.DEFINE_integer('steps_per_loop', 50, 'digits: steps per tf.function call.')
flags.DEFINE_bool('augment', False, 'Random affine augmentation in the pipeline.')
flags.DEFINE_enum('precision', 'float32', ('float32', 'mixed_bfloat16'),
                  'Keras dtype policy of every model (float16 would need loss scaling).')
flags.DEFINE_list('only', [], 'Contestants to run (default: all).')
flags.DEFINE_multi_string('cnn', [], 'WIDTHxBLOCKSxCONVSxFIRST: also the bare step of the cnn with these --width, '
                          '--blocks, --convs_per_block and --first_block_convs (the default recipe: 16x3x2x1); '
                          'contestant "cnn_16x3x2x1"')
flags.DEFINE_string('json', None, 'Also write the figures here.')


def main(argv):
    del argv
    cli.load_tensorflow()
    from digits import benchmark
    cfg = benchmark.BenchmarkConfig(
        dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, batch_size=FLAGS.batch_size, steps=FLAGS.steps,
        repeats=FLAGS.repeats, steps_per_loop=FLAGS.steps_per_loop, augment=FLAGS.augment,
        precision=FLAGS.precision, only=tuple(FLAGS.only), cnn=tuple(FLAGS.cnn), json=FLAGS.json)
    benchmark.run_benchmark(cfg, log=lambda line: print(line, flush=True))


if __name__ == '__main__':
    cli.run(main, 'benchmark', flags_help=cli.script_flags_help)
