"""A user's digit image -> a 28x28 MNIST-style digit: white ink on black, fitted and centred like MNIST.

MNIST's recipe (LeCun et al.): the digit's bounding box is scaled into 20x20 keeping its aspect ratio
(anti-aliased, hence the grey levels), then placed in a 28x28 frame so that its centre of mass is the
frame's centre. A photo or a drawing is brought to the same form first: decoded (PNG, JPEG, GIF, BMP),
flattened to grey (transparency over the background), inverted if the ink is darker than the paper.
"""
import io
import struct

import numpy as np
from PIL import Image, UnidentifiedImageError

from digits.errors import DigitsError
from digits.export.signatures import FRAME
from digits.reading import page
from digits.reading.segment import INK_THRESHOLD  # fainter pixels (paper texture, JPEG ringing) are not ink

BOX = 20
SUPERSAMPLE = 4  # strokes are measured and normalised at 4x the box (80x80) before it is scaled to 20x20
# The thinnest and the widest stroke left as they are, in pixels at SUPERSAMPLE x the box: 19 in 20 MNIST
# training digits have wider strokes than MIN_STROKE, 19 in 20 narrower than MAX_STROKE (their
# percentiles 5 and 95). docs/reading.md says why strokes are normalised.
MIN_STROKE, MAX_STROKE = 7.0, 16.4
# Larger images are refused from their header, before decoding: a 40-megapixel RGB image already takes
# 480 MB as float32, and a few hundred bytes of PNG can declare billions of pixels (a decompression bomb).
MAX_PIXELS = 40_000_000
_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (DHT, JPG, DAC are not)


def read_image(path: str) -> np.ndarray:
    """The image file at path as float32 [h, w, c] in [0, 1] (c: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as e:
        raise DigitsError(f'{path}: cannot read it ({e.strerror})') from None
    return decode_image(raw, path)


def decode_image(raw: bytes, name: str) -> np.ndarray:
    """An image file's bytes as float32 [h, w, c] in [0, 1]; errors name it `name` (a path, a request)."""
    if not raw:
        raise DigitsError(f'{name}: the file is empty')
    check_size(raw, name)
    try:
        image = Image.open(io.BytesIO(raw))  # an animated GIF: its first frame
        if image.format not in FORMATS:
            raise UnidentifiedImageError(image.format)
        return pixels_of(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):  # Pillow's kinds of a broken file
        raise DigitsError(f'{name}: not a PNG, JPEG, GIF or BMP image') from None


FORMATS = ('PNG', 'JPEG', 'GIF', 'BMP')


def pixels_of(image: Image.Image) -> np.ndarray:
    """A Pillow image as float32 [h, w, c] in [0, 1]: grey (+alpha) stays grey, anything else RGB(A)."""
    if image.mode in ('I;16', 'I;16B', 'I'):  # 16-bit grey
        return (np.asarray(image, np.float32) / 65535.0)[..., None]
    keep = {'L': 'L', 'LA': 'LA', '1': 'L', 'RGB': 'RGB', 'RGBA': 'RGBA'}
    has_alpha = 'A' in image.mode or 'transparency' in image.info
    mode = keep.get(image.mode, 'RGBA' if has_alpha else 'RGB')
    array = np.asarray(image.convert(mode), np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


class ImageTooLarge(DigitsError):
    """An image whose header declares more than MAX_PIXELS pixels (the server answers 413)."""


def check_size(raw: bytes, path: str):
    """Raises ImageTooLarge if the image's header declares more than MAX_PIXELS pixels."""
    width, height = declared_size(raw) or (0, 0)
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(f'{path}: too large to decode: {width}x{height} pixels ({width * height / 1e6:,.0f} '
                          f'megapixels, at most {MAX_PIXELS / 1e6:.0f}); scale it down')


def declared_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG, GIF, BMP or JPEG header states it, without decoding; None if unknown."""
    if raw[:8] == b'\x89PNG\r\n\x1a\n' and len(raw) >= 24:
        return struct.unpack('>II', raw[16:24])
    if raw[:6] in (b'GIF87a', b'GIF89a') and len(raw) >= 10:
        return struct.unpack('<HH', raw[6:10])
    if raw[:2] == b'BM' and len(raw) >= 26:
        if struct.unpack('<I', raw[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            return struct.unpack('<HH', raw[18:22])
        width, height = struct.unpack('<ii', raw[18:26])
        return abs(width), abs(height)  # a negative height means top-down rows
    if raw[:2] == b'\xff\xd8':
        return jpeg_size(raw)
    return None


def jpeg_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame segment, walking the segments before it."""
    i = 2
    while i + 4 <= len(raw):
        if raw[i] != 0xFF:
            return None
        marker = raw[i + 1]
        if marker == 0xFF:  # a fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length field
            i += 2
        elif marker in _JPEG_SOF:
            height, width = struct.unpack('>HH', raw[i + 5:i + 9]) if i + 9 <= len(raw) else (0, 0)
            return width, height
        else:
            i += 2 + struct.unpack('>H', raw[i + 2:i + 4])[0]
    return None


def to_grey(image: np.ndarray) -> np.ndarray:
    """[h, w, c] in [0, 1] -> [h, w]: luminance, with transparent pixels showing the background.

    The background behind transparency is white if the opaque pixels are dark (dark ink on a
    transparent canvas) and black otherwise, so that the ink stays visible either way.
    """
    channels = image.shape[-1]
    alpha = image[..., -1] if channels in (2, 4) else None
    colour = image[..., :3] if channels >= 3 else image[..., :1]
    grey = colour @ np.array([0.299, 0.587, 0.114], np.float32) if colour.shape[-1] == 3 else colour[..., 0]
    if alpha is None or alpha.min() >= 1.0:
        return grey
    opaque = alpha > 0.5
    background = 1.0 if opaque.any() and grey[opaque].mean() < 0.5 else 0.0
    return grey * alpha + background * (1 - alpha)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the pixels above INK_THRESHOLD (of all the ink, if none is that strong: a faint
    part of a number the reader tries as a digit)."""
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    if not rows.size:
        rows, cols = np.nonzero(ink > 0)
    if not rows.size:
        return np.zeros((1, 1), np.float32)  # no ink at all: an empty frame, which the model reads unsure
    return ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def fit_box(ink: np.ndarray) -> np.ndarray:
    """Scales ink so that its longer side is BOX pixels, keeping the aspect ratio (anti-aliased), with
    strokes thinner or wider than MNIST's normalised on the way (normalize_strokes, at SUPERSAMPLE x the box)."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    fine = normalize_strokes(resize(ink, (SUPERSAMPLE * size[0], SUPERSAMPLE * size[1])))
    return resize(fine, size)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[h, w] -> size, area-averaged when shrinking (anti-aliased, as MNIST's box), bilinear when growing:
    as tf.image.resize (method 'area', or 'bilinear' with antialias) computes it, one side at a time, each
    output pixel from the few input pixels it covers (taps)."""
    taps = area_taps if size[0] < image.shape[0] or size[1] < image.shape[1] else bilinear_taps
    rows = apply_taps(image.astype(np.float32), *taps(image.shape[0], size[0]))
    return apply_taps(rows.T, *taps(image.shape[1], size[1])).T


def apply_taps(image: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """[n_in, w] -> [n_out, w]: output row i the sum of input rows index[i] times weight[i] ([n_out, taps])."""
    return np.einsum('ok,okw->ow', weight, image[index])


def area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Each output pixel the average of the input it covers (fractions at its edges): (index, weight)."""
    scale = n_in / n_out
    start = np.arange(n_out)[:, None] * scale
    pixel = np.floor(start) + np.arange(int(np.ceil(scale)) + 1)[None, :]
    overlap = np.minimum(start + scale, pixel + 1) - np.maximum(start, pixel)
    return np.minimum(pixel, n_in - 1).astype(np.intp), (np.clip(overlap, 0, None) / scale).astype(np.float32)


def bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """A triangle filter at each output pixel's centre (half-pixel centres), widened by the scale when
    shrinking, its taps inside the image renormalised to sum to 1: (index, weight)."""
    scale = n_in / n_out
    width = max(scale, 1.0)
    centre = (np.arange(n_out)[:, None] + 0.5) * scale
    pixel = np.floor(centre - 0.5 - width) + 1 + np.arange(2 * int(np.ceil(width)) + 1)[None, :]
    taps = np.clip(1 - np.abs((pixel + 0.5 - centre) / width), 0, None) * ((pixel >= 0) & (pixel < n_in))
    return np.clip(pixel, 0, n_in - 1).astype(np.intp), (taps / taps.sum(axis=1, keepdims=True)).astype(np.float32)


def normalize_strokes(fine: np.ndarray) -> np.ndarray:
    """Thickens strokes thinner than MIN_STROKE (a hairline, a fine pen) by dilating them with a disk, and
    thins strokes wider than MAX_STROKE (a marker) by eroding them.

    fine: the digit at SUPERSAMPLE x its box size, where even a 2-pixel pen on a 280-pixel canvas still
    shows as a line; scaled straight to 20x20 it would fade to a faint trace that looks nothing like
    MNIST's strokes, and a marker's strokes would fill the loops of a 6, 8, 9 or 0."""
    width = stroke_width(fine)
    if MIN_STROKE - width >= 1:
        return dilate(fine, round((MIN_STROKE - width) / 2))
    if width - MAX_STROKE >= 1:
        return erode(fine, round((width - MAX_STROKE) / 2))
    return fine


def stroke_width(ink: np.ndarray) -> float:
    """The mean width of the strokes above half strength: twice their area over their outline's length."""
    strong = np.pad(ink > 0.5, 1)
    inside = strong[1:-1, 1:-1] & strong[:-2, 1:-1] & strong[2:, 1:-1] & strong[1:-1, :-2] & strong[1:-1, 2:]
    outline = (strong[1:-1, 1:-1] & ~inside).sum()
    return 2 * strong.sum() / max(outline, 1)


def dilate(ink: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level dilation of ink [h, w] by a disk of the given radius (each pixel: the max around it)."""
    return disk_filter(ink, radius, np.maximum)


def erode(ink: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level erosion of ink [h, w] by a disk of the given radius (each pixel: the min around it)."""
    return disk_filter(ink, radius, np.minimum)


def disk_filter(ink: np.ndarray, radius: int, combine) -> np.ndarray:
    """Combines (np.maximum or np.minimum) each pixel of ink [h, w] with those within a disk of radius."""
    padded, out = np.pad(ink, radius), ink.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * (radius + 1):
                out = combine(out, padded[radius + dy:radius + dy + ink.shape[0],
                                          radius + dx:radius + dx + ink.shape[1]])
    return out


def centre_by_mass(box: np.ndarray) -> np.ndarray:
    """Places box in a FRAME x FRAME frame with its centre of mass where MNIST's are, at pixel (14, 14)."""
    h, w = box.shape
    total = box.sum()
    if total <= 0:
        return np.zeros((FRAME, FRAME), np.float32)
    rows, cols = np.indices(box.shape)
    com_r, com_c = (rows * box).sum() / total, (cols * box).sum() / total
    # MNIST's centres of mass lie at pixel index (14, 14), within half a pixel, not at the frame's
    # geometric centre 13.5: a digit must sit where the model learnt digits sit.
    top = int(np.clip(round(FRAME / 2 - com_r), 0, FRAME - h))  # keep the whole digit inside
    left = int(np.clip(round(FRAME / 2 - com_c), 0, FRAME - w))
    frame = np.zeros((FRAME, FRAME), np.float32)
    frame[top:top + h, left:left + w] = box
    return frame


def to_mnist(image: np.ndarray) -> np.ndarray:
    """Any decoded image [h, w, c] in [0, 1] -> uint8 [28, 28], white ink on black, MNIST-style."""
    return ink_to_mnist(page.ink_of(to_grey(image)))


def ink_to_mnist(ink: np.ndarray) -> np.ndarray:
    """Ink [h, w] in [0, 1] (the paper at 0) -> uint8 [28, 28], MNIST-style: cropped, fitted, centred."""
    frame = centre_by_mass(fit_box(crop_to_ink(ink)))
    return np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)


def load_digit(path: str) -> np.ndarray:
    """The file at path as an MNIST-style uint8 [28, 28]; DigitsError names the file on any problem."""
    return digit_from_image(read_image(path), path)


def digit_from_image(image: np.ndarray, name: str) -> np.ndarray:
    """to_mnist(image), with its errors (a blank image) naming `name`."""
    try:
        return to_mnist(image)
    except DigitsError as e:
        raise DigitsError(f'{name}: {e}') from None


def write_png(path: str, digit: np.ndarray):
    """Writes a uint8 [28, 28] digit as a greyscale PNG."""
    try:
        with open(path, 'wb') as f:
            f.write(png_bytes(digit))
    except OSError as e:
        raise DigitsError(f'cannot write {path}: {e.strerror}') from None


def png_bytes(digit: np.ndarray) -> bytes:
    """A uint8 [h, w] image as the bytes of a greyscale PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(digit, np.uint8)).save(buffer, format='PNG')
    return buffer.getvalue()
