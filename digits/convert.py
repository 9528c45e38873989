"""Converts an export to LiteRT (formerly TFLite), checked against it:
python -m digits.convert --model=models/<run> --output=FILE.tflite [--quantize=none|float16|int8] [--data_dir=DIR]

Reads the 10,000 test images with the new file and with the SavedModel, prints both accuracies, and
writes the file only if they agree within the quantization's tolerance. int8 is full-integer
post-training quantization, calibrated on training images (never test images).
"""
from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    del argv  # cli.run refuses positional arguments
    cfg = config.from_flags(config.ConvertConfig, FLAGS)
    cli.load_tensorflow()  # After validation: a bad flag is reported before TensorFlow loads.
    from digits.export import litert
    litert.convert_export(cfg, log=lambda line: print(line, flush=True))


def run():
    """The digits-convert command (and python -m digits.convert)."""
    config.define_flags(config.ConvertConfig)
    cli.run(main, 'digits.convert', flags_help=config.module_flags_help)


if __name__ == '__main__':
    run()
