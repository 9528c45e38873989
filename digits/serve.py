"""Reads handwriting in a browser, and serves the model as TensorFlow Serving does:
python -m digits.serve --model=models/<run> [--port=8000] [--grpc_port=8500]

Serves a page to write digits on (and to drop image files on), a JSON API (POST /api/predict with an
image file), TensorFlow Serving's REST API (/v1/models/digits) and, with --grpc_port, its gRPC API;
concurrent requests share batched model calls. Until Ctrl-C or SIGTERM (requests in flight finish).
"""
from absl import flags

from digits import cli, config

FLAGS = flags.FLAGS


def main(argv):
    del argv  # cli.run refuses positional arguments
    cfg = config.from_flags(config.ServeConfig, FLAGS)
    if not cfg.model.endswith('.tflite') or cfg.grpc_port is not None:  # LiteRT alone needs no TensorFlow
        cli.load_tensorflow()  # After validation: a bad flag is reported before TensorFlow loads.
    from digits.serving import server
    server.serve(cfg, log=lambda line: print(line, flush=True))


def run():
    """The digits-serve command (and python -m digits.serve)."""
    config.define_flags(config.ServeConfig)
    cli.run(main, 'digits.serve', flags_help=config.module_flags_help)


if __name__ == '__main__':
    run()
