"""digits.data.arrays: the IDX and npz readers, their checks, the checked download, held-out splits."""
import dataclasses
import gzip
import hashlib
import os

import numpy as np
import pytest
from conftest import IDX_NAMES, TINY_TRAIN, idx_bytes, make_digits, write_idx_dir

from digits.data import arrays, datasets
from digits.errors import DigitsError

# ------------------------------------------------------------------------------------------ loader paths

def write_npz(path, train=None, test=None, **overrides):
    (x_train, y_train), (x_test, y_test) = train or make_digits(50, 3), test or make_digits(30, 4)
    columns = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    columns.update(overrides)
    np.savez(path, **columns)
    return str(path)


@pytest.mark.parametrize('compress', [True, False])
def test_load_idx_gzip_and_raw(tmp_path, compress):
    train, test = make_digits(40, 5), make_digits(20, 6)
    data = arrays.load('mnist', write_idx_dir(tmp_path, compress, train, test))
    np.testing.assert_array_equal(data.train.images, train[0])
    np.testing.assert_array_equal(data.train.labels, train[1])
    np.testing.assert_array_equal(data.test.images, test[0])
    assert data.test.labels.dtype == np.uint8 and len(data.test) == 20


def test_load_npz(tmp_path):
    train, test = make_digits(50, 3), make_digits(30, 4)
    write_npz(tmp_path / 'mnist.npz', train, test)
    data = arrays.load('mnist', str(tmp_path))
    np.testing.assert_array_equal(data.train.images, train[0])
    np.testing.assert_array_equal(data.test.labels, test[1])


def test_fashion_mnist_reads_its_own_npz_name(tmp_path):
    write_npz(tmp_path / 'fashion_mnist.npz')
    assert len(arrays.load('fashion_mnist', str(tmp_path)).train) == 50
    with pytest.raises(DigitsError, match='nor mnist.npz'):
        arrays.load('mnist', str(tmp_path))


def test_gzip_is_detected_by_content_not_name(tmp_path):
    write_idx_dir(tmp_path, compress=False)
    path = tmp_path / IDX_NAMES[1]
    path.write_bytes(gzip.compress(path.read_bytes()))  # gzip data under the raw name
    assert len(arrays.load('mnist', str(tmp_path)).train) == TINY_TRAIN


def test_missing_files_name_what_is_missing(tmp_path):
    write_idx_dir(tmp_path)
    os.remove(tmp_path / (IDX_NAMES[2] + '.gz'))
    with pytest.raises(DigitsError, match=r'missing: t10k-images-idx3-ubyte\[\.gz\]'):
        arrays.load('mnist', str(tmp_path))


def test_data_dir_must_exist(tmp_path):
    with pytest.raises(DigitsError, match=r'--data_dir \(.*nope\) is not a directory'):
        arrays.load('mnist', str(tmp_path / 'nope'))


def corrupt(tmp_path, name, raw):
    """A tiny IDX folder whose file `name` holds `raw` (uncompressed)."""
    write_idx_dir(tmp_path, compress=False)
    (tmp_path / name).write_bytes(raw)
    return str(tmp_path)


IMAGES, LABELS = IDX_NAMES[0], IDX_NAMES[1]
TRAIN_IMAGES = make_digits(TINY_TRAIN, 1)[0]


@pytest.mark.parametrize('name,raw,message', [
    (IMAGES, b'\x08\x03\x00\x00' + idx_bytes(TRAIN_IMAGES)[4:], 'not an IDX file'),
    (IMAGES, b'', 'not an IDX file'),
    (IMAGES, b'\x00\x00\x0d\x03' + idx_bytes(TRAIN_IMAGES)[4:], 'data type 0x0d is not unsigned byte'),
    (IMAGES, idx_bytes(np.zeros((TINY_TRAIN, 32, 32), np.uint8)), r'shape \(640, 32, 32\), expected'),
    (IMAGES, idx_bytes(np.zeros((TINY_TRAIN, 784), np.uint8)), r'expected \[N, 28, 28\]'),
    (IMAGES, idx_bytes(TRAIN_IMAGES)[:-100], 'truncated'),
    (IMAGES, idx_bytes(TRAIN_IMAGES)[:10], 'truncated IDX header'),
    (IMAGES, idx_bytes(TRAIN_IMAGES) + b'\x00' * 7, '7 unexpected bytes after the data'),
    (IMAGES, idx_bytes(TRAIN_IMAGES[:-1]), 'has 639 images but .* has 640 labels'),
    (LABELS, idx_bytes(np.full(TINY_TRAIN, 10, np.uint8)), 'label 10 at index 0 is not a class 0-9'),
    (LABELS, idx_bytes(np.zeros((TINY_TRAIN, 2), np.uint8)), 'expected a vector'),
])
def test_idx_validation_errors_name_file_and_problem(tmp_path, name, raw, message):
    with pytest.raises(DigitsError, match=message) as e:
        arrays.load('mnist', corrupt(tmp_path, name, raw))
    assert name in str(e.value) and '\n' not in str(e.value)


def test_corrupt_gzip_is_an_error(tmp_path):
    write_idx_dir(tmp_path)
    path = tmp_path / (IMAGES + '.gz')
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DigitsError, match=f'{IMAGES}.gz: cannot read'):
        arrays.load('mnist', str(tmp_path))


@pytest.mark.parametrize('overrides,message', [
    (dict(x_train=np.zeros((50, 28, 28), np.float32)), r'x_train\]: images are float32'),
    (dict(y_test=np.full(30, 11)), r'y_test\]: label 11'),
    (dict(x_test=np.zeros((29, 28, 28), np.uint8)), 'has 29 images but .* has 30 labels'),
])
def test_npz_validation_errors(tmp_path, overrides, message):
    with pytest.raises(DigitsError, match=message):
        arrays.load('mnist', os.path.dirname(write_npz(tmp_path / 'mnist.npz', **overrides)))


def test_npz_missing_array(tmp_path):
    np.savez(tmp_path / 'mnist.npz', x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DigitsError, match="missing array 'y_train'"):
        arrays.load('mnist', str(tmp_path))


def serve_mnist_npz(tmp_path, monkeypatch, corrupt_bytes=False):
    """A file:// 'server' holding mnist.npz, with MNIST's spec pointing at its real sha256."""
    origin = tmp_path / 'origin'
    origin.mkdir()
    path = write_npz(origin / 'mnist.npz')
    digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    if corrupt_bytes:
        with open(path, 'ab') as f:
            f.write(b'tampered')
    monkeypatch.setitem(datasets.DATASETS, 'mnist', dataclasses.replace(datasets.MNIST, files=(('mnist.npz', digest),)))
    return origin.as_uri() + '/'


def test_download_verifies_checksum_and_caches(tmp_path, monkeypatch):
    base = serve_mnist_npz(tmp_path, monkeypatch)
    data = arrays.load('mnist', None, base_url=base, cache_dir=str(tmp_path / 'cache'))
    assert len(data.train) == 50
    assert os.path.isfile(tmp_path / 'cache' / 'datasets' / 'mnist.npz')


def test_download_with_bad_checksum_fails_with_data_dir_hint(tmp_path, monkeypatch):
    base = serve_mnist_npz(tmp_path, monkeypatch, corrupt_bytes=True)
    with pytest.raises(DigitsError, match=r'could not download mnist .*pass --data_dir=DIR') as e:
        arrays.load('mnist', None, base_url=base, cache_dir=str(tmp_path / 'cache'))
    assert '\n' not in str(e.value)


def test_download_unreachable_fails_with_data_dir_hint(tmp_path):
    with pytest.raises(DigitsError, match='could not download fashion_mnist .*--data_dir'):
        arrays.load('fashion_mnist', None, base_url='http://127.0.0.1:9/', cache_dir=str(tmp_path))


def test_hold_out_is_disjoint_and_seeded():
    split = arrays.Split(np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8),
                       np.arange(100, dtype=np.uint8) % 10)
    train, held = arrays.hold_out(split, 0.2, seed=0)
    assert len(train) == 80 and len(held) == 20
    assert not set(train.images[:, 0, 0]) & set(held.images[:, 0, 0])
    np.testing.assert_array_equal(held.images, arrays.hold_out(split, 0.2, seed=0)[1].images)
    with pytest.raises(DigitsError, match='validation_split'):
        arrays.hold_out(split, 0.001, seed=0)
