"""Pages drawn on purpose, as people's are: digits as pen strokes on the page's pad, and MNIST digits as ink
on paper. The server warms up on them and training draws its marks that are not digits with them."""
import math

import numpy as np

PAD = 280  # the page's drawing pad, in pixels


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


def ink_on_paper(row: np.ndarray, margin: int = 10) -> np.ndarray:
    """White-on-black uint8 ink [h, w] as dark ink on a white page with a margin: [h + 2m, w + 2m, 1] in [0, 1]."""
    return (1 - np.pad(row, margin).astype(np.float32) / 255)[..., None]


def overlapped(left: np.ndarray, right: np.ndarray, overlap: int) -> np.ndarray:
    """White-on-black ink [h, wl] and [h, wr] side by side, right's first `overlap` columns over left's last
    (the brighter ink kept where they meet): [h, wl + wr - overlap]."""
    row = np.zeros((left.shape[0], left.shape[1] + right.shape[1] - overlap), left.dtype)
    row[:, :left.shape[1]] = left
    row[:, -right.shape[1]:] = np.maximum(row[:, -right.shape[1]:], right)
    return row


def touching_pair(a: np.ndarray, b: np.ndarray, overlap: int) -> np.ndarray:
    """Two 28x28 digits whose boxes overlap by `overlap` columns (their ink often touches), on a page."""
    return ink_on_paper(overlapped(a, b, overlap))
