"""What every entry point shares: flag parsing and user errors as one line with exit status 2."""
import os
import sys
from collections.abc import Callable

from absl import app, flags, logging

from digits.errors import DigitsError
from digits.native import quiet_native_stderr


def run(main, prog: str, *, flags_help: Callable[[], str] | None = None, positional: bool = False,
        renamed: dict[str, str] | None = None):
    """app.run(main), printing DigitsError and flag errors as 'prog: error: ...' and exiting with 2.

    flags_help: what --help prints after the entry point's docstring (absl's own --help shows only
    flags defined in the main module, and digits defines them in digits.config); by default, a script's.
    positional: main takes arguments besides the flags (file names); otherwise any is an error.
    renamed: {old flag: new flag} of this command, named in the error for an old one.
    """

    def parse_flags(argv):
        doc = (sys.modules[main.__module__].__doc__ or prog).strip()  # the entry point's, also as digits-<command>
        if '--helpfull' in argv[1:]:  # absl's own --helpfull exits 1
            print_help(doc + '\n\n' + flags.FLAGS.get_help())
        if any(arg in ('--help', '-h', '-?', '--helpshort') for arg in argv[1:]):  # absl's own --help exits 1
            print_help(doc + '\n' + (flags_help or script_flags_help)() +
                       '\n\nTry --helpfull to see every flag, absl\'s own included.')
        try:
            rest = flags.FLAGS(argv)
        except flags.UnrecognizedFlagError as e:
            fail(prog, renamed_flag_error(e, renamed or {}, prog))
        except flags.Error as e:
            fail(prog, str(e))
        if len(rest) > 1 and not positional:
            fail(prog, f'unexpected arguments: {" ".join(rest[1:])}')
        return rest

    def guarded_main(argv):
        if not flags.FLAGS['verbosity'].present:
            logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines would drown the progress lines.
        try:
            return main(argv)
        except DigitsError as e:
            fail(prog, str(e), e.prefix, e.exit_code)

    app.run(guarded_main, flags_parser=parse_flags)


def renamed_flag_error(error: flags.UnrecognizedFlagError, renamed: dict[str, str], prog: str) -> str:
    """An unknown flag's error, saying what it is called now if it was renamed."""
    if error.flagname in renamed:
        return f'--{error.flagname} is --{renamed[error.flagname]} in {prog} ({RENAMED_WHY[error.flagname]})'
    return str(error)


RENAMED_WHY = {'model': '--model names an export in evaluate, predict and serve'}


def print_help(text: str):
    """Prints text to stdout and exits 0; a reader that closes early (| head) is no error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        pass
    os._exit(0)


def load_tensorflow():
    """Imports TensorFlow and lists its devices with stderr silenced (unless TF_CPP_MIN_LOG_LEVEL < 2).

    TensorFlow 2.21's C++ side prints a dozen lines while it loads (oneDNN notices, CUDA probing on a
    machine without a GPU), before its own log-level setting takes effect; they would bury the one-line
    errors and the progress lines. An exception still surfaces: it propagates after stderr is restored.
    """
    with quiet_native_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices()  # Device discovery prints the CUDA probing lines now.


def fail(prog: str, message: str, prefix: str = 'error: ', exit_code: int = 2):
    """Prints one line to stderr and exits with exit_code (2: a usage or data error)."""
    print(f'{prog}: {prefix}{message}', file=sys.stderr, flush=True)
    # os._exit: no interpreter teardown, so TensorFlow cannot add a traceback or hang on exit.
    sys.stdout.flush()
    os._exit(exit_code)


def script_flags_help() -> str:
    """--help of a script under scripts/: the flags it defines, then those it took from digits.config."""
    from digits import config
    return config.module_flags_help(modules=(sys.argv[0],))
