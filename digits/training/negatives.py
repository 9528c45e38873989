"""Marks that are not digits, made to teach the model to refuse them (outlier exposure).

A softmax over ten digits has no way to say "none of these": trained on digits alone, it reads a letter A
as a 4 at 99.96%. Training on marks that are not digits, with the uniform distribution as their target
(Hendrycks et al., "Deep Anomaly Detection with Outlier Exposure", 2019), teaches it to spread its
probability over the ten classes for them instead; the reader then refuses a mark whose probabilities are
spread that way (reader.is_refused). The model and its exports keep their ten outputs.

Three kinds, each through the reader's own preprocessing (images.ink_to_mnist), as the reader would see them:
- glyphs: letters and signs of the fonts matplotlib ships (TRAIN_FONTS), those that look like no digit;
- scribbles: random smooth pen strokes of random widths;
- pairs: two training digits written touching, read as one mark (what a wrong cut of a number looks like).
STIX fonts and the pen-drawn marks of the tests (scripts/support/synthetic.py) are kept out of training, to measure on.
"""
import functools
import os

import numpy as np

from digits.data import arrays
from digits.reading import drawing, images

# Letters and signs that look like no digit. Left out: O o Q D (0), I l i j J | ! / \ ( ) [ ] ' , : ; (1),
# Z z (2), S s $ (5), b G (6), T t (7), B (8), g q a y (9), and marks too small to be written alone (. , `).
GLYPHS = 'ACEFHKLMNPRUVWXYcdefhkmnpruvwx+=#%&@*?<>^~-'
TRAIN_FONTS = ('DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf', 'DejaVuSerif.ttf',
               'DejaVuSerif-Italic.ttf', 'DejaVuSansMono.ttf', 'cmr10.ttf', 'cmss10.ttf', 'cmtt10.ttf', 'cmti10.ttf')
HELD_OUT_FONTS = ('STIXGeneral.ttf', 'STIXGeneralBol.ttf', 'STIXGeneralItalic.ttf', 'STIXGeneralBolIta.ttf')
KINDS = ('glyph', 'scribble', 'pair')
SCRIBBLE_PENS = (4, 6, 8, 12, 16, 20)


def count_for(num_digits: int, fraction: float) -> int:
    """How many marks with_negatives adds to a training set of num_digits digits."""
    return round(fraction * num_digits)


def with_negatives(split: arrays.Split, fraction: float, seed: int, num_classes: int,
                   kinds: tuple[str, ...] = KINDS) -> arrays.Split:
    """split and count_for(its size, fraction) marks that are not digits (of `kinds`) after it, labelled
    num_classes."""
    count = count_for(len(split), fraction)
    if not count:
        return split
    marks = make_negatives(split.images, count, seed, kinds)
    return arrays.Split(np.concatenate([split.images, marks]),
                      np.concatenate([split.labels, np.full(count, num_classes, split.labels.dtype)]))


def make_negatives(digits: np.ndarray, count: int, seed: int, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """`count` marks that are not digits, uint8 [count, 28, 28] MNIST-style, as many of each of `kinds`
    (of KINDS), a pure function of (digits, count, seed, kinds). digits: uint8 [n, 28, 28] training digits,
    for the pairs."""
    rng = np.random.default_rng([seed, 0x6e6567])  # its own stream: the training order's is untouched
    every = {'glyph': lambda: font_glyph(TRAIN_FONTS, rng), 'scribble': lambda: scribble(rng),
             'pair': lambda: digit_pair(digits, rng)}
    makers = [every[kind] for kind in kinds]
    kinds = rng.permutation(np.arange(count) % len(makers))  # in the order of `kinds`
    marks = [images.ink_to_mnist(makers[kind]()) for kind in kinds]
    return np.stack(marks) if marks else np.zeros((0, 28, 28), np.uint8)


def font_glyph(fonts: tuple[str, ...], rng: np.random.Generator, glyph: str | None = None) -> np.ndarray:
    """Ink [h, w] in [0, 1] of one of GLYPHS (or `glyph`) in a random font of `fonts`, at a random size."""
    from PIL import Image, ImageDraw
    glyph = glyph or GLYPHS[rng.integers(len(GLYPHS))]
    font = load_font(fonts[rng.integers(len(fonts))], int(rng.integers(60, 120)))
    page = Image.new('L', (240, 240), 0)
    ImageDraw.Draw(page).text((120, 120), glyph, fill=255, font=font, anchor='mm')
    return np.asarray(page, np.float32) / 255.0


@functools.lru_cache(maxsize=64)
def load_font(name: str, size: int):
    """A TrueType font matplotlib ships (its mpl-data/fonts/ttf), at `size` pixels."""
    import matplotlib
    from PIL import ImageFont
    return ImageFont.truetype(os.path.join(os.path.dirname(matplotlib.__file__), 'mpl-data', 'fonts', 'ttf', name),
                              size)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """Ink [PAD, PAD] of one to three random smooth strokes with a random pen (of 4-7 points each: fewer
    make lines and hooks that look like a 1 or a 7)."""
    strokes = [smooth_curve(rng.uniform(40, drawing.PAD - 40, size=(int(rng.integers(4, 8)), 2)))
               for _ in range(int(rng.integers(1, 4)))]
    return 1.0 - drawing.render_strokes(strokes, int(rng.choice(SCRIBBLE_PENS)))[..., 0]


def smooth_curve(points: np.ndarray, per_segment: int = 12) -> list[tuple[float, float]]:
    """A Catmull-Rom curve through points [k, 2], as a polyline."""
    padded = np.concatenate([points[:1], points, points[-1:]])
    curve = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1:i + 3]
        for t in np.linspace(0, 1, per_segment, endpoint=False):
            curve.append(tuple(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                                      + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3)))
    curve.append(tuple(points[-1]))
    return curve


def digit_pair(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink [h, w] of two random digits side by side on a page, their boxes overlapping by 4-12 columns."""
    a, b = digits[rng.integers(len(digits), size=2)]
    return 1.0 - drawing.touching_pair(a, b, int(rng.integers(4, 13)))[..., 0]


def glyph_marks(fonts: tuple[str, ...], seed: int) -> tuple[np.ndarray, list[str]]:
    """Every one of GLYPHS in each of fonts as MNIST-style uint8 [n, 28, 28], and which glyph each is."""
    rng = np.random.default_rng(seed)
    marks = [(glyph, images.ink_to_mnist(font_glyph((font,), rng, glyph))) for font in fonts for glyph in GLYPHS]
    return np.stack([mark for _, mark in marks]), [glyph for glyph, _ in marks]
