"""Training throughput of digits' loop vs. Keras model.fit, and of the tf.data pipeline alone.

    python scripts/benchmark.py [--json=bench.json] [--cnn=16x3x2x1 ...]

One process, one machine, the same data, model and global batch for every contestant, measured in
alternation after a warm-up; each figure is the median of its repeats, in images/sec. What each contestant
is and how it is timed: scripts/support/benchmark.py. The figures and what they say: docs/performance.md.
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
    from support import benchmark
    cfg = benchmark.BenchmarkConfig(
        dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, batch_size=FLAGS.batch_size, steps=FLAGS.steps,
        repeats=FLAGS.repeats, steps_per_loop=FLAGS.steps_per_loop, augment=FLAGS.augment,
        precision=FLAGS.precision, only=tuple(FLAGS.only), cnn=tuple(FLAGS.cnn), json=FLAGS.json)
    benchmark.run_benchmark(cfg, log=lambda line: print(line, flush=True))


if __name__ == '__main__':
    cli.run(main, 'benchmark', flags_help=cli.script_flags_help)
