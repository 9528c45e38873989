"""What every entry point shares: flag parsing and user errors as one line with exit status 2."""
import os
import sys

from absl import app, flags, logging

from digits.errors import DigitsError


def run(main, prog: str):
    """app.run(main), printing DigitsError and flag errors as 'prog: error: ...' and exiting with 2."""

    def parse_flags(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            fail(prog, str(e))

    def guarded_main(argv):
        if not flags.FLAGS['verbosity'].present:
            logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines would drown the progress lines.
        try:
            return main(argv)
        except DigitsError as e:
            fail(prog, str(e), e.prefix, e.exit_code)

    app.run(guarded_main, flags_parser=parse_flags)


def fail(prog: str, message: str, prefix: str = 'error: ', exit_code: int = 2):
    """Prints one line to stderr and exits with exit_code (2: a usage or data error)."""
    print(f'{prog}: {prefix}{message}', file=sys.stderr, flush=True)
    # os._exit: no interpreter teardown, so TensorFlow cannot add a traceback or hang on exit.
    sys.stdout.flush()
    os._exit(exit_code)
