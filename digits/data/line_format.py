"""What a line of digits is to the line reader, in training and in reading (no TensorFlow: the reader
imports it): its size, its labels, and how the model's frames read."""
import numpy as np

HEIGHT = 28  # the line's height in pixels, as the model reads it
BOX = 20  # a digit's usual height on the line (MNIST's box); the reader scales a line's ink to it
WIDTH = 224  # training lines are this wide; the model reads lines of any width
FRAME_COLUMNS = 2  # the model gives one frame of logits per this many columns (its width must be a multiple)
MAX_DIGITS = 10  # slots of a training line; those that do not fit its width are left out
NOT_A_DIGIT = 10  # the label of a mark that is not a digit; the blank is the class after it
PAD = -1  # the labels after a line's last one


def collapse(best: np.ndarray, blank: int) -> list[tuple[int, int, int]]:
    """Greedy CTC decoding of each frame's most probable class best [frames]: (label, first frame, stop
    frame) of each run of one class that is not the blank, a run after a blank being a new label."""
    runs, previous = [], blank
    for t, k in enumerate(best.tolist()):
        if k != blank and k == previous:
            runs[-1] = (k, runs[-1][1], t + 1)
        elif k != blank:
            runs.append((k, t, t + 1))
        previous = k
    return runs


def exact_share(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The share of lines read exactly by greedy decoding: frames [n, frames, classes] (the blank last)
    against labels [n, MAX_DIGITS] (PAD after the last)."""
    best, blank = probabilities.argmax(axis=-1), probabilities.shape[-1] - 1
    return float(np.mean([[k for k, _, _ in collapse(row, blank)] == [k for k in truth if k != PAD]
                          for row, truth in zip(best, labels)]))
