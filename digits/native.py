"""Native libraries' own output: TensorFlow's and LiteRT's C++ start-up lines, kept off the user's terminal."""
import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_native_stderr():
    """Silences what C++ libraries write to stderr inside the block (TensorFlow's start-up, LiteRT's
    'Created TensorFlow Lite XNNPACK delegate'), unless the user set TF_CPP_MIN_LOG_LEVEL below 2 (digits
    sets 2 unless they chose)."""
    if int(os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0')) < 2:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
