"""Runs a grid or random search of digits.train runs and ranks them, with each run's time in fit-epochs:

    python -m digits.sweep --sweep_dir=logs/sweep-lr --grid=learning_rate=0.003,0.01 --grid=seed=0,1 \\
        --validation_split=0.1

Every digits.train flag given (a --flagfile's included) goes to each run; each --grid (or, with --random=N,
--range) adds one flag per point. --grid=flagfile=configs/fast.cfg,configs/mnist.cfg compares recipes;
--grid=seed=0,1,2 adds each point's mean and worst over the seeds. Rerunning the same command skips finished
points and resumes interrupted ones. The table is also written as results.csv and results.md in the sweep
folder; --best_flagfile writes the best point as a flagfile. Exit status: 0, 1 if a run failed, 2 for bad
arguments.
"""
import shlex
import sys

from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    del argv  # cli.run refuses positional arguments
    cfg = config.sweep_config_from_flags(FLAGS, command='python -m digits.sweep ' + shlex.join(sys.argv[1:]))
    from digits.training import sweeps
    points = sweeps.plan_sweep(cfg)  # every point checked before TensorFlow loads
    if not cfg.fit_epoch_seconds:
        cli.load_tensorflow()  # the sweep measures its unit, the fit-epoch, with TensorFlow
    return sweeps.run_sweep(cfg, points, log=lambda line: print(line, flush=True))


def run():
    """The digits-sweep command (and python -m digits.sweep)."""
    config.define_sweep_flags()
    cli.run(main, 'digits.sweep', flags_help=config.sweep_flags_help, renamed={'model': 'arch'})


if __name__ == '__main__':
    run()
