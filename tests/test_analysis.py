"""digits.reporting.analysis: confusion, per-class figures, worst mistakes and calibration on known predictions."""
import numpy as np
import pytest
import tensorflow as tf

from digits.data import arrays, datasets
from digits.reporting import analysis


def one_hot_probs(predicted, confidence):
    """Probabilities putting `confidence` on the predicted class and the rest spread evenly."""
    probs = np.full((len(predicted), 10), 0.0)
    for i, (k, c) in enumerate(zip(predicted, confidence)):
        probs[i] = (1 - c) / 9
        probs[i, k] = c
    return probs


def test_confusion_precision_recall():
    labels = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2])
    result = analysis.Analysis(one_hot_probs(predicted, [0.9] * 6), labels)
    cm = result.confusion()
    assert cm[0, 0] == 1 and cm[0, 1] == 1 and cm[1, 1] == 2 and cm[1, 2] == 1 and cm[2, 2] == 1
    assert cm.sum() == 6 and result.accuracy == pytest.approx(4 / 6)
    precision, recall = result.precision_recall()
    assert precision[:3] == pytest.approx([1.0, 2 / 3, 0.5]) and recall[:3] == pytest.approx([0.5, 2 / 3, 1.0])
    assert precision[5] == 0 and recall[5] == 0  # a class absent from both


def test_worst_errors_are_the_most_confident_mistakes():
    labels = np.array([3, 3, 3, 3])
    predicted = np.array([3, 5, 6, 7])
    result = analysis.Analysis(one_hot_probs(predicted, [0.99, 0.6, 0.95, 0.8]), labels)
    assert list(result.worst_errors(2)) == [2, 3]
    assert list(result.worst_errors(10)) == [2, 3, 1]


def test_calibration_bins_and_ece():
    labels = np.array([1, 1, 1, 1])
    predicted = np.array([1, 1, 2, 2])  # two right, two wrong, all at confidence 0.95
    mean_conf, accuracy, counts, ece = analysis.Analysis(one_hot_probs(predicted, [0.95] * 4), labels).calibration()
    assert counts[9] == 4 and counts[:9].sum() == 0
    assert mean_conf[9] == pytest.approx(0.95) and accuracy[9] == pytest.approx(0.5)
    assert ece == pytest.approx(0.45)


def test_figures_render_to_png():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 50)
    result = analysis.Analysis(rng.dirichlet(np.ones(10), 50), labels)
    images = rng.integers(0, 256, (50, 28, 28)).astype(np.uint8)
    names = datasets.FASHION_MNIST.class_names
    for figure in (analysis.confusion_figure(result.confusion(), names), analysis.errors_figure(result, images, names),
                   analysis.per_class_figure(result, names), analysis.reliability_figure(result)):
        png = analysis.to_png(figure)
        assert png.startswith(b'\x89PNG') and len(png) > 5000


def test_analyze_counts_every_example_in_batches_with_a_remainder():
    rng = np.random.default_rng(1)
    split = arrays.Split(rng.integers(0, 256, (203, 28, 28)).astype(np.uint8),
                       rng.integers(0, 10, 203).astype(np.uint8))
    weights = tf.constant(rng.normal(size=(784, 10)), tf.float32)
    logits_fn = lambda images: tf.reshape(images, [-1, 784]) @ weights  # noqa: E731
    result = analysis.analyze(logits_fn, split, 64)  # batches of 64, 64, 64 and 11
    expected = (split.images.reshape(-1, 784) / 255.0) @ weights.numpy()
    assert len(result.labels) == 203 and (result.predicted == expected.argmax(1)).mean() > 0.99
    np.testing.assert_allclose(result.probabilities.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(result.labels, split.labels)
