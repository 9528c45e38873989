"""digits: handwritten-digit recognition with a hand-written TF2 training loop."""
import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries the progress lines on a CPU
# machine; a user who wants it back sets TF_CPP_MIN_LOG_LEVEL themselves.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
