"""Datasets: IDX / npz readers, download with checksum, validation, and tf.data pipelines.

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

from digits.datasets import DATASETS, DatasetSpec
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


PARALLEL_CALLS = os.cpu_count() or 1  # batches made at once by a pipeline's map
PREFETCH = 2  # batches made ahead of the step that takes them


MEMBER_STREAM = 104729  # offsets each ensemble member's seed from the previous member's


def train_dataset_for(config, split: Split, *, start_step: int = 0,
                      input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """train_dataset with a digits.config.TrainConfig's batch, seed and augmentation.

    With --ensemble, one batch per member: images [b, members, h, w, 1], labels [b, members]. Member i
    has the seed seed + i * MEMBER_STREAM, so its own order and augmentation (member 0's batches are
    those of a single model): members that see the same batches make more of the same mistakes.
    """
    import tensorflow as tf
    augment_steps = round(config.augment_until * config.total_steps(len(split)))
    members = [train_dataset(split, config.batch_size, config.seed + i * MEMBER_STREAM, config.augment,
                             strength=config.augment_strength, blur=config.blur, flip=config.flip,
                             augment_steps=augment_steps, start_step=start_step, input_context=input_context)
               for i in range(config.ensemble)]
    if config.ensemble == 1:
        return members[0]
    stacked = tf.data.Dataset.zip(tuple(members)).map(
        lambda *batches: tuple(tf.stack(parts, axis=1) for parts in zip(*batches)))
    return with_fixed_parallelism(stacked)


def train_dataset(split: Split, global_batch: int, seed: int, augment: bool, *, strength: float = 1.0,
                  blur: float = 0.0, flip: float = 0.0, augment_steps: int = 2**62, start_step: int = 0,
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Endless (images [b, h, w, 1] float32 in [0, 1], labels [b] int32) per-replica batches.

    augment: random affine transforms, their ranges scaled by strength (1: random_affine's); blur: the
    fraction of images also blurred (random_blur); flip: the fraction mirrored left-right (random_flip).
    Only steps before augment_steps are augmented; later ones get the images as they are.

    Global batch `step` holds examples [step * global_batch, (step + 1) * global_batch) of the
    concatenated per-epoch permutations; each input pipeline / replica takes its own rows of it.
    """
    import tensorflow as tf
    n = len(split)
    check_batch_fits(split, global_batch)
    first = start_step * global_batch
    indices = (tf.data.Dataset.range(first // n, 2**62)
               .flat_map(lambda epoch: tf.data.Dataset.from_tensor_slices(epoch_permutation(n, seed, epoch)))
               .skip(first % n)
               .batch(global_batch, drop_remainder=True))
    batches = shard_global_batches(indices.enumerate(start_step), global_batch, input_context)
    images, labels = tf.constant(split.images), tf.constant(split.labels)

    def augment_images(x, step, row):
        # Parameters for the whole global batch, sliced to this replica's rows: the augmentation of an
        # example depends only on (seed, step, position), not on the replica layout.
        rows = slice(row, row + tf.shape(x)[0])
        if augment:
            params = tf.random.stateless_uniform([global_batch, 4], seed=[seed, step], minval=-1, maxval=1)
            x = random_affine(x, strength * params[rows])
        if blur:
            params = tf.random.stateless_uniform([global_batch, 2], seed=[seed + BLUR_STREAM, step])
            x = random_blur(x, params[rows], blur)
        if flip:
            params = tf.random.stateless_uniform([global_batch], seed=[seed + FLIP_STREAM, step])
            x = random_flip(x, params[rows], flip)
        return x

    def make_batch(step, row, idx):
        x = to_float(tf.gather(images, idx))
        if augment or blur or flip:
            x = tf.cond(step < augment_steps, lambda: augment_images(x, step, row), lambda: x)
        return x, tf.cast(tf.gather(labels, idx), tf.int32)

    return with_fixed_parallelism(batches.map(make_batch, num_parallel_calls=PARALLEL_CALLS).prefetch(PREFETCH))


def eval_dataset(split: Split, global_batch: int,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """(images, labels, weights [b] float32) per-replica batches covering every example exactly once.

    The split is padded to whole global batches so that every replica gets a full batch; padding rows
    carry weight 0, so sums weighted by `weights` count each real example once, whatever the layout.
    """
    import tensorflow as tf
    n = len(split)
    padded = -(-n // global_batch) * global_batch
    images = tf.constant(np.concatenate([split.images, np.zeros((padded - n,) + split.images.shape[1:], np.uint8)]))
    labels = tf.constant(np.concatenate([split.labels, np.zeros(padded - n, np.uint8)]))
    indices = tf.data.Dataset.range(padded).batch(global_batch)
    batches = shard_global_batches(indices.enumerate(), global_batch, input_context)

    def make_batch(step, row, idx):
        del step
        weights = tf.cast(idx < n, tf.float32)
        return to_float(tf.gather(images, idx)), tf.cast(tf.gather(labels, idx), tf.int32), weights

    return with_fixed_parallelism(batches.map(make_batch, num_parallel_calls=PARALLEL_CALLS).prefetch(PREFETCH))


def with_fixed_parallelism(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """dataset with tf.data's autotuner off (its map and prefetch sizes are fixed by the caller)."""
    import tensorflow as tf
    # The autotuner's model thread can hold up the iterator's deletion at the end of training for up to
    # its optimization period, which doubles to 60 s (docs/performance.md). Fixed sizes lose nothing here:
    # the pipeline makes batches far faster than the model trains on them.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def shard_global_batches(batches: tf.data.Dataset, global_batch: int,
                         input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
    """Turns (step, global index batch) into (step, row, per-replica index batch) for this pipeline.

    tf.distribute gives consecutive elements of a pipeline to its replicas in order, so pipeline p of P,
    with R replicas each, yields rows [(p * R + r) * b, ...) for r = 0..R-1, where b is the per-replica
    batch. Sharding by rows (not by files or by example) keeps the global batch identical to one device.
    """
    import tensorflow as tf
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    num_replicas = input_context.num_replicas_in_sync if input_context else 1
    if global_batch % num_replicas:
        raise DigitsError(f'--batch_size ({global_batch}) must be divisible by the number of replicas '
                          f'({num_replicas})')
    per_replica = global_batch // num_replicas
    replicas_here = num_replicas // num_pipelines
    first_row = pipeline_id * replicas_here * per_replica

    def split_rows(step, idx):
        rows = tf.range(replicas_here, dtype=tf.int32) * per_replica + first_row
        pieces = tf.reshape(idx[first_row:first_row + replicas_here * per_replica], [replicas_here, -1])
        return tf.data.Dataset.from_tensor_slices((tf.fill([replicas_here], step), rows, pieces))

    return batches.flat_map(split_rows)


def epoch_permutation(n: int, seed: int, epoch: tf.Tensor) -> tf.Tensor:
    """The order of epoch `epoch`: a permutation of range(n), a pure function of (seed, epoch)."""
    import tensorflow as tf
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                    seed=tf.stack([tf.constant(seed, tf.int64), epoch]))


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 [b, h, w] -> float32 [b, h, w, 1] in [0, 1], the model's input convention."""
    import tensorflow as tf
    return tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0


def random_affine(images: tf.Tensor, params: tf.Tensor, max_degrees: float = 10.0,
                  max_scale: float = 0.1, max_shift: float = 2.0) -> tf.Tensor:
    """Rotates, scales and shifts each image [b, h, w, 1] about its centre; params [b, 4] in [-1, 1]."""
    import tensorflow as tf
    angle = params[:, 0] * max_degrees * np.pi / 180.0
    scale = 1.0 + params[:, 1] * max_scale
    shift_x, shift_y = params[:, 2] * max_shift, params[:, 3] * max_shift
    # The transform maps output pixel (x, y) to the input pixel it samples: inverse rotation and scale
    # about the centre c, then the inverse shift.
    height, width = images.shape[1:3]
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, sin, cx - cos * cx - sin * cy - shift_x,
                           -sin, cos, cy + sin * cx - cos * cy - shift_y, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[height, width],
        fill_value=0.0, interpolation='BILINEAR', fill_mode='CONSTANT')


BLUR_STREAM = 7919  # offsets the seed of blur's random numbers from the affine ones' (no correlation)
FLIP_STREAM = 7927  # and flip's from both
MAX_BLUR_SIGMA = 1.5  # pixels of the 28x28 image: a 200-pixel page at 4 px blur, its digit 60 px tall


def random_blur(images: tf.Tensor, params: tf.Tensor, fraction: float) -> tf.Tensor:
    """Blurs a `fraction` of images [b, h, w, 1] (Gaussian, sigma uniform in (0, MAX_BLUR_SIGMA]), each then
    rescaled so that its strongest ink is as strong as before, as digits.images does with a user's image.

    params [b, 2] uniform in [0, 1): whether to blur (< fraction), and the sigma.
    """
    import tensorflow as tf
    sigma = tf.maximum(params[:, 1] * MAX_BLUR_SIGMA, 0.05)[:, None]  # [b, 1]
    taps = tf.range(-3, 4, dtype=tf.float32)[None, :]  # a 7-tap kernel covers 2 sigma of the widest blur
    weights = tf.exp(-0.5 * (taps / sigma) ** 2)
    weights /= tf.reduce_sum(weights, axis=1, keepdims=True)  # [b, 7]
    blurred = blur_axis(blur_axis(images, weights, axis=1), weights, axis=2)
    peak = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    blurred *= peak / tf.maximum(tf.reduce_max(blurred, axis=[1, 2, 3], keepdims=True), 1e-6)
    chosen = (params[:, 0] < fraction)[:, None, None, None]
    return tf.where(chosen, blurred, images)


def random_flip(images: tf.Tensor, params: tf.Tensor, fraction: float) -> tf.Tensor:
    """Mirrors left-right the images [b, h, w, 1] whose params [b] (uniform in [0, 1)) are below fraction."""
    import tensorflow as tf
    chosen = (params < fraction)[:, None, None, None]
    return tf.where(chosen, tf.reverse(images, axis=[2]), images)


def blur_axis(images: tf.Tensor, weights: tf.Tensor, axis: int) -> tf.Tensor:
    """Convolves each image [b, h, w, 1] along axis (1: rows, 2: columns) with its own kernel weights [b, k]."""
    import tensorflow as tf
    radius = weights.shape[1] // 2
    padding = [[0, 0]] * 4
    padding[axis] = [radius, radius]
    padded, size = tf.pad(images, padding), images.shape[axis]
    out = tf.zeros_like(images)
    for k in range(weights.shape[1]):
        window = padded[:, k:k + size] if axis == 1 else padded[:, :, k:k + size]
        out += weights[:, k, None, None, None] * window
    return out
