"""Reads digits in your own images: python -m digits.predict --model=models/<run> FILE...

--model is an export, or a LiteRT file (digits.convert), read without TensorFlow.

PNG, JPEG, GIF or BMP of any size, grey or colour, dark ink on light paper or the reverse. Prints one
line per file; a file that cannot be read gets one error line and the others are still classified.
Exit status: 0 if every file was classified, 1 if any failed, 2 for a usage error.
"""
import sys

from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    cfg = config.from_flags(config.PredictConfig, FLAGS, files=tuple(argv[1:]))
    if not cfg.model.endswith('.tflite'):  # a LiteRT file is read without TensorFlow
        cli.load_tensorflow()  # After validation: a bad flag is reported before TensorFlow loads.
    from digits.reading import prediction
    _, errors = prediction.classify_files(cfg, warn=lambda line: print(f'digits.predict: {line}', file=sys.stderr))
    return 1 if errors else 0


def run():
    """The digits-predict command (and python -m digits.predict)."""
    config.define_flags(config.PredictConfig)
    cli.run(main, 'digits.predict', flags_help=config.module_flags_help, positional=True)


if __name__ == '__main__':
    run()
