"""Evaluates an export or a run: python -m digits.evaluate --model=models/<run> | --run_dir=logs/<run>.

--model may be a LiteRT file (digits.convert), evaluated without TensorFlow.
"""
from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    del argv  # cli.run refuses positional arguments
    cfg = config.from_flags(config.EvalConfig, FLAGS)
    if cfg.model and cfg.model.endswith('.tflite'):  # a LiteRT file is evaluated without TensorFlow
        from digits.export import litert
        litert.evaluate_file(cfg)
        return
    cli.load_tensorflow()  # After validation: a bad flag is reported before TensorFlow loads.
    from digits.training import evaluation
    evaluation.evaluate_saved(cfg)


def run():
    """The digits-evaluate command (and python -m digits.evaluate)."""
    config.define_flags(config.EvalConfig)
    cli.run(main, 'digits.evaluate', flags_help=config.module_flags_help)


if __name__ == '__main__':
    run()
