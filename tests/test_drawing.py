"""digits.reading.drawing: pen strokes on the pad, and MNIST ink on paper."""
import numpy as np

from digits.reading import drawing


def test_overlapped_puts_the_right_ink_over_the_left_by_the_overlap():
    left = np.zeros((3, 4), np.uint8)
    left[:, 3] = 200  # left's last column
    right = np.zeros((3, 5), np.uint8)
    right[:, 0] = 100  # right's first column, over left's last
    right[:, 1] = 50
    row = drawing.overlapped(left, right, 1)
    assert row.shape == (3, 8) and row.dtype == np.uint8
    np.testing.assert_array_equal(row[0], [0, 0, 0, 200, 50, 0, 0, 0])  # the brighter ink kept where they meet
    apart = drawing.overlapped(left, right, 0)
    np.testing.assert_array_equal(apart[0], [0, 0, 0, 200, 100, 50, 0, 0, 0])


def test_a_touching_pair_is_two_digits_overlapping_on_a_page_with_its_margin():
    a, b = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.uint8)
    a[10:18, 20:28] = 255  # a's ink in its last 8 columns
    b[10:18, 0:4] = 255
    page = drawing.touching_pair(a, b, 6)[..., 0]
    assert page.shape == (28 + 20, 56 - 6 + 20)
    ink = np.flatnonzero((page < 0.5).any(axis=0)) - 10  # columns of the row, the margin taken off
    np.testing.assert_array_equal(ink, np.arange(20, 28))  # b's ink lies inside a's: 22-25 of the row
    assert page[0, 0] == 1.0 and page[20, 10 + 21] == 0.0  # white paper, black ink


def test_strokes_are_drawn_with_a_round_pen_of_the_width_given():
    page = drawing.render_strokes([[(60, 140), (220, 140)]], 12)[..., 0]
    assert page.shape == (drawing.PAD, drawing.PAD)
    column = np.flatnonzero(page[:, 140] < 0.5)
    assert 11 <= len(column) <= 13 and column.min() >= 133 and column.max() <= 147
    row = np.flatnonzero(page[140] < 0.5)
    assert row.min() < 60 - 4 and row.max() > 220 + 4  # round ends reach past the stroke's points
