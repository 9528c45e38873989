"""digits.segment on constructed ink: components, specks, the pieces of one digit merged, cuts between
touching digits."""
import numpy as np

from digits import segment


def blank(h=60, w=200) -> np.ndarray:
    return np.zeros((h, w), np.float32)


def test_components_are_8_connected():
    ink = blank(10, 10)
    ink[1:3, 1:3] = 1
    ink[3:5, 3:5] = 1  # touches the first only at a corner
    ink[7:9, 7:9] = 1
    labels, count = segment.label_components(ink > 0.5)
    assert count == 2 and labels[1, 1] == labels[4, 4] != labels[8, 8] and labels[0, 0] == 0


def test_pieces_come_left_to_right_and_specks_are_dropped():
    ink = blank()
    ink[10:50, 120:130] = 1  # a '1' on the right
    ink[10:50, 20:50] = 1  # a block on the left
    ink[55:57, 80:82] = 1  # a speck of dust
    pieces = segment.find_pieces(ink)
    assert [(p.x0, p.x1) for p in pieces] == [(20, 50), (120, 130)]
    assert pieces[0].ink.shape == (40, 30) and pieces[1].ink.max() == 1


def test_the_pieces_of_one_digit_are_merged():
    """A 5 whose top bar is detached, a 4 written in two strokes: their columns overlap."""
    five = blank()
    five[5:9, 20:45] = 1  # the bar, above and apart from the body
    five[14:50, 18:42] = 1
    four = blank()
    four[5:35, 80:84] = four[31:35, 80:104] = 1  # the first stroke, an L
    four[8:52, 96:100] = 1  # the second, crossing nothing
    pieces = segment.find_pieces(np.maximum(five, four))
    assert [(p.x0, p.y0, p.x1, p.y1) for p in pieces] == [(18, 5, 45, 50), (80, 5, 104, 52)]


def test_a_piece_keeps_only_its_own_ink():
    ink = blank()
    ink[10:50, 10:40] = 1
    ink[5:45, 60:70] = 1
    first = segment.find_pieces(ink)[0]
    assert first.ink.shape == (40, 30) and first.ink.min() == 1


def test_touching_digits_get_a_cut_where_their_ink_is_thinnest():
    ink = blank()
    ink[10:50, 20:50] = 1
    ink[10:50, 56:86] = 1
    ink[28:31, 50:56] = 1  # a thin bridge between them: they touch
    pieces = segment.find_pieces(ink)
    assert len(pieces) == 1 and pieces[0].width == 66
    cuts = segment.candidate_cuts(pieces[0], segment.line_height(pieces))
    assert any(30 <= c <= 36 for c in cuts), cuts  # within the bridge (columns 50-56 of the ink)


def test_columns_crop_a_part_of_a_piece_to_its_ink():
    ink = blank()
    ink[10:50, 20:50] = 1
    ink[30:50, 50:70] = 1
    piece = segment.find_pieces(ink)[0]
    right = piece.columns(32, 50)
    assert (right.x0, right.y0, right.x1, right.y1) == (52, 30, 70, 50) and right.ink.shape == (20, 18)
