"""Reads what people write: an image of one digit or of a number -> the digits read, in reading order, with
one batched model call (the library side of digits.predict and of the server's /api/predict).

digits.reading.segment finds the pieces of ink; each piece too wide for one digit is cut at its candidate cuts, and
neighbouring pieces that nearly touch may be one digit. Every way of grouping those slices into digits is a
path through them; each candidate digit is prepared as MNIST's were (digits.reading.images) and read by the model in
one call, and the path whose digits the model reads most confidently (the least total -log probability) is
the reading: where a cut is ambiguous, the model decides, not the geometry. With a line reader (read_all), a
number whose digits touch is read whole by it, and each digit of a number it reads as the cuts do is read by
both models. A line whose marks are read, on average, unsure is a word, and none of its marks is read as a digit
(refuse_words).
"""
import dataclasses
import math

import numpy as np

from digits.data.line_format import NOT_A_DIGIT
from digits.errors import DigitsError
from digits.reading import images, lines, page, segment

MAX_DIGITS = 12  # on one line
MAX_SIDE = 1024  # a picture is cleaned and segmented at most this many pixels on its long side
MERGE_GAP = 0.08  # of the line's height: pieces closer than this may be one digit (the model decides)
# A piece shorter than SHORT x the line's height (below) may be one digit with its neighbour this far apart (of
# the line's height): a scan's stray fragment 2-4 px beside a digit, which the digit model, trained on MNIST's
# frames that hold such fragments, reads as part of it (docs/experiments/2026-12-07-fragments.md).
FRAGMENT_GAP = 0.2
# A candidate digit shorter than this fraction of the line's height is a fragment (a 5's detached bar, a
# tick of a 4) more often than a digit: reading it alone costs SHORT_COST more (-log probability), so a
# grouping that joins it to its neighbour wins unless the model reads that far worse.
SHORT, SHORT_COST = 0.45, 4.0
MAX_JOINED_WIDTH = 1.4  # of the line's height: the widest candidate made by joining pieces (a 5 with its bar)
# A mark is not read as a digit when the entropy of the model's probabilities (nats) is above this: a model
# trained with --negatives spreads its probability over all ten digits for marks that are not digits
# (digits.training.negatives: the uniform distribution's entropy is ln 10 = 2.30), while a digit it hesitates over
# splits it between two or three (ln 2 = 0.69, ln 3 = 1.10), which the most probable digit's share cannot
# tell apart. docs/experiments/2026-12-02-refusal-rule.md measures it against that share.
REFUSE_ENTROPY = 1.6
REFUSED = '?'  # a refused mark in a reading's text
# Each digit read costs this much more (-log probability), so that splitting one mark into more digits
# must pay for itself: a W is not read as "1?7", while touching digits whose halves read confidently still
# split (docs/experiments/2026-12-02-refusing.md measures it against the alternatives).
DIGIT_COST = 1.0
# The line reader's reading replaces the cuts' only if each of its symbols is at least this probable: a
# letter's strokes that it reads as 1s it reads unsure, where touching digits it reads surely.
LINE_CONFIDENCE = 0.6
# One piece of ink that the digit model reads, whole, as one digit at least this probable stays that digit: a
# wide 0 or 7 alone is not two digits touching (the line reader read 14 of the 10,000 test digits as two, "0"
# as "00"). docs/experiments/2026-12-07-words.md measures it.
ONE_DIGIT_SURE = 0.9
# A line of two marks or more whose marks are read, on average, no surer than an even choice between two
# digits (ln 2 = 0.69 nats of entropy) is a word, not a number: every mark in it is refused. A number's digits
# are read surely, a word's letters as marks or as unsure digits ("Total" as 70?21, at 0.71).
# docs/experiments/2026-12-07-words.md measures it.
WORD_ENTROPY = 0.7
# Where the line reader reads the digits the cuts found, each digit's probabilities are the digit model's times
# the line reader's to this power, renormalised: the two models misread different digits, and the line reader,
# which reads spaced digits less well (92.8% of clean numbers, the cuts 96.8%), gets half the weight.
# docs/experiments/2026-12-07-both-models.md measures it (1: 97.18% of clean numbers read, 0.5: 97.22%,
# with fewer lost).
LINE_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True)
class Reading:
    """One digit read: its box [x0, y0, x1, y1] in the image's pixels, the uint8 [28, 28] image the model
    saw, and the model's probabilities."""
    box: tuple[int, int, int, int]
    image: np.ndarray
    probabilities: np.ndarray
    in_word: bool = False  # its line is read as a word, not a number (refuse_words)

    @property
    def digit(self) -> int | None:
        """The digit read, or None for a mark refused as not a digit (is_refused) or in a word."""
        return None if self.in_word or is_refused(self.probabilities) else int(self.probabilities.argmax())


def is_refused(probabilities: np.ndarray) -> bool:
    """Whether the model's probabilities [classes] say the mark is no digit: their entropy above REFUSE_ENTROPY."""
    return entropy(probabilities) > REFUSE_ENTROPY


def entropy(probabilities: np.ndarray) -> float:
    """The entropy of probabilities [classes], in nats."""
    p = np.asarray(probabilities, np.float64)
    return float(-(p * np.log(np.maximum(p, 1e-12))).sum())


def refuse_words(readings: list[Reading]) -> list[Reading]:
    """readings, every mark refused if they are a word's (reads_as_word)."""
    if not reads_as_word(readings):
        return readings
    return [dataclasses.replace(r, in_word=True) for r in readings]


def reads_as_word(readings: list[Reading]) -> bool:
    """Whether two marks or more are read, on average, no surer than WORD_ENTROPY: a word, not a number."""
    return len(readings) >= 2 and np.mean([entropy(r.probabilities) for r in readings]) > WORD_ENTROPY


def text_of(readings: list[Reading]) -> str:
    """The digits read as a string, REFUSED in place of each mark not read as a digit: '2026', '1?2'."""
    return ''.join(REFUSED if r.digit is None else str(r.digit) for r in readings)


@dataclasses.dataclass(frozen=True, eq=False)
class Slice:
    """The part of piece `piece` between two cuts, the unit a digit is made of: in each row y, its columns
    [start[y], stop[y]) (relative to the piece's x0)."""
    piece: int
    start: np.ndarray  # [the piece's height] int
    stop: np.ndarray
    left: int  # the columns its ink spans, [left, right) (relative to the piece's x0)
    right: int

    def ink(self, piece: segment.Piece) -> np.ndarray:
        """The piece's ink in this slice, over the slice's columns [start.min(), stop.max())."""
        inside = between(self.start, self.stop, piece.width)
        return np.where(inside, piece.ink, 0.0)[:, self.start.min():self.stop.max()]


def between(start: np.ndarray, stop: np.ndarray, width: int) -> np.ndarray:
    """[len(start), width] bool: in each row y, the columns [start[y], stop[y])."""
    columns = np.arange(width)[None, :]
    return (columns >= start[:, None]) & (columns < stop[:, None])


def read(image: np.ndarray, probabilities, name: str, line_probabilities=None) -> list[Reading]:
    """The digits in a decoded image [h, w, c] in [0, 1], left to right. probabilities: uint8 [n, 28, 28]
    -> [n, classes], called once; line_probabilities, the line reader's (see read_all). DigitsError (naming
    `name`) for a blank image or too many digits."""
    [result] = read_all([image], probabilities, [name], line_probabilities)
    if isinstance(result, DigitsError):
        raise result
    return result


def read_all(pages: list[np.ndarray], probabilities, names: list[str], line_probabilities=None) -> list:
    """read() for many images with one model call for all of them: for each image its readings, or the
    DigitsError that says why it cannot be read.

    line_probabilities (optional): the line reader, lines [n, HEIGHT, w] -> frames [n, w / FRAME_COLUMNS, classes + 2]
    (digits.reading.lines), called once for all the images: an image whose digits touch is then read whole
    by it (read_touching_as_lines)."""
    plans = []
    for image, name in zip(pages, names):
        try:
            plans.append(plan_reading(image, name))
        except DigitsError as e:
            plans.append(e)
    batches = [plan.digits for plan in plans if isinstance(plan, Plan)]
    probs = np.asarray(probabilities(np.concatenate(batches))) if batches else None
    results, offset = [], 0
    for plan in plans:
        if isinstance(plan, DigitsError):
            results.append(plan)
            continue
        own, offset = probs[offset:offset + len(plan.digits)], offset + len(plan.digits)
        chosen = best_path(plan.spans, own, plan.num_slices, plan.extra_cost)
        results.append([Reading(box_in_image(plan.crops[k], plan.scale, plan.shape), plan.digits[k], own[k])
                        for k in chosen])
    if line_probabilities is not None:
        read_touching_as_lines(plans, results, line_probabilities)
    return [too_many(refuse_words(result) if isinstance(result, list) else result, name)
            for result, name in zip(results, names)]


def too_many(result, name: str):
    """result, or the DigitsError of a reading of more than MAX_DIGITS digits."""
    if isinstance(result, list) and len(result) > MAX_DIGITS:
        return DigitsError(f'{name}: {len(result)} digits found; digits reads one line of at most {MAX_DIGITS}')
    return result


def read_touching_as_lines(plans: list, results: list, line_probabilities):
    """Replaces, in place, an image's readings by the line reader's reading of its whole ink (one model call
    for all the images) where its digits touch: a piece of ink wider than one digit, or the line reader
    reading more digits than the cuts found, none of them a mark (a letter's strokes read as 1s are not
    digits that touch), or fewer where the cuts refused one (joins_refused); only if it reads a symbol and is
    sure of every one (LINE_CONFIDENCE); and not where the cuts read one piece of ink as one digit surely
    (ONE_DIGIT_SURE). Elsewhere, where it reads the digits the cuts found, each digit is read by both models
    (read_by_both). docs/experiments/2026-12-07-line-reader.md measures this rule against the others."""
    readable = [i for i, plan in enumerate(plans) if isinstance(plan, Plan)]
    read = lines.read_lines([plans[i].ink for i in readable], line_probabilities,
                            [plans[i].pieces for i in readable])
    for i, (symbols, line) in zip(readable, read):
        more = len(symbols) > len(results[i]) and all(s.label != NOT_A_DIGIT for s in symbols)
        sure = bool(symbols) and all(s.probability >= LINE_CONFIDENCE for s in symbols)
        joined = joins_refused(symbols, results[i])
        if (plans[i].touching or more or joined) and sure and not one_sure_digit(plans[i], results[i]):
            results[i] = [line_reading(symbol, line, plans[i]) for symbol in symbols]
        elif read_alike(symbols, results[i]):
            results[i] = [read_by_both(r, s, len(symbols)) for r, s in zip(results[i], symbols)]


def read_alike(symbols: list[lines.Symbol], readings: list[Reading]) -> bool:
    """Whether the line reader reads as many symbols as the cuts found, none of them a mark, in a line the
    cuts do not read as a word (reads_as_word): the two models then read the same digits."""
    return (len(symbols) == len(readings) > 0 and all(s.label != NOT_A_DIGIT for s in symbols)
            and not reads_as_word(readings))


def read_by_both(reading: Reading, symbol: lines.Symbol, count: int) -> Reading:
    """reading, its probabilities multiplied by the line reader's for the same digit (LINE_WEIGHT) and
    renormalised; a mark refused alone (count 1) stays as the digit model read it: the line reader reads a
    lone mark as a digit more often (docs/experiments/2026-12-07-both-models.md)."""
    if count == 1 and reading.digit is None:
        return reading
    both = np.asarray(reading.probabilities, np.float64) * lines.digit_probabilities(symbol) ** LINE_WEIGHT
    return dataclasses.replace(reading, probabilities=(both / max(both.sum(), 1e-300)).astype(np.float32))


def joins_refused(symbols: list[lines.Symbol], readings: list[Reading]) -> bool:
    """Whether the line reader reads fewer symbols than the cuts, none a mark, where the cuts refused one: the
    pieces of one digit the cuts could not join (a 5 and its bar, too wide together), not a mark it reads as
    a digit (that reads as many symbols)."""
    return (len(symbols) < len(readings) and any(r.digit is None for r in readings)
            and all(s.label != NOT_A_DIGIT for s in symbols))


def one_sure_digit(plan: 'Plan', readings: list[Reading]) -> bool:
    """Whether the cuts read the image's one piece of ink as one digit, at least ONE_DIGIT_SURE probable."""
    return len(plan.pieces) == 1 and len(readings) == 1 and float(readings[0].probabilities.max()) >= ONE_DIGIT_SURE


def line_reading(symbol: lines.Symbol, line: lines.Line, plan: 'Plan') -> Reading:
    """A Reading of a symbol the line reader read: its box from its frames, the 28x28 of its ink there, and
    its probabilities over the digits, a mark's share spread evenly over them (a mark reads as refused, as
    the digit model's uniform answer for a mark does)."""
    x0, y0, x1, y1 = lines.box_of(symbol, line)
    piece = segment.Piece(x0, y0, x1, y1, plan.ink[y0:y1, x0:x1])
    return Reading(box_in_image(piece, plan.scale, plan.shape), images.ink_to_mnist(piece.ink),
                   lines.digit_probabilities(symbol))


@dataclasses.dataclass(frozen=True)
class Plan:
    """An image's candidate digits, before the model reads them: spans of slices, their crops and 28x28s."""
    spans: list
    crops: list
    digits: np.ndarray  # uint8 [len(spans), 28, 28]
    extra_cost: np.ndarray  # [len(spans)]: added to each candidate's -log probability (DIGIT_COST, SHORT_COST)
    num_slices: int
    scale: float  # of the segmented ink to the image
    shape: tuple
    ink: np.ndarray  # the segmented ink
    pieces: list  # its segment.find_pieces
    touching: bool  # a piece of its ink is wider than one digit: digits that touch (or a wide mark)


def plan_reading(image: np.ndarray, name: str) -> Plan:
    """Segments an image and prepares every candidate digit; DigitsError for a blank page or too many marks."""
    grey = images.to_grey(image)
    scale = min(1.0, MAX_SIDE / max(grey.shape))
    if scale < 1:  # before the page is cleaned, whose steps count in pixels (a line's gaps, its crossings)
        grey = images.resize(grey, (max(1, round(grey.shape[0] * scale)), max(1, round(grey.shape[1] * scale))))
    try:
        ink = page.ink_of(grey)
    except DigitsError as e:
        raise DigitsError(f'{name}: {e}') from None
    pieces = segment.find_pieces(ink)
    if not pieces:
        raise DigitsError(f'{name}: blank: no ink differs from the paper')
    if len(pieces) > 2 * MAX_DIGITS:
        raise DigitsError(f'{name}: {len(pieces)} separate marks; digits reads one line of at most {MAX_DIGITS} digits')
    line = segment.line_height(pieces)
    slices = slice_pieces(pieces, line)
    spans = candidate_spans(pieces, slices, line)
    crops = [compose(pieces, slices[i:j]) for i, j in spans]
    digits = np.stack([images.ink_to_mnist(crop.ink) for crop in crops])
    extra = np.array([DIGIT_COST + (SHORT_COST if crop.height < SHORT * line else 0.0) for crop in crops])
    touching = any(piece.width > segment.MAX_DIGIT_WIDTH * line for piece in pieces)
    return Plan(spans, crops, digits, extra, len(slices), scale, image.shape, ink, pieces, touching)


def slice_pieces(pieces: list[segment.Piece], line: int) -> list[Slice]:
    """Each piece as one slice, or, if it is too wide for one digit, as the slices between its cuts (each
    cut kept right of the one before it in every row, so that no ink is in two slices)."""
    slices = []
    for p, piece in enumerate(pieces):
        cuts = segment.candidate_cuts(piece, line) if piece.width > segment.MAX_DIGIT_WIDTH * line else []
        edges = np.maximum.accumulate([np.zeros(piece.height, np.int64), *cuts, np.full(piece.height, piece.width)])
        slices += [make_slice(p, piece, a, b) for a, b in zip(edges[:-1], edges[1:])]
    return slices


def make_slice(p: int, piece: segment.Piece, start: np.ndarray, stop: np.ndarray) -> Slice:
    """The slice of piece number p between two cuts, with the columns its ink spans."""
    found = np.flatnonzero((between(start, stop, piece.width) & (piece.ink > segment.INK_THRESHOLD)).any(axis=0))
    left, right = (int(found[0]), int(found[-1]) + 1) if found.size else (int(start.min()), int(stop.max()))
    return Slice(p, start, stop, left, right)


def candidate_spans(pieces: list[segment.Piece], slices: list[Slice], line: int) -> list[tuple[int, int]]:
    """(i, j): slices[i:j] may be one digit: within one piece, no wider than a digit (or the whole piece);
    across pieces, whole pieces that nearly touch (nearly_touch), no wider than a digit together."""
    spans, widest = [], segment.MAX_DIGIT_WIDTH * line
    for i in range(len(slices)):
        for j in range(i + 1, len(slices) + 1):
            first, last = slices[i], slices[j - 1]
            x0, x1 = pieces[first.piece].x0 + first.left, pieces[last.piece].x0 + last.right
            whole = first.start.max() == 0 and last.stop.min() == pieces[last.piece].width
            if first.piece == last.piece:
                if j == i + 1 or x1 - x0 <= widest or whole:
                    spans.append((i, j))
                continue
            if x1 - x0 > MAX_JOINED_WIDTH * line:
                break
            close = all(nearly_touch(pieces[p], pieces[p + 1], line) for p in range(first.piece, last.piece))
            if whole and close:
                spans.append((i, j))
    return spans


def nearly_touch(left: segment.Piece, right: segment.Piece, line: int) -> bool:
    """Whether two neighbouring pieces are close enough to be one digit: MERGE_GAP of the line's height apart,
    FRAGMENT_GAP if one of them is a fragment (shorter than SHORT)."""
    fragment = min(left.height, right.height) < SHORT * line
    return right.x0 - left.x1 < (FRAGMENT_GAP if fragment else MERGE_GAP) * line


def compose(pieces: list[segment.Piece], parts: list[Slice]) -> segment.Piece:
    """The ink of consecutive slices on one canvas: a candidate digit, cropped to its ink."""
    boxes = [(pieces[s.piece].x0 + s.start.min(), pieces[s.piece].y0, pieces[s.piece].x0 + s.stop.max(),
              pieces[s.piece].y1) for s in parts]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    canvas = np.zeros((y1 - y0, x1 - x0), np.float32)
    for s, (bx0, by0, bx1, by1) in zip(parts, boxes):
        region = canvas[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0]
        np.maximum(region, s.ink(pieces[s.piece]), out=region)
    inked = np.flatnonzero((canvas > segment.INK_THRESHOLD).any(axis=0))
    left, right = (inked[0], inked[-1] + 1) if inked.size else (0, x1 - x0)
    return segment.Piece(x0, y0, x1, y1, canvas).columns(int(left), int(right))


def best_path(spans: list[tuple[int, int]], probs: np.ndarray, num_slices: int, extra: np.ndarray) -> list[int]:
    """Indices into spans of the grouping of all slices into digits with the least total cost: each digit's
    -log probability of its most probable class, plus its extra cost."""
    cost = [math.inf] * (num_slices + 1)
    back = [None] * (num_slices + 1)
    cost[0] = 0.0
    for k, (i, j) in sorted(enumerate(spans), key=lambda item: item[1]):
        step = cost[i] - math.log(max(float(probs[k].max()), 1e-12)) + extra[k]
        if step < cost[j]:
            cost[j], back[j] = step, k
    path, j = [], num_slices
    while j:
        path.append(back[j])
        j = spans[back[j]][0]
    return path[::-1]


def box_in_image(piece: segment.Piece, scale: float, shape) -> tuple[int, int, int, int]:
    """A piece's box in the original image's pixels (the ink was segmented at `scale`)."""
    h, w = shape[:2]
    return (min(w, math.floor(piece.x0 / scale)), min(h, math.floor(piece.y0 / scale)),
            min(w, math.ceil(piece.x1 / scale)), min(h, math.ceil(piece.y1 / scale)))
