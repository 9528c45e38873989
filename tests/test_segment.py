"""digits.reading.segment on constructed ink: components, specks, the pieces of one digit merged, cuts between
touching digits."""
import numpy as np

from digits.reading import segment


def blank(h=60, w=200) -> np.ndarray:
    return np.zeros((h, w), np.float32)


def test_components_are_8_connected():
    ink = blank(10, 10)
    ink[1:3, 1:3] = 1
    ink[3:5, 3:5] = 1  # touches the first only at a corner
    ink[7:9, 7:9] = 1
    labels, count = segment.label_components(ink > 0.5)
    assert count == 2 and labels[1, 1] == labels[4, 4] != labels[8, 8] and labels[0, 0] == 0


def flood_fill(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The components of mask by the definition, pixel by pixel: 8 neighbours, numbered from the first pixel."""
    labels, count = np.zeros(mask.shape, np.int32), 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        count += 1
        labels[y, x], todo = count, [(y, x)]
        while todo:
            cy, cx = todo.pop()
            for ny in range(max(0, cy - 1), min(mask.shape[0], cy + 2)):
                for nx in range(max(0, cx - 1), min(mask.shape[1], cx + 2)):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        todo.append((ny, nx))
    return labels, count


def serpentine(n: int) -> np.ndarray:
    """One stroke winding down and up n columns: its runs join one another row after row, far from where it
    starts."""
    mask = np.zeros((n, n), bool)
    mask[:, ::2] = True
    for column in range(0, n - 2, 2):
        mask[n - 1 if column % 4 == 0 else 0, column:column + 3] = True
    return mask


def test_components_are_those_of_a_flood_fill_numbered_in_reading_order():
    rng = np.random.default_rng(0)
    masks = [rng.random(rng.integers(1, 30, 2)) < rng.random() for _ in range(200)]
    masks += [serpentine(41), serpentine(41).T, np.zeros((3, 4), bool)]
    for mask in masks:
        labels, count = segment.label_components(mask)
        expected, expected_count = flood_fill(mask)
        assert count == expected_count and np.array_equal(labels, expected), mask.astype(int)
    assert segment.label_components(serpentine(41))[1] == segment.label_components(serpentine(41).T)[1] == 1


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
    assert all(cut.shape == (40,) for cut in cuts)
    assert any(((30 <= cut) & (cut <= 36)).all() for cut in cuts), cuts  # through the bridge (ink columns 50-56)


def slanted_stroke(ink: np.ndarray, x: int) -> np.ndarray:
    """A stroke 5 px wide from (x, 10) down to (x + 20, 50), leaning right as handwriting does; its mask."""
    mask = np.zeros(ink.shape, bool)
    for y in range(10, 50):
        left = x + (y - 10) // 2
        mask[y, left:left + 5] = True
    ink[mask] = 1
    return mask


def test_a_cut_bends_between_digits_whose_boxes_overlap():
    """Two slanted strokes touching by a bridge: their columns overlap by 8, so no straight cut parts them
    without taking a piece of one, while a bent cut crosses only the bridge."""
    ink = blank()
    first, second = slanted_stroke(ink, 20), slanted_stroke(ink, 36)
    ink[29:31, 34:46] = 1  # the bridge
    [piece] = segment.find_pieces(ink)
    assert (piece.x0, piece.x1) == (20, 60)
    rows, columns = np.arange(10, 50), np.arange(200)[None, :] - piece.x0

    def parts(cut):  # each stroke's pixels on the wrong side of the cut
        left = columns < cut[:, None]
        return int((first[rows] & ~left).sum()), int((second[rows] & left).sum())

    straight = [parts(np.full(40, x)) for x in range(16, 25)]  # every column where the boxes overlap
    assert all(a + b >= 5 for a, b in straight), straight
    cuts = segment.candidate_cuts(piece, segment.line_height([piece]))
    assert (0, 0) in [parts(cut) for cut in cuts], [parts(cut) for cut in cuts]


def test_columns_crop_a_part_of_a_piece_to_its_ink():
    ink = blank()
    ink[10:50, 20:50] = 1
    ink[30:50, 50:70] = 1
    piece = segment.find_pieces(ink)[0]
    right = piece.columns(32, 50)
    assert (right.x0, right.y0, right.x1, right.y1) == (52, 30, 70, 50) and right.ink.shape == (20, 18)
