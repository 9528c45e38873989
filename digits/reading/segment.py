"""Numbers: the ink of an image holding one digit or several written left to right on one line -> the pieces
of ink that may each be one digit, in reading order.

Connected components of the ink; specks dropped; pieces of one digit merged (a 5 whose top bar is detached,
a 4 or 7 written in two strokes, a broken scan: their columns overlap); a piece wider than one digit can be
goes to the reader (digits.reading.reader) with its candidate cuts, paths from top to bottom that cross the
least ink near the columns where it is thinnest (touching digits overlap: a straight cut would give one the
other's stroke), so that the model's probabilities decide where two touching digits part. Imports nothing
heavy: numpy only.
"""
import dataclasses

import numpy as np

INK_THRESHOLD = 0.25  # of the ink's full strength: fainter pixels (paper texture, JPEG ringing) are not ink
SPECK = 0.15  # a piece shorter and narrower than this fraction of the line's height is a speck
MERGE_OVERLAP = 0.5  # pieces whose columns overlap by this fraction of the narrower one are one digit
MAX_DIGIT_WIDTH = 1.1  # of the line's height: a wider piece holds more than one digit
MIN_DIGIT_WIDTH = 0.12  # of the line's height: a cut never leaves a narrower piece (a 1 is ~0.15)
CUT_SPACING = 0.15  # of the line's height: candidate cuts at least this far apart
# A cut may bend this far (of the line's height) either side of its column, a column per row at most, to
# go round the ink of digits whose boxes overlap; each column it moves costs BEND_COST (of a pixel of full
# ink), so that where no ink is in the way it stays straight.
CUT_BEND, BEND_COST = 0.3, 0.05


@dataclasses.dataclass(frozen=True)
class Piece:
    """Ink that may be one digit: its box [x0, x1) x [y0, y1) in the ink's pixels, and its own ink there
    (other pieces' ink inside the box is zero), [y1 - y0, x1 - x0] float32 in [0, 1]."""
    x0: int
    y0: int
    x1: int
    y1: int
    ink: np.ndarray

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def columns(self, start: int, stop: int) -> 'Piece':
        """The part of this piece in its columns [start, stop) (relative to x0), cropped to its ink."""
        part = self.ink[:, start:stop]
        rows = np.flatnonzero((part > INK_THRESHOLD).any(axis=1))
        top, bottom = (rows[0], rows[-1] + 1) if rows.size else (0, self.height)
        return Piece(self.x0 + start, self.y0 + top, self.x0 + stop, self.y0 + bottom, part[top:bottom])


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a bool mask [h, w]: (labels [h, w] int32, 0 for background, 1..n), n,
    numbered in the order their first pixel comes row by row.

    The runs of ink in each row are the nodes; two runs in neighbouring rows whose columns touch, diagonals
    included, are joined (touching_runs); join_runs finds the components of that graph."""
    h, w = mask.shape
    edges = np.diff(np.pad(mask, [(0, 0), (1, 1)]).view(np.int8), axis=1)  # +1 where a run starts, -1 after it
    rows, starts = np.nonzero(edges == 1)
    stops = np.nonzero(edges == -1)[1]  # row-major order: the i-th stop ends the i-th run
    if not len(rows):
        return np.zeros((h, w), np.int32), 0
    _, label = np.unique(join_runs(len(rows), *touching_runs(rows, starts, stops, w)), return_inverse=True)
    label += 1
    marks = np.zeros((h, w + 1), np.int64)  # each run's label written at its start, taken back at its stop
    marks[rows, starts], marks[rows, stops] = label, -label  # no two runs start or stop at one pixel
    return np.cumsum(marks, axis=1)[:, :w].astype(np.int32), int(label.max())


def touching_runs(rows: np.ndarray, starts: np.ndarray, stops: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b) of runs (rows, columns [starts, stops), in row-major order, in a mask w wide) whose columns
    touch, diagonals included, b in the row above a's: the runs above that stop at or after a's start and
    start at or before its stop, found by searching the runs' row-major keys."""
    width = w + 2
    above = (rows - 1) * width
    first = np.searchsorted(rows * width + stops, above + starts, 'left')
    count = np.maximum(np.searchsorted(rows * width + starts, above + stops, 'right') - first, 0)
    a = np.repeat(np.arange(len(rows)), count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return a, np.repeat(first, count) + offsets


def join_runs(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The components of n nodes joined by the edges (a, b): each node's root, the least node of its
    component. Each round hooks the greater root of every edge whose roots differ to the lesser, then
    points every node straight at its root; each round leaves fewer roots."""
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(ra, rb)[differ], np.minimum(ra, rb)[differ])
        while not np.array_equal(up := parent[parent], parent):
            parent = up


def find_pieces(ink: np.ndarray) -> list[Piece]:
    """The ink [h, w] in [0, 1] (the paper at 0) as pieces that may each be one digit, left to right:
    components of ink, specks dropped, the pieces of one digit merged."""
    labels, count = label_components(ink > INK_THRESHOLD)
    if not count:
        return []
    boxes = component_boxes(labels, count)
    line = max(y1 - y0 for _, y0, _, y1 in boxes)
    kept = [k for k, (x0, y0, x1, y1) in enumerate(boxes) if not is_speck(x1 - x0, y1 - y0, line)]
    groups = merge_overlapping([boxes[k] for k in kept])
    return [group_piece(ink, labels, [kept[i] + 1 for i in group], [boxes[kept[i]] for i in group])
            for group in groups]


def component_boxes(labels: np.ndarray, count: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of each component 1..count, half-open."""
    rows, cols = np.nonzero(labels)
    k = labels[rows, cols] - 1
    x0, y0 = np.full(count, labels.shape[1]), np.full(count, labels.shape[0])
    x1, y1 = np.zeros(count, np.intp), np.zeros(count, np.intp)
    np.minimum.at(x0, k, cols)
    np.minimum.at(y0, k, rows)
    np.maximum.at(x1, k, cols + 1)
    np.maximum.at(y1, k, rows + 1)
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(x0, y0, x1, y1)]


def is_speck(width: int, height: int, line: int) -> bool:
    """A dot of dust or noise: small in both directions against the line's height."""
    return width < SPECK * line and height < SPECK * line


def merge_overlapping(boxes: list[tuple[int, int, int, int]]) -> list[list[int]]:
    """Indices of boxes grouped into digits, left to right: a box joins a group whose columns overlap its
    own by MERGE_OVERLAP of the narrower of the two."""
    groups = []  # [x0, x1, [indices]]
    for i in sorted(range(len(boxes)), key=lambda i: boxes[i][0]):
        x0, _, x1, _ = boxes[i]
        for group in groups:
            overlap = min(x1, group[1]) - max(x0, group[0])
            if overlap >= MERGE_OVERLAP * min(x1 - x0, group[1] - group[0]):
                group[0], group[1] = min(x0, group[0]), max(x1, group[1])
                group[2].append(i)
                break
        else:
            groups.append([x0, x1, [i]])
    return [group[2] for group in sorted(groups, key=lambda g: g[0])]


def group_piece(ink: np.ndarray, labels: np.ndarray, members: list[int], boxes: list) -> Piece:
    """The piece made of the given components: their box, and the ink inside it that is not another
    piece's (the faint fringe below the threshold, a blurred scan's halo, stays: the model was trained on it)."""
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    region = labels[y0:y1, x0:x1]
    other = (region > 0) & ~np.isin(region, members)
    padded = np.pad(other, 1)  # and the pixel around another piece's ink, its own fringe
    other |= padded[2:, 1:-1] | padded[:-2, 1:-1] | padded[1:-1, 2:] | padded[1:-1, :-2]
    return Piece(x0, y0, x1, y1, np.where(other, 0.0, ink[y0:y1, x0:x1]).astype(np.float32))


def line_height(pieces: list[Piece]) -> int:
    """The height of the line of digits: its tallest piece."""
    return max(piece.height for piece in pieces)


def candidate_cuts(piece: Piece, line: int) -> list[np.ndarray]:
    """Where two touching digits may part, left to right: each cut [piece.height] int is, row by row, the
    first column (relative to piece.x0) of the right-hand part; the cut of least ink (cut_paths) bent from a
    local minimum of the ink's column sums, thinnest first, at least CUT_SPACING x line apart and
    MIN_DIGIT_WIDTH x line from the edges."""
    profile = piece.ink.sum(axis=0)
    margin, spacing = max(1, round(MIN_DIGIT_WIDTH * line)), max(1, round(CUT_SPACING * line))
    inside = range(margin, piece.width - margin + 1)
    minima = [x for x in inside if profile[x - 1:x + 2].size and profile[x] <= profile[max(0, x - 2):x + 3].min()]
    columns = []
    for x in sorted(minima, key=lambda x: profile[x]):
        if all(abs(x - c) >= spacing for c in columns):
            columns.append(x)
    bend = max(1, round(CUT_BEND * line))
    columns = sorted(columns)
    paths = cut_paths(piece.ink, columns, [max(margin, x - bend) for x in columns],
                      [min(piece.width - margin, x + bend) for x in columns])
    cuts = {}
    for path in paths:
        cuts.setdefault(path.tobytes(), path)  # two columns may bend to one cut
    return sorted(cuts.values(), key=lambda path: path.mean())


def cut_paths(ink: np.ndarray, columns: list[int], lows: list[int], highs: list[int]) -> list[np.ndarray]:
    """For each column, the cut from top to bottom through columns [low, high] of ink [h, w] that crosses the
    least ink (a column per row at most, BEND_COST a column moved), starting from the column where no ink
    decides: [h] int each. All the cuts are found in one pass over the rows."""
    if not columns:
        return []
    lows, highs = np.array(lows)[:, None], np.array(highs)[:, None]
    index = lows + np.arange(int((highs - lows).max()) + 1)[None, :]  # [cuts, n]: each cut's band of columns
    band = np.where(index <= highs, ink[:, np.minimum(index, ink.shape[1] - 1)].astype(np.float64), np.inf)
    nudge = 1e-6 * np.abs(index - np.array(columns)[:, None])  # ties go to the column itself
    cost = band[0] + nudge
    moves = np.zeros(band.shape, np.int8)
    left, right = np.full(cost.shape, np.inf), np.full(cost.shape, np.inf)
    for y in range(1, band.shape[0]):
        left[:, 1:], right[:, :-1] = cost[:, :-1] + BEND_COST, cost[:, 1:] + BEND_COST
        best = np.minimum(np.minimum(left, cost), right)
        moves[y] = np.where(left == best, -1, np.where(cost == best, 0, 1))  # from the left, above, the right
        cost = best + band[y] + nudge
    path = np.empty(band.shape[:2], np.int64)
    path[-1] = cost.argmin(axis=1)
    cut = np.arange(len(columns))
    for y in range(band.shape[0] - 1, 0, -1):
        path[y - 1] = path[y] + moves[y, cut, path[y]]
    return list((path + lows[:, 0]).T)
