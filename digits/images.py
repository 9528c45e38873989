"""A user's digit image -> a 28x28 MNIST-style digit: white ink on black, fitted and centred like MNIST.

MNIST's recipe (LeCun et al.): the digit's bounding box is scaled into 20x20 keeping its aspect ratio
(anti-aliased, hence the grey levels), then placed in a 28x28 frame so that its centre of mass is the
frame's centre. A photo or a drawing is brought to the same form first: decoded (PNG, JPEG, GIF, BMP),
flattened to grey (transparency over the background), inverted if the ink is darker than the paper.
"""
import numpy as np
import tensorflow as tf

from digits.errors import DigitsError

FRAME, BOX = 28, 20
INK_THRESHOLD = 0.25  # Of the ink's full strength: fainter pixels (paper texture, JPEG ringing) don't count.


def read_image(path: str) -> np.ndarray:
    """The image file at path as float32 [h, w, c] in [0, 1] (c: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as e:
        raise DigitsError(f'{path}: cannot read it ({e.strerror})') from None
    if not raw:
        raise DigitsError(f'{path}: the file is empty')
    try:
        image = tf.io.decode_image(raw, expand_animations=False)  # An animated GIF: its first frame.
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        raise DigitsError(f'{path}: not a PNG, JPEG, GIF or BMP image') from None
    return image.numpy().astype(np.float32) / 255.0


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


def ink_on_black(grey: np.ndarray) -> np.ndarray:
    """[h, w] -> [h, w] in [0, 1] with the paper at 0 and the strongest ink at 1.

    The paper is the colour of the image's border (its median): light paper means dark ink, inverted.
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    ink = paper - grey if paper > 0.5 else grey - paper
    strength = ink.max()
    if strength < 0.1:
        raise DigitsError('blank: no ink differs from the paper')
    return np.clip(ink / strength, 0.0, 1.0)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the pixels above INK_THRESHOLD."""
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    return ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def fit_box(ink: np.ndarray) -> np.ndarray:
    """Scales ink so that its longer side is BOX pixels, keeping the aspect ratio (anti-aliased)."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return tf.image.resize(ink[..., None], size, method='area' if scale < 1 else 'bilinear',
                           antialias=True).numpy()[..., 0]


def centre_by_mass(box: np.ndarray) -> np.ndarray:
    """Places box in a FRAME x FRAME frame with its centre of mass at the frame's centre (as MNIST)."""
    h, w = box.shape
    total = box.sum()
    rows, cols = np.indices(box.shape)
    com_r, com_c = (rows * box).sum() / total, (cols * box).sum() / total
    top = int(np.clip(round(FRAME / 2 - 0.5 - com_r), 0, FRAME - h))  # keep the whole digit inside
    left = int(np.clip(round(FRAME / 2 - 0.5 - com_c), 0, FRAME - w))
    frame = np.zeros((FRAME, FRAME), np.float32)
    frame[top:top + h, left:left + w] = box
    return frame


def to_mnist(image: np.ndarray) -> np.ndarray:
    """Any decoded image [h, w, c] in [0, 1] -> uint8 [28, 28], white ink on black, MNIST-style."""
    frame = centre_by_mass(fit_box(crop_to_ink(ink_on_black(to_grey(image)))))
    return np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)


def load_digit(path: str) -> np.ndarray:
    """The file at path as an MNIST-style uint8 [28, 28]; DigitsError names the file on any problem."""
    image = read_image(path)
    try:
        return to_mnist(image)
    except DigitsError as e:
        raise DigitsError(f'{path}: {e}') from None


def write_png(path: str, digit: np.ndarray):
    """Writes a uint8 [28, 28] digit as a greyscale PNG."""
    tf.io.write_file(path, tf.io.encode_png(digit[..., None]))
