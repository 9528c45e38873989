"""digits.reading.images: every kind of user image becomes the same MNIST-style 28x28 digit."""
import io

import numpy as np
import pytest
from conftest import bomb_bytes, make_digits
from PIL import Image

from digits.data import arrays
from digits.errors import DigitsError
from digits.reading import drawing, images


def stroke_canvas(height=120, width=90, top=30, left=20) -> np.ndarray:
    """A float [h, w] canvas with a thick '7'-like stroke (1 = ink) away from the centre."""
    ink = np.zeros((height, width), np.float32)
    ink[top:top + 8, left:left + 40] = 1.0  # the bar
    for i in range(60):  # the diagonal
        ink[top + i:top + i + 8, left + 40 - i // 2 - 6:left + 40 - i // 2] = 1.0
    return ink


def save(array: np.ndarray, path, fmt: str, mode: str):
    """Writes a uint8 array with Pillow in the given format and mode."""
    Image.fromarray(array).convert(mode).save(path, format=fmt)
    return str(path)


def as_uint8(x):
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def reference_digit():
    """The stroke as light ink on black in a PNG: the plainest input, the result every other kind matches."""
    return images.to_mnist(stroke_canvas()[..., None])


@pytest.mark.parametrize('fmt,mode,dark_on_light', [
    ('PNG', 'L', True), ('PNG', 'L', False), ('PNG', 'RGB', True), ('JPEG', 'RGB', True),
    ('JPEG', 'L', False), ('GIF', 'P', True), ('BMP', 'RGB', True), ('BMP', 'L', False)])
def test_every_kind_of_image_gives_the_same_digit(tmp_path, fmt, mode, dark_on_light):
    ink = stroke_canvas()
    pixels = as_uint8(1 - ink if dark_on_light else ink)
    path = save(pixels, tmp_path / f'seven.{fmt.lower()}', fmt, mode)
    digit = images.load_digit(path)
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # black background, white ink
    difference = np.abs(digit.astype(int) - reference_digit().astype(int))
    assert difference.mean() < 4, difference.mean()  # JPEG blurs the edges a little


@pytest.mark.parametrize('ink_colour', [0, 255])
def test_rgba_ink_on_a_transparent_canvas(tmp_path, ink_colour):
    """Drawing apps save ink on transparency; the ink colour may be black or white."""
    ink = stroke_canvas()
    rgba = np.zeros(ink.shape + (4,), np.uint8)
    rgba[..., :3] = ink_colour
    rgba[..., 3] = as_uint8(ink)
    path = tmp_path / 'seven.png'
    Image.fromarray(rgba, 'RGBA').save(path)
    digit = images.load_digit(str(path))
    assert np.abs(digit.astype(int) - reference_digit().astype(int)).mean() < 1


def test_digit_is_fitted_into_20x20_and_centred_by_mass():
    digit = reference_digit().astype(np.float64)
    rows, cols = np.nonzero(digit)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 <= 20
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 >= 19  # the longer side fills it
    r, c = np.indices(digit.shape)
    centre = ((r * digit).sum() / digit.sum(), (c * digit).sum() / digit.sum())
    assert centre == pytest.approx((14.0, 14.0), abs=0.5)  # where MNIST puts it (images.centre_by_mass)


def test_position_and_size_do_not_matter():
    small = images.to_mnist(stroke_canvas(160, 160, top=5, left=100)[..., None])
    big = images.to_mnist(np.kron(stroke_canvas(), np.ones((3, 3), np.float32))[..., None])
    assert np.abs(small.astype(int) - reference_digit().astype(int)).mean() < 2
    assert np.abs(big.astype(int) - reference_digit().astype(int)).mean() < 4


def test_an_mnist_digit_comes_back_nearly_unchanged():
    """MNIST digits are already fitted and centred: preprocessing one again changes little."""
    original = make_digits(1, 0)[0][0]
    original = np.where(original > 100, original, 0).astype(np.uint8)  # the block, without the noise
    again = images.to_mnist(original[..., None].astype(np.float32) / 255)
    assert again.shape == (28, 28) and again.max() == 255


@pytest.mark.parametrize('content,message', [
    (b'', 'the file is empty'), (b'hello, not an image', 'not a PNG, JPEG, GIF or BMP image')])
def test_unreadable_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / 'bad.png'
    path.write_bytes(content)
    with pytest.raises(DigitsError, match=rf'^{path}: {message}$'):
        images.load_digit(str(path))


def test_blank_image_is_an_error(tmp_path):
    path = save(np.full((50, 50), 255, np.uint8), tmp_path / 'blank.png', 'PNG', 'L')
    with pytest.raises(DigitsError, match=r'blank.png: blank: no ink'):
        images.load_digit(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(DigitsError, match=r'nothing.png: cannot read it \(No such file or directory\)'):
        images.load_digit(str(tmp_path / 'nothing.png'))


def test_write_png_round_trips(tmp_path):
    digit = reference_digit()
    images.write_png(str(tmp_path / 'd.png'), digit)
    assert (np.array(Image.open(io.BytesIO((tmp_path / 'd.png').read_bytes()))) == digit).all()


@pytest.mark.parametrize('fmt,mode', [('PNG', 'L'), ('JPEG', 'RGB'), ('GIF', 'P'), ('BMP', 'RGB')])
def test_declared_size_is_read_from_the_header(fmt, mode):
    buffer = io.BytesIO()
    Image.new(mode, (123, 45)).save(buffer, format=fmt)
    assert images.declared_size(buffer.getvalue()) == (123, 45)
    assert images.declared_size(b'not an image at all') is None


@pytest.mark.parametrize('fmt,width,height', [('PNG', 50000, 50000), ('JPEG', 65000, 65000)])
def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, fmt, width, height):
    path = tmp_path / f'bomb.{fmt.lower()}'
    path.write_bytes(bomb_bytes(fmt, width, height))
    assert images.declared_size(path.read_bytes()) == (width, height)
    with pytest.raises(DigitsError, match=rf'^{path}: too large to decode: {width}x{height} pixels '
                                          rf'\([\d,]+ megapixels, at most 40\); scale it down$'):
        images.load_digit(str(path))


def test_the_limit_is_exactly_max_pixels():
    """A 8,000 x 5,000 photo (40 megapixels) passes the size check; one row more is refused."""
    assert images.MAX_PIXELS == 8000 * 5000
    images.check_size(bomb_bytes('PNG', 8000, 5000), 'photo.png')
    with pytest.raises(DigitsError, match=r'^photo.png: too large to decode: 8000x5001 pixels'):
        images.check_size(bomb_bytes('PNG', 8000, 5001), 'photo.png')


def centres_of_mass(digits: np.ndarray) -> np.ndarray:
    """[n, 2] (row, column) centre of mass of each [n, 28, 28] image, in pixel indices."""
    rows, cols = np.indices(digits.shape[1:])
    mass = digits.reshape(len(digits), -1).astype(np.float64).sum(1)
    return np.stack([(digits * rows).sum((1, 2)) / mass, (digits * cols).sum((1, 2)) / mass], axis=1)


def test_real_mnist_digits_keep_their_place_when_preprocessed_again(real_data_dir):
    """MNIST centres its digits' mass at pixel (14, 14), not at 13.5: the preprocessing must aim there too,
    or it shifts most user digits by half a pixel from where the model learnt them."""
    originals = arrays.load('mnist', real_data_dir).test.images[:1000]
    again = np.stack([images.to_mnist(d[..., None].astype(np.float32) / 255) for d in originals])
    before, after = centres_of_mass(originals), centres_of_mass(again)
    np.testing.assert_allclose(before.mean(0), [14.0, 14.0], atol=0.05)
    np.testing.assert_allclose(after.mean(0), before.mean(0), atol=0.1)


def test_a_hairline_is_thickened_and_an_mnist_stroke_is_left_alone():
    hairline = np.zeros((80, 80), np.float32)
    hairline[10:70, 39:41] = 1.0  # 2 pixels wide at 4x the box: half a pixel in the 20x20 box
    assert images.stroke_width(hairline) == 2.0
    assert images.stroke_width(images.normalize_strokes(hairline)) >= 5
    stroke = np.zeros((80, 80), np.float32)
    stroke[10:70, 35:45] = 1.0  # 10 pixels: MNIST's median width at this scale
    np.testing.assert_array_equal(images.normalize_strokes(stroke), stroke)


def test_a_marker_is_thinned_and_its_loop_opens_again():
    rows, cols = np.indices((80, 80))
    radius = np.hypot(rows - 40, cols - 40)
    ring = ((radius <= 36) & (radius >= 10)).astype(np.float32)  # a 0 in a marker: 26-pixel strokes
    assert images.stroke_width(ring) > images.MAX_STROKE + 4
    thinned = images.normalize_strokes(ring)
    assert images.MAX_STROKE - 3 <= images.stroke_width(thinned) <= images.MAX_STROKE + 1
    assert (thinned[radius < 14] == 0).all() and thinned[40, 40 + 25] == 1.0  # a wider hole, the ring kept


@pytest.mark.parametrize('pen', [2, 4, 28])
def test_the_pen_width_hardly_changes_the_digit(pen):
    """The same 7 written with a 2, 4 or 28 px pen on a 280 px pad carries about the ink of the 16 px one
    (without thickening, a 2 px pen's digit had a seventh of it: a faint trace)."""
    seven = [[(85, 55), (200, 55), (120, 235)]]
    render = drawing.render_strokes
    mass = {width: images.to_mnist(render(seven, width)).astype(float).sum() for width in (pen, 16)}
    assert 0.5 < mass[pen] / mass[16] < 2, mass


def test_a_faint_or_empty_candidate_digit_becomes_a_frame_not_an_error():
    """The reader tries parts of a number as digits; a part with only faint ink (a halo between two digits)
    must come out as a 28x28 frame that the model reads unsure, never as an exception."""
    faint = images.ink_to_mnist(np.full((12, 6), 0.1, np.float32))
    assert faint.shape == (28, 28) and 0 < faint.max() < 64
    assert not images.ink_to_mnist(np.zeros((12, 6), np.float32)).any()


def test_resize_computes_what_tensorflows_resize_computes():
    """images.resize (numpy, so that a LiteRT reader needs no TensorFlow) against tf.image.resize with the
    methods it replaced: area when shrinking, bilinear with antialias when growing; random sizes both ways."""
    import tensorflow as tf
    rng = np.random.default_rng(0)
    for _ in range(60):
        image = rng.random(rng.integers(1, 120, 2)).astype(np.float32)
        size = tuple(int(s) for s in rng.integers(1, 100, 2))
        shrink = size[0] < image.shape[0] or size[1] < image.shape[1]
        want = tf.image.resize(image[..., None], size, method='area' if shrink else 'bilinear', antialias=True)
        np.testing.assert_allclose(images.resize(image, size), want.numpy()[..., 0], atol=1e-4)
