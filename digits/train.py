"""Trains a digit classifier: python -m digits.train [--flagfile=configs/mnist.cfg] [--flags...]."""
from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    del argv  # cli.run refuses positional arguments
    cfg = config.train_config_from_flags(FLAGS)
    cli.load_tensorflow()  # After validation: a bad flag is reported before TensorFlow loads.
    from digits.training import experiment
    experiment.train_and_evaluate(cfg)


def run():
    """The digits-train command (and python -m digits.train)."""
    config.define_train_flags()
    cli.run(main, 'digits.train', flags_help=config.train_flags_help, renamed={'model': 'arch'})


if __name__ == '__main__':
    run()
