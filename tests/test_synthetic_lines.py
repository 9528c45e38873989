"""digits.data.synthetic_lines: training lines composed on the fly, a pure function of (seed, step, row)."""
import numpy as np
from conftest import make_digits

from digits.data import arrays, synthetic_lines
from digits.data.line_format import HEIGHT, MAX_DIGITS, NOT_A_DIGIT, PAD, WIDTH
from digits.reading import segment
from digits.training import distribute


def sources(marks: int = 0) -> arrays.Split:
    """Tiny digits, then `marks` marks (solid squares) labelled NOT_A_DIGIT."""
    images, labels = make_digits(200, 3)
    square = np.zeros((marks, 28, 28), np.uint8)
    square[:, 8:20, 8:20] = 255
    return arrays.Split(np.concatenate([images, square]),
                        np.concatenate([labels.astype(np.int32), np.full(marks, NOT_A_DIGIT, np.int32)]))


def first_batches(dataset, count: int) -> list:
    iterator = iter(dataset)
    return [tuple(t.numpy() for t in next(iterator)) for _ in range(count)]


def test_a_batch_is_lines_with_their_digits_left_to_right_then_padding():
    images, labels = first_batches(synthetic_lines.train_dataset(sources(), 64, seed=0), 1)[0]
    assert images.shape == (64, HEIGHT, WIDTH, 1) and labels.shape == (64, MAX_DIGITS)
    assert images.min() >= 0 and images.max() <= 1 and np.allclose(images.max(axis=(1, 2, 3)), 1)
    lengths = (labels != PAD).sum(axis=1)
    assert lengths.min() >= 1 and lengths.max() > 5
    for row, n in zip(labels, lengths):
        assert (row[:n] != PAD).all() and (row[n:] == PAD).all()  # the digits, then only padding
        assert set(row[:n]) <= set(range(10))  # no marks among the sources: none in a label


def test_every_digit_of_a_label_is_written_in_its_place():
    """The tiny set's digits are solid blocks: each line's ink is as many pieces as its label has digits,
    fewer where digits written fast touch, never more."""
    made = synthetic_lines.fixed_lines(sources(), 300, seed=1)
    images, labels = made.images, made.labels
    counts = [segment.label_components(image > 128)[1] for image in images]
    lengths = (labels != PAD).sum(axis=1)
    assert np.mean(np.array(counts) <= lengths) == 1.0  # touching digits join; nothing is added
    assert np.mean(np.array(counts) == lengths) > 0.3  # the spaced half keep their digits apart


def test_marks_are_written_and_labelled_as_not_a_digit():
    labels = synthetic_lines.fixed_lines(sources(marks=20), 1000, seed=0).labels
    share = (labels == NOT_A_DIGIT).sum() / (labels != PAD).sum()
    assert 0.5 * synthetic_lines.MARK_SHARE < share < 2 * synthetic_lines.MARK_SHARE


def test_lines_are_a_pure_function_of_seed_and_step():
    split = sources(marks=5)
    again = first_batches(synthetic_lines.train_dataset(split, 32, seed=4), 3)
    resumed = first_batches(synthetic_lines.train_dataset(split, 32, seed=4, start_step=2), 1)
    assert all(np.array_equal(a, b) for a, b in zip(again[2], resumed[0]))
    other = first_batches(synthetic_lines.train_dataset(split, 32, seed=5), 1)
    assert not np.array_equal(again[0][0], other[0][0])


def test_two_replicas_see_the_rows_of_the_one_replica_batch():
    split = sources()
    [(images, labels)] = first_batches(synthetic_lines.train_dataset(split, 32, seed=2), 1)
    strategy = distribute.create_mirrored_strategy(2)
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: synthetic_lines.train_dataset(split, 32, seed=2, input_context=ctx))
    parts = next(iter(dataset))
    rows = [np.concatenate([t.numpy() for t in strategy.experimental_local_results(part)]) for part in parts]
    np.testing.assert_allclose(rows[0], images, atol=1e-6)
    np.testing.assert_array_equal(rows[1], labels)


def test_ink_boxes_bound_each_images_ink():
    image = np.zeros((2, 28, 28), np.uint8)
    image[0, 5:9, 10:20] = 255
    boxes = synthetic_lines.ink_boxes(image)
    np.testing.assert_array_equal(boxes[0], [10, 5, 20, 9])
    np.testing.assert_array_equal(boxes[1], [0, 0, 28, 28])  # blank: the whole frame
