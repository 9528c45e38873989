"""Datasets as arrays: IDX / npz readers, download with checksum, validation; no TensorFlow.

Arrays stay uint8 in memory ([N, 28, 28] images, [N] labels: datasets.DatasetSpec says each dataset's
shape); the pipelines gather batches from them by index. The training order is a pure function of
(seed, step): each epoch is a stateless permutation, so the input position never needs checkpointing
and every replica layout sees the same global batches. TensorFlow is imported by the pipeline functions
only: reading the arrays (a LiteRT file's evaluation) needs none.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import zlib

import numpy as np

from digits.data.datasets import DATASETS, DatasetSpec
from digits.errors import DigitsError, first_line

IDX_NAMES = {
    'train_images': 'train-images-idx3-ubyte',
    'train_labels': 'train-labels-idx1-ubyte',
    'test_images': 't10k-images-idx3-ubyte',
    'test_labels': 't10k-labels-idx1-ubyte',
}
_UNSIGNED_BYTE = 0x08  # IDX type code of every MNIST file.
_GZIP_MAGIC = b'\x1f\x8b'


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: uint8 images [N, height, width] and uint8 labels [N]."""
    images: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class Arrays:
    """A dataset's training and test splits."""
    train: Split
    test: Split


# ---------------------------------------------------------------------------------------------- reading

def load(dataset: str, data_dir: str | None = None, base_url: str | None = None,
         cache_dir: str | None = None) -> Arrays:
    """Reads dataset (a datasets.DATASETS name) from data_dir; without one, from the files bundled with
    digits or by download (checksum-verified) from base_url (default: the dataset's own source)."""
    spec = DATASETS[dataset]
    if data_dir is None:
        if spec.bundled:
            return read_bundled(spec)
        return download(spec, base_url or spec.base_url, cache_dir)
    if not os.path.isdir(data_dir):
        raise DigitsError(f'--data_dir ({data_dir}) is not a directory')
    idx_paths = {key: find_idx_file(data_dir, name) for key, name in IDX_NAMES.items()}
    if all(idx_paths.values()):
        return read_idx_arrays(idx_paths, spec)
    npz_path = os.path.join(data_dir, spec.npz_name)
    if os.path.isfile(npz_path):
        return read_npz(npz_path, spec)
    missing = ', '.join(f'{IDX_NAMES[k]}[.gz]' for k, p in idx_paths.items() if not p)
    raise DigitsError(f'--data_dir ({data_dir}) has neither the four IDX files (missing: {missing}) '
                      f'nor {spec.npz_name}')


def source_of(dataset: str, data_dir: str | None = None) -> str:
    """Where load(dataset, data_dir) reads from, for a run's first line and its results.json."""
    spec = DATASETS[dataset]
    if data_dir is not None:
        return f'read from {os.path.abspath(data_dir)}'
    return f'{spec.description}, ' + ('bundled with digits' if spec.bundled else f'downloaded from {spec.base_url}')


def read_bundled(spec: DatasetSpec) -> Arrays:
    """The IDX files that ship inside the package, each checked against its MD5 first."""
    paths = {}
    for fname, md5 in spec.files:
        path = os.path.join(spec.bundled_dir, fname)
        if not os.path.isfile(path) or hashlib.md5(read_raw(path)).hexdigest() != md5:
            raise DigitsError(f'{path}: missing or corrupt (MD5 is not {md5}); reinstall digits, or pass '
                              f'--data_dir=DIR with the four IDX files')
        paths[fname] = path
    return read_idx_arrays({key: paths[name + '.gz'] for key, name in IDX_NAMES.items()}, spec)


def read_raw(path: str) -> bytes:
    """A file's bytes as stored (a one-line error if unreadable)."""
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        raise DigitsError(f'{path}: cannot read: {e.strerror}') from None


def find_idx_file(data_dir: str, name: str) -> str | None:
    """Returns the path of `name` or `name.gz` in data_dir, or None."""
    for candidate in (name + '.gz', name):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def read_idx_arrays(paths: dict, spec: DatasetSpec) -> Arrays:
    """Reads and cross-checks the four IDX files named by IDX_NAMES' keys, as images and labels of spec."""
    arrays = {key: read_idx(path) for key, path in paths.items()}
    splits = {}
    for split in ('train', 'test'):
        images, labels = arrays[f'{split}_images'], arrays[f'{split}_labels']
        check_images(images, paths[f'{split}_images'], spec)
        check_labels(labels, paths[f'{split}_labels'], spec)
        check_counts(images, labels, paths[f'{split}_images'], paths[f'{split}_labels'])
        splits[split] = Split(images, labels)
    return Arrays(**splits)


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (gzip-compressed or not) into a uint8 array; raises DigitsError if malformed."""
    raw = read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DigitsError(f'{path}: not an IDX file (bad magic number {raw[:4].hex() or "<empty>"})')
    if raw[2] != _UNSIGNED_BYTE:
        raise DigitsError(f'{path}: IDX data type 0x{raw[2]:02x} is not unsigned byte (0x08)')
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DigitsError(f'{path}: truncated IDX header ({len(raw)} bytes)')
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(raw) - header_size
    if actual < expected:
        raise DigitsError(f'{path}: truncated: header says shape {shape} ({expected} bytes), '
                          f'file has {actual} bytes of data')
    if actual > expected:
        raise DigitsError(f'{path}: {actual - expected} unexpected bytes after the data of shape {shape}')
    return np.frombuffer(raw, np.uint8, offset=header_size).reshape(shape)


def read_bytes(path: str) -> bytes:
    """Returns the file's bytes, decompressed if it is gzip (detected by content, not by name)."""
    raw = read_raw(path)
    try:
        return gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw
    except (EOFError, zlib.error) as e:
        raise DigitsError(f'{path}: cannot read: {e}') from None


def read_npz(path: str, spec: DatasetSpec) -> Arrays:
    """Reads a Keras-style npz (x_train, y_train, x_test, y_test) and validates it like IDX data."""
    keys = ('x_train', 'y_train', 'x_test', 'y_test')
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [key for key in keys if key not in f.files]
            if missing:
                raise DigitsError(f'{path}: missing array {missing[0]!r} (expected {", ".join(keys)})')
            arrays = {key: f[key] for key in keys}
    except (OSError, ValueError, zlib.error) as e:
        raise DigitsError(f'{path}: cannot read npz: {e}') from None
    splits = {}
    for split in ('train', 'test'):
        images, labels = arrays[f'x_{split}'], arrays[f'y_{split}']
        name = f'{path}[x_{split}]'
        if images.dtype != np.uint8:
            raise DigitsError(f'{name}: images are {images.dtype}, expected uint8')
        check_images(images, name, spec)
        labels = check_labels(labels, f'{path}[y_{split}]', spec)
        check_counts(images, labels, name, f'{path}[y_{split}]')
        splits[split] = Split(images, labels)
    return Arrays(**splits)


def check_images(images: np.ndarray, name: str, spec: DatasetSpec):
    """Raises DigitsError unless images is [N, height, width] of spec.image_shape."""
    if images.ndim != 3 or images.shape[1:] != spec.image_shape:
        expected = ', '.join(map(str, spec.image_shape))
        raise DigitsError(f'{name}: images have shape {images.shape}, expected [N, {expected}]')


def check_labels(labels: np.ndarray, name: str, spec: DatasetSpec) -> np.ndarray:
    """Raises DigitsError unless labels is a vector of class indices of spec; returns them as uint8."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DigitsError(f'{name}: labels have shape {labels.shape} and dtype {labels.dtype}, '
                          'expected a vector of integers')
    bad = np.flatnonzero((labels < 0) | (labels >= spec.num_classes))
    if bad.size:
        raise DigitsError(f'{name}: label {labels[bad[0]]} at index {bad[0]} is not a class 0-{spec.num_classes - 1} '
                          f'({bad.size} bad labels)')
    return labels.astype(np.uint8)


def check_counts(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str):
    """Raises DigitsError unless there is one label per image."""
    if len(images) != len(labels):
        raise DigitsError(f'{images_name} has {len(images)} images but {labels_name} has '
                          f'{len(labels)} labels')
    if len(images) == 0:
        raise DigitsError(f'{images_name}: no images')


def download(spec: DatasetSpec, base_url: str, cache_dir: str | None = None) -> Arrays:
    """Downloads spec's files into the Keras cache (~/.keras/<cache_subdir>), verifying each checksum."""
    import keras  # Deferred: only the download path needs Keras' file cache.
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)  # Keras falls back to /tmp/.keras if it does not exist.
    paths = {}
    for fname, file_hash in spec.files:
        origin = base_url + fname
        try:
            paths[fname] = keras.utils.get_file(fname, origin=origin, file_hash=file_hash,
                                                cache_subdir=spec.cache_subdir, cache_dir=cache_dir)
        except Exception as e:  # get_file raises bare Exception for URL, HTTP and checksum errors.
            raise DigitsError(f'could not download {spec.name} from {origin} ({first_line(e)}); download the '
                              f'files elsewhere and pass --data_dir=DIR (four IDX files, or {spec.npz_name})') from None
    if spec.npz_name in paths:
        return read_npz(paths[spec.npz_name], spec)
    return read_idx_arrays({key: paths[name + '.gz'] for key, name in IDX_NAMES.items()}, spec)


def hold_out(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Splits off a seeded random `fraction` of `split` for validation: returns (train, validation)."""
    order = np.random.default_rng(seed).permutation(len(split))
    num_held = int(round(len(split) * fraction))
    if num_held == 0 or num_held == len(split):
        raise DigitsError(f'--validation_split ({fraction}) leaves no training or no validation examples '
                          f'from {len(split)}')
    held, kept = np.sort(order[:num_held]), np.sort(order[num_held:])
    return Split(split.images[kept], split.labels[kept]), Split(split.images[held], split.labels[held])


# -------------------------------------------------------------------------------------------- pipelines

def check_batch_fits(split: Split, global_batch: int):
    """Training drops partial batches, so a batch larger than the training set would never run."""
    if global_batch > len(split):
        raise DigitsError(f'--batch_size ({global_batch}) is larger than the training set ({len(split)} examples)')


