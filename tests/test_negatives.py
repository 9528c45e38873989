"""digits.training.negatives: the marks that teach a model to refuse what is not a digit, and their place in
training."""
import numpy as np

from digits.data import arrays
from digits.training import negatives


def test_negatives_are_mnist_style_deterministic_and_of_every_kind(real_data_dir):
    digits = arrays.load('mnist_10k', real_data_dir).train.images[:200]
    marks = negatives.make_negatives(digits, 30, seed=3)
    assert marks.shape == (30, 28, 28) and marks.dtype == np.uint8
    np.testing.assert_array_equal(marks, negatives.make_negatives(digits, 30, seed=3))
    assert not np.array_equal(marks, negatives.make_negatives(digits, 30, seed=4))
    assert (marks.max(axis=(1, 2)) > 200).all()  # every mark has ink, fitted as the reader fits digits
    # Each kind lands where ink_to_mnist puts a digit: the centre of mass near MNIST's pixel (14, 14).
    rows, cols = np.indices((28, 28))
    mass = marks.sum(axis=(1, 2)).astype(float)
    for grid in (rows, cols):
        np.testing.assert_allclose((marks * grid).sum(axis=(1, 2)) / mass, 14, atol=1.5)


def test_every_kind_makes_ink_of_its_own():
    rng, digits = np.random.default_rng(0), np.zeros((2, 28, 28), np.uint8)
    digits[:, 4:24, 12:16] = 255  # two bars: a pair of them is two bars side by side
    glyph = negatives.font_glyph(negatives.TRAIN_FONTS, rng, 'A')
    pair = negatives.digit_pair(digits, rng)
    assert glyph.max() > 0.9 and negatives.scribble(rng).max() > 0.9
    assert pair.shape[1] - pair.shape[0] > 12  # wider than tall: two digits side by side
    columns_with_ink = np.nonzero((pair > 0.5).any(axis=0))[0]
    assert np.diff(columns_with_ink).max() > 1  # two bars with paper between them


def test_with_negatives_appends_marks_labelled_with_the_number_of_classes():
    split = arrays.Split(np.random.default_rng(0).integers(0, 255, (40, 28, 28), dtype=np.uint8),
                       np.arange(40, dtype=np.uint8) % 10)
    grown = negatives.with_negatives(split, 0.25, seed=0, num_classes=10)
    assert len(grown) == 50
    np.testing.assert_array_equal(grown.images[:40], split.images)
    np.testing.assert_array_equal(grown.labels, np.concatenate([split.labels, np.full(10, 10)]))
    assert negatives.with_negatives(split, 0.0, seed=0, num_classes=10) is split


def test_held_out_glyphs_are_every_glyph_in_every_held_out_font():
    marks, names = negatives.glyph_marks(negatives.HELD_OUT_FONTS[:2], seed=0)
    assert marks.shape == (2 * len(negatives.GLYPHS), 28, 28)
    assert names == list(negatives.GLYPHS) * 2
    assert not set(negatives.HELD_OUT_FONTS) & set(negatives.TRAIN_FONTS)
    assert not set(negatives.GLYPHS) & set('0123456789')
