"""digits: handwritten-digit recognition with a hand-written TF2 training loop."""
import os
import time

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries the progress lines on a CPU
# machine; a user who wants it back sets TF_CPP_MIN_LOG_LEVEL themselves.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def _process_start_time() -> float:
    """When this process started (Unix time), from /proc on Linux; else when digits was imported."""
    try:
        with open('/proc/self/stat') as f:
            ticks = int(f.read().rsplit(')', 1)[1].split()[19])  # field 22: start time, in clock ticks
        with open('/proc/uptime') as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
        return time.time()


PROCESS_START = _process_start_time()  # For time-to-first-step: the user waits from here.
