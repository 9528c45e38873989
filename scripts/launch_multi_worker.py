"""Starts N local `python -m digits.train` workers with the right TF_CONFIG, to try multi-worker on one
machine. Everything after `--` goes to every worker:

    python scripts/launch_multi_worker.py --num_workers=2 -- --strategy=multi_worker \\
        --run_name=mw

Each worker's output is prefixed with [worker i]. If one worker fails or --timeout passes, the others
are stopped; the exit status is the first failure's (0 if all succeed).
"""
import sys

from absl import flags

from digits import cli
from support import local_cluster

FLAGS = flags.FLAGS
flags.DEFINE_integer('num_workers', 2, 'Worker processes to start on localhost.')
flags.DEFINE_integer('timeout', 3600, 'Seconds before all workers are stopped.')


def main(argv):
    if FLAGS.num_workers < 1:
        cli.fail('launch_multi_worker', f'--num_workers ({FLAGS.num_workers}) must be positive')
    procs = local_cluster.start_workers(FLAGS.num_workers, argv[1:])
    try:
        sys.exit(local_cluster.wait_all(procs, FLAGS.timeout))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


if __name__ == '__main__':
    cli.run(main, 'launch_multi_worker', positional=True)  # the training flags, after --
