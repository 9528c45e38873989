"""Handwriting made on purpose, to measure and test the reader: MNIST digits redrawn as a user's image
(on a page, photographed as JPEG, with other pens, scanned at low resolution, out of focus) and digits
written as pen strokes on the page's pad.

Shared by scripts/read_on_paper.py, scripts/load_test.py and the tests, so that what a benchmark measures is
what a test checks.
"""
import io
import math

import numpy as np

from digits.reading import reader, segment
from digits.reading.drawing import PAD, STROKES, arc, ink_on_paper, render_strokes

PEN_WIDTHS = (2, 3, 4, 6, 8, 12, 16, 20, 24, 28)
SQUEEZE = 0.7  # pen-written numbers' digits: this fraction of the strokes' width (people write digits narrow)


# Marks that are not digits, as pen strokes on the pad (held out of digits.training.negatives' training marks, to
# measure refusal on): letters that look like no digit, signs and doodles.
MARKS = {
    'A': [[(80, 235), (140, 45), (200, 235)], [(105, 160), (175, 160)]],
    'E': [[(190, 50), (95, 50), (95, 230), (190, 230)], [(95, 140), (170, 140)]],
    'F': [[(190, 50), (95, 50), (95, 235)], [(95, 140), (170, 140)]],
    'H': [[(90, 50), (90, 230)], [(190, 50), (190, 230)], [(90, 140), (190, 140)]],
    'K': [[(95, 45), (95, 235)], [(190, 50), (95, 150), (195, 235)]],
    'M': [[(70, 235), (85, 50), (140, 170), (195, 50), (210, 235)]],
    'N': [[(90, 235), (90, 50), (190, 235), (190, 50)]],
    'R': [[(95, 235), (95, 50), (150, 50)] + arc(150, 95, 45, 45, -90, 90) + [(150, 140), (95, 140), (195, 235)]],
    'W': [[(60, 50), (100, 230), (140, 110), (180, 230), (220, 50)]],
    'X': [[(85, 55), (195, 230)], [(195, 55), (85, 230)]],
    'Y': [[(85, 50), (140, 140), (195, 50)], [(140, 140), (140, 235)]],
    'plus': [[(140, 60), (140, 220)], [(60, 140), (220, 140)]],
    'equals': [[(70, 110), (210, 110)], [(70, 170), (210, 170)]],
    'hash': [[(70, 105), (215, 105)], [(65, 175), (210, 175)], [(125, 50), (105, 230)], [(180, 50), (160, 230)]],
    'star': [[(140, 50), (140, 230)], [(62, 95), (218, 185)], [(62, 185), (218, 95)]],
    'percent': [[(200, 60), (80, 220)], arc(100, 90, 28, 28, 0, 360), arc(180, 190, 28, 28, 0, 360)],
    'question': [arc(140, 95, 50, 45, 180, 400) + [(140, 150), (140, 185)], arc(140, 222, 6, 6, 0, 360)],
    'less': [[(200, 60), (80, 140), (200, 220)]],
    'greater': [[(80, 60), (200, 140), (80, 220)]],
    'smiley': [arc(140, 140, 90, 90, 0, 360), arc(110, 110, 8, 8, 0, 360), arc(170, 110, 8, 8, 0, 360),
               arc(140, 150, 45, 35, 20, 160)],
    'five-point star': [[(140, 45), (195, 225), (50, 110), (230, 110), (85, 225), (140, 45)]],
    'heart': [arc(105, 100, 38, 38, 150, 360) + arc(175, 100, 38, 38, 180, 390) + [(140, 230), (72, 118)]],
    'arrow': [[(60, 140), (220, 140)], [(170, 90), (220, 140), (170, 190)]],
    'check': [[(70, 140), (120, 210), (220, 60)]],
    'triangle': [[(140, 50), (220, 220), (60, 220), (140, 50)]],
    'wave': [[(40 + 10 * i, 140 + 45 * math.sin(i / 3)) for i in range(21)]],
}


def render_on_paper(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 MNIST digit as a user might scan it: dark ink on a white 200x200 RGB page [200, 200, 3]
    uint8, enlarged to 60-140 pixels and placed off-centre."""
    import tensorflow as tf
    size = int(rng.integers(60, 141))
    big = tf.image.resize(digit[..., None].astype(np.float32), (size, size), method='bilinear').numpy()[..., 0]
    page = np.full((200, 200), 255.0, np.float32)
    top, left = rng.integers(0, 200 - size + 1, size=2)
    page[top:top + size, left:left + size] -= np.clip(big, 0, 255)
    return np.repeat(np.clip(page, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def as_jpeg_file(page: np.ndarray) -> np.ndarray:
    """page encoded as a JPEG file and decoded again, float32 [h, w, c] in [0, 1] (what predict reads)."""
    import tensorflow as tf
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, format='JPEG', quality=90)
    return tf.io.decode_image(buffer.getvalue()).numpy().astype(np.float32) / 255.0


def scanned_at(side: int):
    """The page as a low-resolution scan: the 200x200 page shrunk to side x side (area-averaged)."""
    def scan(page: np.ndarray) -> np.ndarray:
        from PIL import Image
        return np.asarray(Image.fromarray(page).resize((side, side), Image.BOX), np.float32) / 255.0
    return scan


def blurred(radius: float):
    """The page out of focus: a Gaussian blur of the given radius, in pixels of the 200x200 page."""
    def blur(page: np.ndarray) -> np.ndarray:
        from PIL import Image, ImageFilter
        return np.asarray(Image.fromarray(page).filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255.0
    return blur


def redrawn_with_pen(size: int, thicker: bool):
    """The page's ink as a thinner or thicker pen draws it: eroded or dilated by a size x size square (on
    the 200x200 page the digits' strokes are 4-12 pixels wide)."""
    def redraw(page: np.ndarray) -> np.ndarray:
        # Dark ink on white: a minimum grows the ink, a maximum shrinks it. Separable: rows, then columns.
        combine, half = (np.minimum if thicker else np.maximum), size // 2
        out = page.astype(np.float32)
        for axis in (0, 1):
            padded = np.pad(out, [(half, half) if a == axis else (0, 0) for a in range(out.ndim)], mode='edge')
            windows = [np.take(padded, np.arange(k, k + out.shape[axis]), axis=axis) for k in range(size)]
            out = combine.reduce(windows)
        return out / 255.0
    return redraw


# Harder copies of the paper page: other pens, low-resolution scans and blur.
DEGRADED = {'thinner pen (-2 px)': redrawn_with_pen(3, thicker=False),
            'marker (+6 px)': redrawn_with_pen(7, thicker=True),
            'scanned at 64x64': scanned_at(64), 'scanned at 40x40': scanned_at(40),
            'blurred, radius 2': blurred(2), 'blurred, radius 4': blurred(4)}


def read_pen(module, width: int) -> int:
    """How many of the digits 0-9, written with a pen `width` pixels wide, are read right (as one digit, by
    digits.reading.reader, as digits.predict and the page read them)."""
    texts = read_texts(module, [render_strokes(STROKES[k], width) for k in range(10)])
    return sum(text == str(k) for k, text in enumerate(texts))


def read_texts(module, pages: list[np.ndarray], line_module=None) -> list[str]:
    """What digits.reading.reader reads in each decoded image [h, w, c] in [0, 1] with an export (one model call for
    all; with a line reader's export, touching digits read by it): its digits as text ('?' for a refused mark),
    '' for a page it cannot read."""
    lines = line_module and (lambda batch: line_module.serve(batch)['probabilities'].numpy())
    results = reader.read_all(pages, lambda batch: module.serve(batch)['probabilities'].numpy(),
                              [f'page {i}' for i in range(len(pages))], lines)
    return ['' if isinstance(r, Exception) else reader.text_of(r) for r in results]


def png_digits(images: np.ndarray) -> list[bytes]:
    """28x28 white-on-black digits as PNG files of dark ink on white paper, 4x enlarged."""
    from PIL import Image
    files = []
    for digit in images:
        buffer = io.BytesIO()
        Image.fromarray(255 - digit).resize((112, 112), Image.BILINEAR).save(buffer, format='PNG')
        files.append(buffer.getvalue())
    return files


def spaced_number(digits: np.ndarray, gaps) -> np.ndarray:
    """28x28 MNIST-style digits [n, 28, 28] side by side, gaps[i] pixels of paper after digit i, on a page."""
    return ink_on_paper(np.concatenate([np.pad(d, [(0, 0), (0, g)]) for d, g in zip(digits, gaps)], axis=1))


def pen_number(digits, width: int, squeeze: float = SQUEEZE) -> np.ndarray:
    """A number written with a pen `width` pixels wide on a PAD-tall pad, each digit's strokes squeezed
    into a column `squeeze` x PAD wide, as the page's pad holds it: [PAD, n x column, 1] in [0, 1]."""
    column = round(squeeze * PAD)
    left = (PAD - column) // 2
    return np.concatenate([pen_digit(d, width, squeeze)[:, left:left + column] for d in digits], axis=1)


def pen_digit(digit: int, width: int, squeeze: float = SQUEEZE) -> np.ndarray:
    """Digit `digit`'s strokes squeezed to `squeeze` of their width, drawn with a pen: [PAD, PAD, 1]."""
    return render_strokes(squeezed_strokes(digit, squeeze), width)


def squeezed_strokes(digit: int, squeeze: float = SQUEEZE) -> list:
    """STROKES[digit] squeezed to `squeeze` of their width about the pad's middle."""
    return [[(PAD / 2 + (x - PAD / 2) * squeeze, y) for x, y in stroke] for stroke in STROKES[digit]]


def touching_pen_number(digits, width: int, squeeze: float = SQUEEZE, margin: int = 20) -> np.ndarray:
    """pen_number's digits written fast: each cropped to its ink and pushed against the digits before it
    until their ink touches (or they overlap by half its width): [PAD, w, 1] in [0, 1]."""
    page, _ = written_touching(digits, width, squeeze)
    return np.pad(page, [(0, 0), (margin, margin), (0, 0)], constant_values=1.0)


def written_touching(digits, width: int, squeeze: float = SQUEEZE) -> tuple[np.ndarray, list[int]]:
    """touching_pen_number's page without its margin, and where each digit's pen_digit square begins on it
    (its x = 0; negative where the digit was pushed into the square before it)."""
    page, lefts = None, []
    for digit in digits:
        ink = pen_digit(digit, width, squeeze)
        columns = np.flatnonzero((ink[..., 0] < 1 - segment.INK_THRESHOLD).any(axis=0))
        part = ink[:, columns[0]:columns[-1] + 1]
        page = part if page is None else pushed_against(page, part)
        lefts.append(page.shape[1] - part.shape[1] - int(columns[0]))
    return page, lefts


def pushed_against(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two pages of dark ink [PAD, w, 1] side by side, right overlapping left by the fewest columns at which
    the ink of the two is joined (one piece fewer than the two have apart), at most half of right's width."""
    def pieces(page):
        return segment.label_components(page[..., 0] < 1 - segment.INK_THRESHOLD)[1]
    apart = pieces(left) + pieces(right)
    for overlap in range(right.shape[1] // 2 + 1):
        joined = np.concatenate([left, np.ones((PAD, right.shape[1] - overlap, 1), np.float32)], axis=1)
        under = joined[:, left.shape[1] - overlap:]  # a view: where right is written
        np.minimum(under, right, out=under)
        if pieces(joined) < apart:
            break
    return joined


# Paper people write on, made on purpose (issue: reading real paper): the same MNIST test digits written
# on a clean page, between and across ruled lines, on squared paper, one per box of a form's comb field, and
# under a shadow. RGB pages [h, w, 3] in [0, 1].
PAPERS = ('clean', 'ruled', 'squared', 'form', 'shadow')
SCALE = 3  # MNIST's 28-pixel frames written 84 pixels tall: a digit about 60 pixels high, as on a phone's photo


def written_on(paper: str, digits: np.ndarray, rng: np.random.Generator, shift: float = 0.0) -> np.ndarray:
    """28x28 white-on-black digits [n, 28, 28] written in dark ink on `paper` (one of PAPERS); on a form, each
    digit moved up to `shift` (at most 0.3) of a box left or right, as people write in a hurry: up to and
    across the boxes' sides."""
    from PIL import Image
    frame = 28 * SCALE
    gaps = rng.integers(2, 9, len(digits)) * SCALE
    box = frame + 8 * SCALE  # a form's box: the digit and a margin round it
    lefts = (box * np.arange(len(digits)) + 4 * SCALE if paper == 'form'
             else np.concatenate([[0], np.cumsum(frame + gaps[:-1])]))
    margin = 12 * SCALE
    height, width = frame + 2 * margin, int(lefts[-1] + frame + 2 * margin + (4 * SCALE if paper == 'form' else 0))
    ink = np.zeros((height, width), np.float32)
    for digit, left in zip(digits, lefts):
        big = np.asarray(Image.fromarray(digit).resize((frame, frame), Image.BILINEAR), np.float32) / 255
        top = margin + int(rng.integers(-SCALE, SCALE + 1))
        left = left + int(rng.uniform(-shift, shift) * box) if shift else left
        ink[top:top + frame, margin + left:margin + left + frame] = np.maximum(
            ink[top:top + frame, margin + left:margin + left + frame], big)
    return ink_on(paper, ink, rng, field=len(digits) * box)


def ink_on(paper: str, ink: np.ndarray, rng: np.random.Generator, field: int = 0) -> np.ndarray:
    """Ink [h, w] in [0, 1] (margins of 12 * SCALE round it) in dark ink on `paper` (one of PAPERS; a form's
    comb field `field` pixels wide)."""
    height, width = ink.shape
    page = np.ones((height, width, 3), np.float32) * paper_colour(rng)
    if paper in ('ruled', 'squared', 'form'):
        page = draw_lines(page, printed_lines(paper, (height, width), 12 * SCALE, field, rng))
    page = page * (1 - ink[..., None]) + ink_colour(rng) * ink[..., None]
    return with_shadow(page, rng) if paper == 'shadow' else page


# Fonts digitised from people's handwriting (Debian's fonts-dkg-handwriting, -breip, -bwht, -klee, -rufscript,
# -sjfonts, -humor-sans, -yusei-magic): other people's hands, to measure reading on, never to train on.
# fonts-femkeklaver is left out: its digits are hollow outlines, which nobody writes.
HANDWRITING_FONTS = tuple(f'/usr/share/fonts/{path}' for path in (
    'truetype/fifthhorseman/dkg.ttf', 'truetype/fifthhorseman/dkgBd.ttf', 'truetype/fifthhorseman/dkgIt.ttf',
    'truetype/fifthhorseman/dkgBI.ttf', 'truetype/breip/Breip.ttf',
    *(f'opentype/bwht/BecauseWe{name}-Regular.otf' for name in ('Build', 'Connect', 'Create', 'Learn',
                                                                 'Mentor', 'Organize')),
    'truetype/klee/KleeOne-Regular.ttf', 'truetype/klee/KleeOne-SemiBold.ttf',
    'truetype/rufscript/Rufscript010.ttf', 'truetype/sjfonts/Delphine.ttf', 'truetype/sjfonts/SteveHand.ttf',
    'truetype/humor-sans/Humor-Sans.ttf', 'truetype/yusei-magic/YuseiMagic-Regular.ttf'))
FONT_PAPERS = ('clean', 'ruled', 'squared', 'shadow')  # a font's digits do not fall into a form's boxes


def installed_handwriting_fonts() -> list[str]:
    """The HANDWRITING_FONTS installed on this machine (apt-get install fonts-dkg-handwriting ...)."""
    import os
    return [font for font in HANDWRITING_FONTS if os.path.exists(font)]


def font_ink(text: str, font: str, size: int) -> np.ndarray:
    """text written in `font` at `size` px: ink [h, w] in [0, 1], cropped to the ink with 12 * SCALE px of
    paper round it."""
    from PIL import Image, ImageDraw, ImageFont
    face = ImageFont.truetype(font, size)
    x0, y0, x1, y1 = ImageDraw.Draw(Image.new('L', (1, 1))).textbbox((0, 0), text, font=face)
    canvas = Image.new('L', (x1 - x0 + 4, y1 - y0 + 4), 0)
    ImageDraw.Draw(canvas).text((2 - x0, 2 - y0), text, fill=255, font=face)
    ink = np.asarray(canvas, np.float32) / 255
    rows, columns = np.flatnonzero(ink.max(axis=1) > 0.1), np.flatnonzero(ink.max(axis=0) > 0.1)
    ink = ink[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    return np.pad(ink, 12 * SCALE)


def font_number(text: str, font: str, paper: str, rng: np.random.Generator) -> np.ndarray:
    """A number written in a handwriting font, its digits 40-100 px tall, in dark ink on `paper`."""
    return ink_on(paper, font_ink(text, font, int(rng.integers(56, 140))), rng)


def blank_paper(paper: str, rng: np.random.Generator) -> np.ndarray:
    """A page of `paper` ('ruled', 'squared' or 'form': a comb field of 2-6 boxes) with nothing written on it."""
    box, margin = (28 + 8) * SCALE, 12 * SCALE
    field = int(rng.integers(2, 7)) * box
    size = ((28 + 24) * SCALE, field + 2 * margin + SCALE * 4)
    page = np.ones((*size, 3), np.float32) * paper_colour(rng)
    return draw_lines(page, printed_lines(paper, size, margin, field, rng))


WORDS = ('Name', 'Date', 'Total', 'hello', 'Street', 'OK', 'City', 'Phone', 'from', 'Amount', 'Yes', 'Notes')


def a_word(rng: np.random.Generator) -> np.ndarray:
    """A printed word of WORDS on a clean page: no digit in it."""
    from PIL import Image, ImageDraw, ImageFont
    word = rng.choice(WORDS)
    page = Image.new('L', (420, 160), 255)
    font = ImageFont.truetype('DejaVuSans.ttf', int(rng.integers(48, 80)))
    ImageDraw.Draw(page).text((30, 30), str(word), fill=int(rng.integers(0, 60)), font=font)
    return np.repeat(np.asarray(page, np.float32)[..., None] / 255, 3, axis=-1)


def printed_lines(paper: str, shape, margin: int, field: int, rng) -> list:
    """The lines of `paper` as (axis, position, thickness, colour): axis 0 a horizontal line at row
    `position`, 1 a vertical one at that column; a form's span only its comb field."""
    height, width = shape
    light_blue = np.array([rng.uniform(0.55, 0.75), rng.uniform(0.7, 0.82), rng.uniform(0.88, 0.97)], np.float32)
    if paper == 'ruled':
        spacing, phase = int(28 * SCALE * rng.uniform(0.55, 1.0)), int(rng.integers(0, 40))
        lines = [(0, y, int(rng.integers(1, 4)), light_blue) for y in range(phase, height, spacing)]
        if rng.random() < 0.5:  # the margin's red line
            lines.append((1, int(rng.integers(4, margin - 4)), 2, np.array([0.9, 0.45, 0.45], np.float32)))
        return lines
    if paper == 'squared':
        spacing, thickness = int(28 * SCALE * rng.uniform(0.3, 0.5)), int(rng.integers(1, 3))
        return ([(0, y, thickness, light_blue) for y in range(int(rng.integers(0, spacing)), height, spacing)]
                + [(1, x, thickness, light_blue) for x in range(int(rng.integers(0, spacing)), width, spacing)])
    grey = np.full(3, rng.uniform(0.0, 0.45), np.float32)
    thickness, box = int(rng.integers(2, 4)), (28 + 8) * SCALE
    top, bottom = margin - 6 * SCALE, margin + (28 + 6) * SCALE
    xs = [margin + k * box for k in range(field // box + 1)]
    return ([(0, y, thickness, grey, (xs[0], xs[-1] + thickness)) for y in (top, bottom)]
            + [(1, x, thickness, grey, (top, bottom + thickness)) for x in xs])


def draw_lines(page: np.ndarray, lines: list) -> np.ndarray:
    """page with each printed line (printed_lines) drawn over it."""
    page = page.copy()
    for axis, position, thickness, colour, *extent in lines:
        lo, hi = extent[0] if extent else (0, page.shape[1 - axis])
        if axis == 0:
            page[position:position + thickness, lo:hi] = colour
        else:
            page[lo:hi, position:position + thickness] = colour
    return page


def turned(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """page turned 1-4 degrees either way, as a phone photographs paper a little askew (the corners the
    turn uncovers filled with the paper's colour)."""
    from PIL import Image
    image = Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8))
    degrees = float(rng.choice([-1, 1]) * rng.uniform(1, 4))
    fill = tuple(int(v) for v in np.median(np.asarray(image).reshape(-1, 3), axis=0))  # the paper: most of it
    return np.asarray(image.rotate(degrees, resample=Image.BILINEAR, expand=True, fillcolor=fill), np.float32) / 255


def paper_colour(rng) -> np.ndarray:
    return np.array([rng.uniform(0.92, 1.0)] * 2 + [rng.uniform(0.85, 1.0)], np.float32)


def ink_colour(rng) -> np.ndarray:
    """Black, or a blue ballpoint's dark blue."""
    return np.array([rng.uniform(0.0, 0.15), rng.uniform(0.0, 0.2), rng.uniform(0.1, 0.55)], np.float32)


def with_shadow(page: np.ndarray, rng) -> np.ndarray:
    """page darkened towards one side to 45-70% of its light (a hand or a phone over the paper)."""
    h, w = page.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * np.linspace(-1, 1, w)[None, :] + np.sin(angle) * np.linspace(-1, 1, h)[:, None]
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-6)
    darkest = rng.uniform(0.45, 0.7)
    return page * (1 - (1 - darkest) * ramp)[..., None]

