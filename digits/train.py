"""Trains a digit classifier: python -m digits.train [--flagfile=configs/mnist.cfg] [--flags...]."""
from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        cli.fail('digits.train', f'unexpected arguments: {" ".join(argv[1:])}')
    cfg = config.train_config_from_flags(FLAGS)
    cli.load_tensorflow()  # After validation: a bad flag is reported before TensorFlow loads.
    from digits import experiment
    experiment.train_and_evaluate(cfg)


if __name__ == '__main__':
    config.define_train_flags()
    cli.run(main, 'digits.train')
