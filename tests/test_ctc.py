"""digits.training.ctc: the line reader's CTC loss, greedy decoding and exact lines, against numpy's."""
import numpy as np
import tensorflow as tf

from digits.data.line_format import NOT_A_DIGIT, PAD
from digits.reading import lines as reading_lines
from digits.training import ctc

BLANK = 11


def frames_reading(path: list[int], classes: int = 12, sure: float = 8.0) -> np.ndarray:
    """Logits [frames, classes] whose most probable class in frame t is path[t], by `sure` nats."""
    logits = np.zeros((len(path), classes), np.float32)
    logits[np.arange(len(path)), path] = sure
    return logits


def test_a_confident_right_alignment_costs_little_and_a_wrong_label_much():
    logits = tf.constant([frames_reading([BLANK, 3, 3, BLANK, 1, BLANK, 4, 4, BLANK, BLANK])])
    right = float(ctc.line_losses(logits, tf.constant([[3, 1, 4, PAD]]))[0])
    wrong = float(ctc.line_losses(logits, tf.constant([[3, 1, 5, PAD]]))[0])
    shorter = float(ctc.line_losses(logits, tf.constant([[3, 1, PAD, PAD]]))[0])
    assert right < 0.05 and wrong > 5 and shorter > 5


def test_greedy_decoding_joins_repeats_and_drops_blanks():
    path = [BLANK, 3, 3, BLANK, 3, 1, 1, NOT_A_DIGIT, BLANK, 0]
    read = ctc.greedy_decode(tf.constant([frames_reading(path)])).numpy()[0]
    np.testing.assert_array_equal(read[:6], [3, 3, 1, NOT_A_DIGIT, 0, PAD])
    assert (read[5:] == PAD).all()


def test_exact_lines_needs_every_digit_and_nothing_more():
    logits = tf.constant([frames_reading([2, BLANK, 0, 2, 6])] * 3)
    labels = tf.constant([[2, 0, 2, 6, PAD, PAD], [2, 0, 2, PAD, PAD, PAD], [2, 0, 2, 6, 6, PAD]])
    np.testing.assert_array_equal(ctc.exact_lines(logits, labels).numpy(), [1, 0, 0])


def test_numpy_decoding_reads_what_training_counts():
    """digits.reading.lines.decode (numpy, the reader's) and greedy_decode (TensorFlow, training's) agree on
    random frames, where repeats and blanks are everywhere."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 30, 12)).astype(np.float32) * 3
    read = ctc.greedy_decode(tf.constant(logits)).numpy()
    for row, frames in zip(read, logits):
        symbols = reading_lines.decode(tf.nn.softmax(frames).numpy())
        assert [s.label for s in symbols] == [k for k in row if k != PAD]


def test_the_objective_counts_every_line_and_has_a_finite_divergence_limit():
    objective = ctc.line_objective()
    labels = tf.constant([[1, PAD], [2, 3]])
    np.testing.assert_array_equal(objective.counted(None, labels).numpy(), [1, 1])
    assert 100 < objective.max_loss < 10_000
