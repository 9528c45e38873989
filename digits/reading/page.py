"""The page cleaned before it is read: its light evened out, and the lines printed on it (ruled and squared
paper, margins, a form's boxes) taken away, keeping the ink of a digit where its stroke crosses a line.

What makes a printed line: long, straight and thin, far longer than any stroke of a digit. A ruled or squared
page's lines run from edge to edge of the picture, and its vertical lines cross every rule; a form's boxes
are closed by horizontal lines that reach far past one digit, and their sides join those lines at both
ends. A digit's strokes do neither: a 7's bar ends where the 7 does, and a 1 in a box does not reach its
top and bottom lines. A page photographed askew is turned level before its lines are looked for.
"""
import numpy as np

from digits.errors import DigitsError

LIGHT_CELLS = 24  # the paper's light is estimated on a grid of this many cells along the long side
UNEVEN = 0.12  # the paper's brightness varying more than this (of white) is evened out, else left as it is
LINE_SPAN = 0.6  # a horizontal run of ink this fraction of the picture's width long is a printed line
EDGE_SPAN = 0.9  # a vertical run this fraction of the picture's height long runs edge to edge (a grid line)
MAX_LINE_THICKNESS = 0.04  # of the picture's short side (at least 3 pixels): a thicker band is not a line
CROSSING = 2  # pixels of ink just above and below a line (left and right of a vertical one) that cross it
BEYOND = 0.02  # of its length (2 pixels at least): how far a line reaches past the rest of the ink each side
# A vertical run across two horizontal lines this many times as long as the rows between them is a margin: a
# digit written across two rules reaches a little past them (a box's side not at all).
MARGIN_REACH = 1.8
# A form's comb field narrower than the picture (its lines shorter than LINE_SPAN of it) is found by its boxes'
# sides, this many times as long as a line may be thick: in a picture of a digit 28 pixels tall, strokes 3
# pixels thick are as thin as lines, and a digit's strokes would otherwise make boxes.
COMB_SIDE = 6
# A faint line photographed breaks into dashes where it falls between rows of pixels: gaps this long (pixels)
# are bridged when runs of ink are measured.
LINE_GAP = 3
# Before a page is turned level, its dashes are longer: a faint rule a degree askew fades every 50 pixels or so
# where it passes from one row of pixels to the next, for up to this many pixels. The strokes of a number in
# one row lie further apart (30 px and more on the page's pad).
DASH_GAP = 12
# Printed lines are often fainter than the writing (light blue rules): a pixel this much darker than the
# paper may belong to one; a stroke crossing a line is ink at half the strongest ink's strength or more.
LINE_INK, STROKE_INK = 0.08, 0.5
# A page photographed a little askew has its lines askew: slopes up to 5 degrees either way are tried, in
# half-degree steps and then in twentieths within half a degree of the best (of all the best, if several
# tie), and the page is turned level before its lines are looked for.
COARSE_DEGREES, FINE_SPAN, FINE_STEP = np.arange(-5.0, 5.01, 0.5), 0.5, 0.05
COARSE_WIDTH = 256  # the coarse search's mask is reduced to about this many columns (at most 4x)


def ink_of(grey: np.ndarray) -> np.ndarray:
    """[h, w] grey in [0, 1] -> [h, w] ink in [0, 1], the paper at 0 and the strongest ink at 1, with the
    light evened out and printed lines removed; DigitsError for a page with no ink but its lines."""
    ink = remove_lines(paper_relative(grey))
    strength = ink.max()
    if strength < 0.1:
        raise DigitsError('blank: no ink differs from the paper')
    return np.clip(ink / strength, 0.0, 1.0)


def paper_relative(grey: np.ndarray) -> np.ndarray:
    """How much darker (or, on dark paper, lighter) each pixel is than the paper around it, in [0, 1].

    The paper is the picture's border where its light is even (its median); where a shadow or a lamp makes
    it uneven, the paper's brightness near each pixel: the brightest cells of a coarse grid, spread."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    if paper <= 0.5:  # light ink on dark paper (a blackboard, an inverted scan): no shadows to even
        return np.clip(grey - paper, 0.0, 1.0)
    light, cell = paper_light(grey)
    if light_range(light, cell, grey.shape) <= UNEVEN:
        return np.clip(paper - grey, 0.0, 1.0)
    local = spread(light, cell, grey.shape)
    return np.clip((local - grey) / np.maximum(local, 0.05), 0.0, 1.0)


def paper_light(grey: np.ndarray) -> tuple[np.ndarray, int]:
    """The paper's brightness on a coarse grid of cells, and the cells' width in pixels: each cell's
    brightest pixels (the paper between strokes), the brightest of each cell's neighbours (a cell inside a
    thick stroke takes the paper beside it), smoothed; spread() takes it back to the pixels."""
    h, w = grey.shape
    cell = max(2, max(h, w) // LIGHT_CELLS)
    rows, cols = -(-h // cell), -(-w // cell)
    padded = np.pad(grey, [(0, rows * cell - h), (0, cols * cell - w)], mode='edge')
    blocks = padded.reshape(rows, cell, cols, cell).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    light = np.percentile(blocks, 90, axis=-1)
    light = neighbourhood(light, np.maximum)
    return (neighbourhood(light, np.add) + light) / 10, cell  # a 3x3 mean


def light_range(grid: np.ndarray, cell: int, shape) -> float:
    """max - min of spread(grid, cell, shape), from the few pixels where it can be extreme (it is linear
    between the cells' centres): most pages are evenly lit, and the whole map of their light is not needed.
    Spreading it to every pixel is a matrix product that, on a busy machine, waits for BLAS's threads."""
    rows, cols = extreme_pixels(grid.shape[0], cell, shape[0]), extreme_pixels(grid.shape[1], cell, shape[1])
    light = interpolation(grid.shape[0], cell, rows) @ grid @ interpolation(grid.shape[1], cell, cols).T
    return float(light.max() - light.min())


def extreme_pixels(cells: int, cell: int, n: int) -> np.ndarray:
    """Of the pixels 0..n-1: the two ends, and those either side of each of `cells` centres `cell` apart."""
    centres = (np.arange(cells) + 0.5) * cell - 0.5
    ends = np.concatenate([np.floor(centres), np.ceil(centres), [0, n - 1]])
    return np.unique(np.clip(ends, 0, n - 1)).astype(int)


def spread(grid: np.ndarray, cell: int, shape) -> np.ndarray:
    """A grid of cells `cell` pixels wide, interpolated linearly between the cells' centres to [h, w], and
    beyond the outer centres along the slope there (a shadow keeps darkening to the picture's edge)."""
    rows, cols = np.arange(shape[0]), np.arange(shape[1])
    return interpolation(grid.shape[0], cell, rows) @ grid @ interpolation(grid.shape[1], cell, cols).T


def interpolation(cells: int, cell: int, pixels: np.ndarray) -> np.ndarray:
    """[len(pixels), cells]: the weights that interpolate values at the centres of `cells` cells `cell`
    pixels wide at the given pixels, linearly, and past the first and last centre along the slope there."""
    position = (pixels + 0.5) / cell - 0.5  # in cells, 0 at the first centre
    if cells == 1:
        return np.ones((len(pixels), 1))
    left = np.clip(np.floor(position), 0, cells - 2).astype(int)
    frac = position - left  # below 0 or above 1 past the outer centres: extrapolated
    weights = np.zeros((len(pixels), cells))
    weights[np.arange(len(pixels)), left] = 1 - frac
    weights[np.arange(len(pixels)), left + 1] = frac
    return weights


def neighbourhood(grid: np.ndarray, combine) -> np.ndarray:
    """Each cell combined with its 8 neighbours (edges repeated): np.maximum, or np.add for their sum."""
    padded = np.pad(grid, 1, mode='edge')
    out = grid.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                out = combine(out, padded[1 + dy:1 + dy + grid.shape[0], 1 + dx:1 + dx + grid.shape[1]])
    return out


def remove_lines(ink: np.ndarray) -> np.ndarray:
    """ink with its printed lines taken away, on a page turned level first if its lines are askew."""
    mask = ink > LINE_INK
    slope = line_slope(mask)
    if not slope:
        return remove_level_lines(ink)
    pad = int(np.ceil(abs(slope) * (ink.shape[0] + ink.shape[1]) / 2)) + 2
    turn = rotation((ink.shape[0] + 2 * pad, ink.shape[1] + 2 * pad), -slope)
    area = turn(np.pad(np.ones_like(ink), pad)) > 0.5  # where the picture is, turned level
    # The mask is turned, not thresholded after turning: a faint line one pixel thick, turned, spreads over
    # two rows at half its strength, which would break it into pieces too short for a line.
    level, level_mask = turn(np.pad(ink, pad)), turn(np.pad(mask, pad).astype(np.float64)) > 0.25
    removed = level_mask & (remove_level_lines(level, area, level_mask) == 0)
    gone = rotation(removed.shape, slope)(removed.astype(np.float64))[pad:-pad, pad:-pad] > 0.05  # and the fringe
    return np.where(gone, 0.0, ink)


def line_slope(mask: np.ndarray) -> float:
    """The slope (rows per column) of the page's horizontal lines, 0 if they are level (a row holds a run of
    ink across the picture) or there are none: the slope along which the sheared mask's ink gathers most
    into a few rows (the sum of its rows' squared counts), if a thin band of its rows then holds a run of
    ink long enough for a line."""
    span = LINE_SPAN * ink_width(mask)  # a form's page round it is no line
    full = mask.sum(axis=1) >= EDGE_SPAN * mask.shape[1]  # the run needs that much ink in its row
    if full.any() and longest_runs(mask[full]).max() >= EDGE_SPAN * mask.shape[1]:
        return 0.0  # a run that long is a level line: one askew, or a thick one, does not keep to one row
    # The coarse search on a mask reduced to about COARSE_WIDTH columns (up to 16x cheaper; most pages have no
    # line and stop there); a narrow picture's short lines would not survive reducing.
    small = reduced(mask, int(np.clip(mask.shape[1] // COARSE_WIDTH, 1, 4)))
    coarse_rows = sheared_rows(small)
    scores = np.array([np.square(coarse_rows(degrees)).sum() for degrees in COARSE_DEGREES])
    tied = COARSE_DEGREES[scores == scores.max()]  # a reduced mask may hold slopes a degree apart alike
    if not holds_line(coarse_rows(tied[np.abs(tied).argmin()]), span / (mask.shape[1] / small.shape[1]), small.shape):
        return 0.0
    fine_rows, fine_runs = sheared_rows(mask), sheared_runs(mask)
    fine = np.round(np.arange(tied.min() - FINE_SPAN, tied.max() + FINE_SPAN + 1e-9, FINE_STEP), 2)  # 0.0, not 1e-16
    best = max(sorted(fine, key=abs), key=lambda degrees: np.square(fine_rows(degrees)).sum())  # ties: the least
    band = thin_bands(fine_rows(best) >= span, thickness_limit(mask.shape))
    return float(np.tan(np.radians(best))) if band.any() and fine_runs(best, band) >= span else 0.0


def holds_line(counts: np.ndarray, span: float, shape) -> bool:
    """Whether rows holding these counts of ink [h] may hold a printed line: a band of rows each with `span`
    or more, no thicker than a line (a number written fast with a thick pen fills a thick band)."""
    return bool(thin_bands(counts >= span, thickness_limit(shape)).any())


def reduced(mask: np.ndarray, factor: int) -> np.ndarray:
    """mask with each factor x factor block one pixel, set where any of the block is."""
    h, w = (mask.shape[0] // factor) * factor, (mask.shape[1] // factor) * factor
    return mask[:h, :w].reshape(h // factor, factor, w // factor, factor).any(axis=(1, 3))


def sheared_rows(mask: np.ndarray):
    """rows(degrees) -> [h] float: the ink in each row of mask [h, w] with each column shifted by the angle's
    slope x (its distance from the middle column), so that lines of that slope lie along rows (what is
    shifted out of the picture is dropped); counted from the ink's coordinates, found once."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)

    def rows(degrees: float) -> np.ndarray:
        y = ys - np.round(np.tan(np.radians(degrees)) * (xs - w / 2)).astype(int)
        return np.bincount(y[(y >= 0) & (y < h)], minlength=h).astype(np.float64)
    return rows


def sheared_runs(mask: np.ndarray):
    """runs(degrees, rows) -> int: the longest run of ink (gaps of DASH_GAP bridged) along the rows [h] bool
    of mask [h, w] sheared as sheared_rows shears it, their ink taken together: a printed line's is long, the
    strokes of a number written fast in the same rows are not."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)

    def runs(degrees: float, rows: np.ndarray) -> int:
        y = ys - np.round(np.tan(np.radians(degrees)) * (xs - w / 2)).astype(int)
        inside = (y >= 0) & (y < h)
        columns = np.zeros((1, w), bool)
        columns[0, xs[inside][rows[y[inside]]]] = True
        return int(longest_runs(bridged(columns, DASH_GAP))[0])
    return runs


def rotation(shape, slope: float):
    """turn(image) -> image [h, w] (of this shape) turned about its centre by the angle whose tangent is slope
    (bilinear; outside: 0); where each pixel comes from is worked out once for every image turned."""
    h, w = shape
    angle = np.arctan(slope)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    y, x = y - (h - 1) / 2, x - (w - 1) / 2
    sy = np.cos(angle) * y - np.sin(angle) * x + (h - 1) / 2  # where each pixel comes from
    sx = np.sin(angle) * y + np.cos(angle) * x + (w - 1) / 2
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    rows = [np.clip(y0 + dy + 1, 0, h + 1) for dy in (0, 1)]
    columns = [np.clip(x0 + dx + 1, 0, w + 1) for dx in (0, 1)]

    def turn(image: np.ndarray) -> np.ndarray:
        padded = np.pad(image, 1)
        pick = lambda dy, dx: padded[rows[dy], columns[dx]]
        return ((1 - fy) * ((1 - fx) * pick(0, 0) + fx * pick(0, 1))
                + fy * ((1 - fx) * pick(1, 0) + fx * pick(1, 1)))
    return turn


def remove_level_lines(ink: np.ndarray, area: np.ndarray | None = None, mask: np.ndarray | None = None) -> np.ndarray:
    """ink with its level printed lines taken away, horizontal ones first (a box's sides are found by the
    horizontal lines they join), keeping the ink where a stroke crosses a line. area: where the picture is
    (a page turned level has empty corners), by default everywhere; mask: where lines may be, by default
    where ink is darker than paper by LINE_INK."""
    mask = ink > LINE_INK if mask is None else mask
    area = np.ones_like(mask) if area is None else area
    rows = line_rows(mask, area.sum(axis=1)) | comb_rows(mask)
    rows = printed_rows(mask, rows, line_columns(mask, rows, area.sum(axis=0)))
    columns = line_columns(mask, rows, area.sum(axis=0))
    lines = np.zeros_like(mask)
    lines[rows] = mask[rows]
    lines[:, columns] |= mask[:, columns]
    strokes = ink > STROKE_INK * ink.max()
    return np.where(lines & ~crossings(strokes, rows, columns), 0.0, ink)


def thickness_limit(shape) -> int:
    return max(3, round(MAX_LINE_THICKNESS * min(shape)))


def longest_runs(mask: np.ndarray) -> np.ndarray:
    """The longest run of True in each row of mask [h, w]: [h]."""
    index = np.arange(mask.shape[1])
    last_gap = np.maximum.accumulate(np.where(mask, -1, index), axis=1)  # the last False at or before each pixel
    return (index - last_gap).max(axis=1)


def bridged(mask: np.ndarray, gap: int = LINE_GAP) -> np.ndarray:
    """mask [h, w] with each row's gaps of up to `gap` pixels between ink filled."""
    left, right = np.zeros_like(mask), np.zeros_like(mask)
    for k in range(1, gap + 1):
        left[:, k:] |= mask[:, :-k]
        right[:, :-k] |= mask[:, k:]
    return mask | (left & right)


def thin_bands(candidates: np.ndarray, limit: int) -> np.ndarray:
    """candidates [n] bool, with every run of consecutive True longer than limit set False (a band that
    thick is ink, not a printed line)."""
    keep = candidates.copy()
    edges = np.diff(np.pad(candidates, 1).astype(np.int8))
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if stop - start > limit:
            keep[start:stop] = False
    return keep


def line_rows(mask: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """[h] bool: the rows of printed horizontal lines (a run of ink LINE_SPAN of the picture's width in that
    row long, gaps of LINE_GAP bridged, in a band no thicker than a line)."""
    span = LINE_SPAN * np.maximum(widths, 1)
    long = mask.sum(axis=1) >= span  # a run that long needs that much ink in its row: most rows stop here
    long[long] = longest_runs(bridged(mask[long])) >= span[long]
    return thin_bands(long, thickness_limit(mask.shape))


def comb_rows(mask: np.ndarray) -> np.ndarray:
    """[h] bool: the top and bottom lines of a form's comb field narrower than the picture (a form photographed
    with the page round it): lines LINE_SPAN of the ink's width long, joined by three box sides or more
    (box_sides), as thin as lines and COMB_SIDE times as long as a line may be thick."""
    bands = bands_of(line_rows(mask, np.full(mask.shape[0], ink_width(mask))))
    combs, limit = np.zeros(mask.shape[0], bool), thickness_limit(mask.shape)
    for top, bottom in zip(bands, bands[1:]):
        sides = bands_of(thin_bands(box_sides(mask, top, bottom), limit))
        if len(sides) >= 3 and bottom[0] - top[-1] >= COMB_SIDE * limit:
            combs[top] = combs[bottom] = True
    return combs


def ink_width(mask: np.ndarray) -> int:
    """The columns from the first with ink to the last (the picture's width if it has none)."""
    inked = np.flatnonzero(mask.any(axis=0))
    return int(inked[-1] - inked[0] + 1) if len(inked) else mask.shape[1]


def printed_rows(mask: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The rows of line_rows that are printed lines, not a digit's long stroke (a 7's bar in a picture cropped
    tight round it): lines come at least two together (the rules of a page, a box's top and bottom), and
    each reaches past the rest of the ink, lines aside, on both sides (through a page's margins), where a
    digit's bar ends at its other strokes; or they are the top and bottom of a form's comb field, two boxes or
    more whose sides (box_sides) are as thin as lines, though a digit is written right up to its outer sides
    (a digit cropped tight has two sides at most, and thick ones)."""
    bands = bands_of(rows)
    if len(bands) < 2:
        return np.zeros_like(rows)
    other, fringe = mask.copy(), CROSSING  # a line's blurred edge is the line's, not other ink
    for band in bands:
        other[max(0, band[0] - fringe):band[-1] + fringe + 1] = False
    for band in bands_of(columns):
        other[:, max(0, band[0] - fringe):band[-1] + fringe + 1] = False
    inked = np.flatnonzero(other.any(axis=0))
    printed = np.zeros_like(rows)
    for band in bands:
        xs = np.flatnonzero(mask[band].any(axis=0))
        reach = max(2, BEYOND * (xs[-1] - xs[0]))
        if not len(inked) or (xs[0] <= inked[0] - reach and xs[-1] >= inked[-1] + reach):
            printed[band] = True
    limit = thickness_limit(mask.shape)
    for top, bottom in zip(bands, bands[1:]):  # a comb field, whatever is written up to its outer sides
        if len(bands_of(thin_bands(box_sides(mask, top, bottom), limit))) >= 3:
            printed[top] = printed[bottom] = True
    return printed if len(bands_of(printed)) >= 2 else np.zeros_like(rows)


def line_columns(mask: np.ndarray, rows: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """[w] bool: the columns of printed vertical lines, on a page with horizontal ones (two at least): a run
    of ink from edge to edge of the picture; or across every horizontal line from the first to the last
    where there are three or more (squared paper, a margin: a digit is not that tall), or across two and
    far beyond them (a margin on a page photographed askew, whose turned corners it does not reach); or a
    box's side (box_sides). A picture of a 1 cropped tight has no horizontal lines, and so no vertical ones."""
    bands = bands_of(rows)
    if len(bands) < 2:
        return np.zeros(mask.shape[1], bool)
    runs = longest_runs(bridged(mask.T))
    columns = runs >= EDGE_SPAN * np.maximum(heights, 1)
    across = mask[bands[0][0]:bands[-1][-1] + 1].all(axis=0)
    columns |= across & ((len(bands) >= 3) | (runs >= MARGIN_REACH * (bands[-1][-1] - bands[0][0])))
    for top, bottom in zip(bands, bands[1:]):
        columns |= box_sides(mask, top, bottom)
    return thin_bands(columns, thickness_limit(mask.shape))


def box_sides(mask: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """[w] bool: the columns whose ink joins two horizontal lines (the rows `top` and `bottom`), when such
    columns close both ends of the lines, as a form's boxes are closed; none otherwise (a 1 on ruled paper
    that touches the line above and the one below closes nothing: the lines run on past it)."""
    joined = mask[top[-1]:bottom[0] + 1].all(axis=0)
    both = np.flatnonzero(mask[top].any(axis=0) & mask[bottom].any(axis=0))
    if not joined.any() or not len(both):
        return np.zeros_like(joined)
    near = thickness_limit(mask.shape)
    sides = np.flatnonzero(joined)
    closed = abs(sides[0] - both[0]) <= near and abs(sides[-1] - both[-1]) <= near and len(sides) > 1
    return joined if closed else np.zeros_like(joined)


def crossings(mask: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """[h, w] bool: the pixels of the lines where a stroke crosses them: ink within CROSSING pixels on both
    sides of the line's band, off the line."""
    keep = np.zeros_like(mask)
    for band in bands_of(rows):
        above, below = band[0] - 1, band[-1] + 1
        if above < 0 or below >= mask.shape[0]:
            continue
        on_both = (mask[max(0, above - CROSSING + 1):above + 1].any(axis=0)
                   & mask[below:below + CROSSING].any(axis=0) & ~columns)
        keep[band[0]:band[-1] + 1] |= on_both[None, :]
    for band in bands_of(columns):
        left, right = band[0] - 1, band[-1] + 1
        if left < 0 or right >= mask.shape[1]:
            continue
        on_both = (mask[:, max(0, left - CROSSING + 1):left + 1].any(axis=1)
                   & mask[:, right:right + CROSSING].any(axis=1) & ~rows)
        keep[:, band[0]:band[-1] + 1] |= on_both[:, None]
    return keep


def bands_of(flags: np.ndarray) -> list[np.ndarray]:
    """The runs of consecutive True indices in flags [n]."""
    indices = np.flatnonzero(flags)
    return [b for b in np.split(indices, np.flatnonzero(np.diff(indices) > 1) + 1) if len(b)]
