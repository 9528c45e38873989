"""Reading a line with the line reader, in numpy: the ink of a line -> the model's input, and the model's
frames -> the digits read, each with its probability and columns (greedy CTC decoding, as
digits.training.ctc measures it in training).
"""
import dataclasses

import numpy as np

from digits.data.line_format import BOX, FRAME_COLUMNS, HEIGHT, NOT_A_DIGIT, collapse
from digits.reading import images, segment

MARGIN = 4  # columns of paper left and right of the line's ink, as training lines have
# Columns past its own that a frame of the line reader sees (digits.training.model.LineReader's convolutions;
# tests/test_lines.py measures it). A line followed by this much more paper reads the same alone as beside a
# wider line in one batch, padded with paper to that line's width.
REACH = 22


@dataclasses.dataclass(frozen=True)
class Symbol:
    """One class read off the frames: a digit or NOT_A_DIGIT, its probability (at its most probable
    frame), that frame's probabilities over all the classes, and its frames [first, stop)."""
    label: int
    probability: float
    first: int
    stop: int
    frame: np.ndarray

    def columns(self) -> tuple[int, int]:
        """The columns [x0, x1) of the line image its frames cover."""
        return self.first * FRAME_COLUMNS, self.stop * FRAME_COLUMNS


def decode(probabilities: np.ndarray) -> list[Symbol]:
    """Greedy CTC decoding of frames [frames, classes] (the blank last): each frame's most probable class,
    repeats joined, blanks dropped (line_format.collapse); each symbol's probability at its peak frame."""
    symbols = []
    for label, first, stop in collapse(probabilities.argmax(axis=-1), blank_of(probabilities)):
        peak = first + int(probabilities[first:stop, label].argmax())
        symbols.append(Symbol(label, float(probabilities[peak, label]), first, stop, probabilities[peak]))
    return symbols


def digit_probabilities(symbol: Symbol) -> np.ndarray:
    """The symbol's probabilities over the ten digits [10], at its most probable frame: the blank left out,
    NOT_A_DIGIT's share spread evenly over the ten (a mark's reading is then near the uniform distribution,
    the digit model's answer for a mark, which the reader refuses)."""
    frame = np.asarray(symbol.frame, np.float64)
    digits = frame[:NOT_A_DIGIT] + frame[NOT_A_DIGIT] / NOT_A_DIGIT
    return (digits / max(digits.sum(), 1e-12)).astype(np.float32)


def blank_of(probabilities: np.ndarray) -> int:
    """The blank's class: the last."""
    return probabilities.shape[-1] - 1


def text_of(symbols: list[Symbol]) -> str:
    """The digits read, '?' for a mark that is not a digit."""
    return ''.join('?' if s.label == NOT_A_DIGIT else str(s.label) for s in symbols)


@dataclasses.dataclass(frozen=True)
class Line:
    """A line of ink as the line reader takes it: image [HEIGHT, w] float32 in [0, 1] (w a multiple of
    FRAME_COLUMNS), of which the first `frames` frames are the line's (the rest is paper, REACH columns),
    and where it came from: image column c is ink column x0 + (c - MARGIN) / scale."""
    image: np.ndarray
    frames: int
    scale: float
    x0: int
    y0: int
    y1: int


def prepare_line(ink: np.ndarray, pieces: list | None = None) -> Line:
    """Ink [h, w] in [0, 1] (the paper at 0) holding one line -> a Line: cropped to its ink (ink_box), the
    paper's level taken off (without_paper), scaled so that its height is BOX, strokes normalised as a
    digit's are (images.normalize_strokes), centred in HEIGHT rows with MARGIN columns of paper each side,
    and REACH more after it."""
    y0, y1, x0, x1 = ink_box(ink, pieces)
    crop = without_paper(ink[y0:y1, x0:x1])
    scale = BOX / crop.shape[0]
    width = max(1, round(crop.shape[1] * scale))
    fine = images.normalize_strokes(images.resize(crop, (images.SUPERSAMPLE * BOX, images.SUPERSAMPLE * width)))
    line = np.clip(images.resize(fine, (BOX, width)), 0, 1)
    frames = -(-(width + 2 * MARGIN) // FRAME_COLUMNS)
    top = (HEIGHT - BOX) // 2
    image = np.zeros((HEIGHT, frames * FRAME_COLUMNS + REACH), np.float32)
    image[top:top + BOX, MARGIN:MARGIN + width] = line
    return Line(image, frames, scale, int(x0), int(y0), int(y1))


def without_paper(ink: np.ndarray) -> np.ndarray:
    """Ink [h, w] with the level of its paper taken off, the strongest ink staying 1: a shadow evened out
    leaves the paper a little above 0. The level: the median of the pixels fainter than ink (paper, and the
    fringes of strokes), 0 if there are none."""
    faint = ink[ink < images.INK_THRESHOLD]
    level = float(np.median(faint)) if faint.size else 0.0
    return np.clip((ink - level) / max(1.0 - level, 1e-6), 0.0, 1.0)


def ink_box(ink: np.ndarray, pieces: list | None = None) -> tuple[int, int, int, int]:
    """Rows [y0, y1) and columns [x0, x1) of the line's ink, specks left out (its segment.find_pieces, found
    here unless given): a speck far above the digits would otherwise shrink them; the whole image if it has
    no piece."""
    pieces = segment.find_pieces(ink) if pieces is None else pieces
    if not pieces:
        return 0, ink.shape[0], 0, ink.shape[1]
    return (min(p.y0 for p in pieces), max(p.y1 for p in pieces), min(p.x0 for p in pieces),
            max(p.x1 for p in pieces))


def box_of(symbol: Symbol, line: Line) -> tuple[int, int, int, int]:
    """A symbol's box [x0, y0, x1, y1] in the ink's pixels: its frames' columns, the line's rows."""
    c0, c1 = symbol.columns()
    to_ink = lambda c: line.x0 + (c - MARGIN) / line.scale
    return int(max(line.x0, np.floor(to_ink(c0)))), line.y0, int(np.ceil(to_ink(c1))), line.y1


def read_lines(inks: list[np.ndarray], probabilities, pieces: list | None = None) -> list[tuple[list[Symbol], Line]]:
    """Reads each ink [h, w] as one line with one model call: probabilities takes lines [n, HEIGHT, w]
    (padded with paper on the right to the widest) and gives frames [n, w / FRAME_COLUMNS, classes]. Each
    line's symbols come from its own frames only. pieces: each ink's segment.find_pieces, if already found."""
    prepared = [prepare_line(ink, found) for ink, found in zip(inks, pieces or [None] * len(inks))]
    if not prepared:
        return []
    width = max(line.image.shape[1] for line in prepared)
    batch = np.stack([np.pad(line.image, [(0, 0), (0, width - line.image.shape[1])]) for line in prepared])
    frames = np.asarray(probabilities(batch))
    return [(decode(frames[i, :line.frames]), line) for i, line in enumerate(prepared)]
