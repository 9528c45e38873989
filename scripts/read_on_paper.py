"""How well an export reads MNIST test digits redrawn as a user's image, against the originals, and
digits written with pens from a hairline to a marker.

    python scripts/read_on_paper.py --model=models/<run> --data_dir=../shared/datasets/mnist-10k [--num=10000]

Each test digit is read as the original 28x28; as the original passed through digits.predict's
preprocessing again (images.to_mnist: what the preprocessing alone changes); rendered as dark ink on a
white 200x200 page, enlarged to 60-140 pixels and off-centre, saved as JPEG (quality 90) and decoded as
digits.predict decodes a file; and that page redrawn with a thinner or a thicker pen, scanned at low
resolution or blurred (DEGRADED). Prints the digits read right in each way, and how many the redrawing
lost and gained against the originals. Then each digit 0-9 written as pen strokes (STROKES, which the
browser test draws on the page) with pens 2 to 28 pixels wide on a 280x280 pad: how many of the ten
are read right at each width.
"""
import argparse
import io
import math

import numpy as np

PAD = 280  # the page's drawing pad, in pixels
PEN_WIDTHS = (2, 3, 4, 6, 8, 12, 16, 20, 24, 28)


def arc(cx, cy, rx, ry, start, end, n=24):
    """Points along an elliptical arc from angle start to end (degrees, clockwise on screen)."""
    return [(cx + rx * math.cos(math.radians(start + (end - start) * i / n)),
             cy + ry * math.sin(math.radians(start + (end - start) * i / n))) for i in range(n + 1)]


# Each digit as pen strokes (lists of points on the 280x280 pad), written the way people write them.
STROKES = {
    0: [arc(140, 140, 55, 85, 0, 360)],
    1: [[(150, 50), (150, 230)]],
    2: [arc(140, 100, 50, 45, 200, 360) + [(175, 150), (90, 230), (200, 230)]],
    3: [arc(135, 95, 50, 42, 210, 450) + arc(135, 183, 55, 47, 270, 510)],
    4: [[(160, 50), (85, 170), (205, 170)], [(170, 110), (170, 235)]],
    5: [[(195, 55), (110, 55), (100, 130)] + arc(140, 170, 60, 55, 235, 480)],
    6: [[(175, 55), (130, 100), (100, 160)] + arc(145, 180, 47, 45, 180, 540)],
    7: [[(85, 55), (200, 55), (120, 235)]],
    8: [arc(140, 95, 42, 40, 90, 450), arc(140, 182, 52, 48, -90, 270)],
    9: [arc(140, 100, 48, 45, 0, 360), [(188, 100), (175, 235)]],
}


def render_strokes(strokes, width: int) -> np.ndarray:
    """Pen strokes drawn black on a white PAD x PAD page with a round pen `width` pixels wide, float32
    [PAD, PAD, 1] in [0, 1] (what the page's canvas holds)."""
    from PIL import Image, ImageDraw
    page = Image.new('L', (PAD, PAD), 255)
    pen = ImageDraw.Draw(page)
    for stroke in strokes:
        pen.line(stroke, fill=0, width=width, joint='curve')
        for x, y in (stroke[0], stroke[-1]):  # round ends, as the canvas' lineCap
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=0)
    return np.asarray(page, np.float32)[..., None] / 255.0


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
    from PIL import Image
    import tensorflow as tf
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', required=True, help='Exported SavedModel (models/<run>).')
    parser.add_argument('--data_dir', help='MNIST folder (IDX or npz); unset: Keras\' download.')
    parser.add_argument('--num', type=int, default=10000, help='Test digits to use (a seeded sample).')
    args = parser.parse_args(argv)
    from digits import cli
    cli.load_tensorflow()
    from digits import data, export, images
    test = data.load('mnist', args.data_dir).test
    chosen = np.random.default_rng(0).choice(len(test), min(args.num, len(test)), replace=False)
    originals, labels = test.images[chosen], test.labels[chosen]
    module = export.load(args.model)
    rng = np.random.default_rng(1)
    ways = {'original': originals,
            'preprocessed again': [images.to_mnist(d[..., None].astype(np.float32) / 255) for d in originals],
            'on paper (JPEG)': [images.to_mnist(as_jpeg_file(render_on_paper(d, rng))) for d in originals]}
    for name, degrade in DEGRADED.items():  # each with its own seed: the figures above stay comparable
        rng = np.random.default_rng(2)
        ways[name] = [images.to_mnist(degrade(render_on_paper(d, rng))) for d in originals]
    right = {way: module.serve(np.stack(batch))['probabilities'].numpy().argmax(1) == labels
             for way, batch in ways.items()}
    for way, ok in right.items():
        lost, gained = int((right['original'] & ~ok).sum()), int((~right['original'] & ok).sum())
        print(f'{way:<24} {ok.sum():>6}/{len(labels)} = {100 * ok.mean():.2f}%   lost {lost}, gained {gained}')
    read = {width: read_pen(module, width) for width in PEN_WIDTHS}
    print('pen strokes read right, of 10, by pen width on a 280-pixel pad: ' +
          ', '.join(f'{width} px: {count}' for width, count in read.items()))


def read_pen(module, width: int) -> int:
    """How many of the digits 0-9, written with a pen `width` pixels wide, the export reads right."""
    from digits import images
    batch = np.stack([images.to_mnist(render_strokes(STROKES[k], width)) for k in range(10)])
    return int(np.sum(module.serve(batch)['probabilities'].numpy().argmax(1) == np.arange(10)))


if __name__ == '__main__':
    main()
