"""digits: handwritten-digit recognition with a hand-written TF2 training loop."""
import os
import time

# For time-to-first-step: the user waits from here. `python -m digits.<tool>` imports this package
# before anything else of ours or TensorFlow's, so only the interpreter's own start-up (~0.02 s)
# comes earlier. Not /proc's process start time: a shell runs the last command of `bash -c 'a && b'`
# by exec in its own process, whose start time would then count `a` too.
PROCESS_START = time.time()

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries the progress lines on a CPU
# machine; a user who wants it back sets TF_CPP_MIN_LOG_LEVEL themselves.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def __getattr__(name: str):
    """digits.Reader (digits.reading.prediction.Reader), imported when first used: `import digits` stays
    light, and a Reader of a .tflite file never imports TensorFlow."""
    if name == 'Reader':
        from digits.reading.prediction import Reader
        return Reader
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
