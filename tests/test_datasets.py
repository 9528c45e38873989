"""digits.data.datasets: the registry, and that a new dataset is one entry (nothing assumes 10 classes or 28x28)."""
import dataclasses
import os

import numpy as np
import pytest
from conftest import idx_bytes, smoke_config

from digits import config
from digits.config import EvalConfig
from digits.data import arrays, datasets
from digits.errors import DigitsError
from digits.training import evaluation, experiment

# A dataset that is not MNIST-shaped: 4 classes of 20x24 images, class k a bright block in column k.
SHAPES = datasets.DatasetSpec(name='shapes', description='shapes: 4 classes', class_names=('a', 'b', 'c', 'd'),
                              files=(), cache_subdir='shapes', image_shape=(20, 24))


def make_shapes(n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 4).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, 20, 24)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 4:16, 2 + 6 * k:6 + 6 * k] = 255
    return images, labels


def write_shapes(directory) -> str:
    for name, array in zip(arrays.IDX_NAMES.values(), (*make_shapes(256, 1), *make_shapes(60, 2))):
        with open(os.path.join(directory, name), 'wb') as f:
            f.write(idx_bytes(array))
    return str(directory)


def test_sources_are_keras_standard_files():
    assert datasets.KERAS_BASE == 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/'
    assert datasets.MNIST.files == (('mnist.npz', '731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1'),)
    assert sorted(name for name, _ in datasets.FASHION_MNIST.files) == sorted(
        name + '.gz' for name in arrays.IDX_NAMES.values())


def test_the_flags_offer_exactly_the_registered_datasets():
    field = next(f for f in config.TRAIN_FIELDS if f.name == 'dataset')
    assert field.metadata['choices'] == tuple(datasets.DATASETS) == ('mnist_10k', 'mnist', 'fashion_mnist')
    assert field.default == datasets.DEFAULT == 'mnist_10k'
    assert all(spec.num_classes == 10 and spec.image_shape == (28, 28) for spec in datasets.DATASETS.values())


def test_the_default_data_ships_with_digits_and_is_verified(tmp_path, monkeypatch):
    """mnist_10k needs no download: 10,000 training images (about 1,000 a digit) and MNIST's official test set,
    each file checked against its MD5; a corrupt copy is refused in one line."""
    data = arrays.load('mnist_10k')
    assert len(data.train) == len(data.test) == 10000
    assert np.bincount(data.train.labels).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert arrays.source_of('mnist_10k') == ("MNIST's 10,000-image training subset and official test set, "
                                            'bundled with digits')
    assert arrays.source_of('mnist') == ("MNIST's full 60,000-image training set and official test set, "
                                        f'downloaded from {datasets.KERAS_BASE}')
    assert 'CC BY-SA 3.0' in open(os.path.join(datasets.MNIST_10K.bundled_dir, 'README.md')).read()
    copy = tmp_path / 'mnist_10k'
    copy.mkdir()
    for name, _ in datasets.MNIST_10K.files:
        raw = open(os.path.join(datasets.MNIST_10K.bundled_dir, name), 'rb').read()
        (copy / name).write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]) if name.startswith('t10k-labels') else raw)
    monkeypatch.setattr(datasets, 'BUNDLED_ROOT', str(tmp_path))
    with pytest.raises(DigitsError, match=r't10k-labels-idx1-ubyte.gz: missing or corrupt \(MD5 is not ec29'):
        arrays.load('mnist_10k')


def test_a_new_dataset_is_one_entry(tmp_path, monkeypatch):
    """Registered, a 4-class 20x24 dataset loads, trains, exports, evaluates and reports end to end."""
    monkeypatch.setitem(datasets.DATASETS, 'shapes', SHAPES)
    data_dir = write_shapes(tmp_path)
    cfg = dataclasses.replace(smoke_config(str(tmp_path), data_dir, arch='cnn', train_steps=40), dataset='shapes',
                              negatives=None)  # None: the dataset's own (none: not digits)
    results = experiment.train_and_evaluate(cfg, log=lambda line: None)
    assert results['test_examples'] == 60 and results['test_accuracy'] > 0.9
    report = tmp_path / 'report'
    metrics = evaluation.evaluate_saved(EvalConfig(model=cfg.export_dir, dataset='shapes', data_dir=data_dir,
                                                   report_dir=str(report)), log=lambda line: None)
    assert metrics['accuracy'] == results['test_accuracy']
    assert '| d |' in (report / 'report.md').read_text()  # its own class names
    from_run = evaluation.evaluate_saved(EvalConfig(run_dir=cfg.run_dir, data_dir=data_dir), log=lambda line: None)
    assert from_run['accuracy'] == results['test_accuracy']
