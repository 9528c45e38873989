"""digits.data: readers, validation errors, download, and the tf.data pipelines."""
import dataclasses
import gzip
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import IDX_NAMES, TINY_TEST, TINY_TRAIN, idx_bytes, make_digits, write_idx_dir
from digits import config, data, datasets
from digits.errors import DigitsError


def write_npz(path, train=None, test=None, **overrides):
    (x_train, y_train), (x_test, y_test) = train or make_digits(50, 3), test or make_digits(30, 4)
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    arrays.update(overrides)
    np.savez(path, **arrays)
    return str(path)


# ------------------------------------------------------------------------------------------ loader paths

@pytest.mark.parametrize('compress', [True, False])
def test_load_idx_gzip_and_raw(tmp_path, compress):
    train, test = make_digits(40, 5), make_digits(20, 6)
    arrays = data.load('mnist', write_idx_dir(tmp_path, compress, train, test))
    np.testing.assert_array_equal(arrays.train.images, train[0])
    np.testing.assert_array_equal(arrays.train.labels, train[1])
    np.testing.assert_array_equal(arrays.test.images, test[0])
    assert arrays.test.labels.dtype == np.uint8 and len(arrays.test) == 20


def test_load_npz(tmp_path):
    train, test = make_digits(50, 3), make_digits(30, 4)
    write_npz(tmp_path / 'mnist.npz', train, test)
    arrays = data.load('mnist', str(tmp_path))
    np.testing.assert_array_equal(arrays.train.images, train[0])
    np.testing.assert_array_equal(arrays.test.labels, test[1])


def test_fashion_mnist_reads_its_own_npz_name(tmp_path):
    write_npz(tmp_path / 'fashion_mnist.npz')
    assert len(data.load('fashion_mnist', str(tmp_path)).train) == 50
    with pytest.raises(DigitsError, match='nor mnist.npz'):
        data.load('mnist', str(tmp_path))


def test_gzip_is_detected_by_content_not_name(tmp_path):
    write_idx_dir(tmp_path, compress=False)
    path = tmp_path / IDX_NAMES[1]
    path.write_bytes(gzip.compress(path.read_bytes()))  # gzip data under the raw name
    assert len(data.load('mnist', str(tmp_path)).train) == TINY_TRAIN


def test_missing_files_name_what_is_missing(tmp_path):
    write_idx_dir(tmp_path)
    os.remove(tmp_path / (IDX_NAMES[2] + '.gz'))
    with pytest.raises(DigitsError, match=r'missing: t10k-images-idx3-ubyte\[\.gz\]'):
        data.load('mnist', str(tmp_path))


def test_data_dir_must_exist(tmp_path):
    with pytest.raises(DigitsError, match=r'--data_dir \(.*nope\) is not a directory'):
        data.load('mnist', str(tmp_path / 'nope'))


# ------------------------------------------------------------------------------------- validation errors

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
        data.load('mnist', corrupt(tmp_path, name, raw))
    assert name in str(e.value) and '\n' not in str(e.value)


def test_corrupt_gzip_is_an_error(tmp_path):
    write_idx_dir(tmp_path)
    path = tmp_path / (IMAGES + '.gz')
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DigitsError, match=f'{IMAGES}.gz: cannot read'):
        data.load('mnist', str(tmp_path))


@pytest.mark.parametrize('overrides,message', [
    (dict(x_train=np.zeros((50, 28, 28), np.float32)), r'x_train\]: images are float32'),
    (dict(y_test=np.full(30, 11)), r'y_test\]: label 11'),
    (dict(x_test=np.zeros((29, 28, 28), np.uint8)), 'has 29 images but .* has 30 labels'),
])
def test_npz_validation_errors(tmp_path, overrides, message):
    with pytest.raises(DigitsError, match=message):
        data.load('mnist', os.path.dirname(write_npz(tmp_path / 'mnist.npz', **overrides)))


def test_npz_missing_array(tmp_path):
    np.savez(tmp_path / 'mnist.npz', x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DigitsError, match="missing array 'y_train'"):
        data.load('mnist', str(tmp_path))


# -------------------------------------------------------------------------------------------- download

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
    arrays = data.load('mnist', None, base_url=base, cache_dir=str(tmp_path / 'cache'))
    assert len(arrays.train) == 50
    assert os.path.isfile(tmp_path / 'cache' / 'datasets' / 'mnist.npz')


def test_download_with_bad_checksum_fails_with_data_dir_hint(tmp_path, monkeypatch):
    base = serve_mnist_npz(tmp_path, monkeypatch, corrupt_bytes=True)
    with pytest.raises(DigitsError, match=r'could not download mnist .*pass --data_dir=DIR') as e:
        data.load('mnist', None, base_url=base, cache_dir=str(tmp_path / 'cache'))
    assert '\n' not in str(e.value)


def test_download_unreachable_fails_with_data_dir_hint(tmp_path):
    with pytest.raises(DigitsError, match='could not download fashion_mnist .*--data_dir'):
        data.load('fashion_mnist', None, base_url='http://127.0.0.1:9/', cache_dir=str(tmp_path))


# ------------------------------------------------------------------------------------------- pipelines

def tiny_split(n=TINY_TEST, seed=2):
    return data.Split(*make_digits(n, seed))


def batches(dataset, count):
    return [tuple(t.numpy() for t in element) for element in dataset.take(count)]


@pytest.mark.parametrize('batch_size', [64, 1000, 1])
def test_eval_dataset_counts_every_example_once(batch_size):
    split = tiny_split()
    elements = batches(data.eval_dataset(split, batch_size), 10**6)
    weights = np.concatenate([w for _, _, w in elements])
    labels = np.concatenate([y for _, y, _ in elements])
    images = np.concatenate([x for x, _, _ in elements])
    assert weights.sum() == TINY_TEST and all(len(w) == batch_size for _, _, w in elements)
    np.testing.assert_array_equal(labels[weights == 1], split.labels)  # every example, in order, once
    np.testing.assert_allclose(images[weights == 1][..., 0], split.images / 255.0, atol=1e-6)


def test_train_dataset_shapes_and_range():
    images, labels = next(iter(data.train_dataset(tiny_split(), 32, seed=0, augment=True)))
    assert images.shape == (32, 28, 28, 1) and images.dtype == tf.float32 and labels.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0


def test_pipelines_run_without_the_autotuner():
    # Its model thread held up the training iterator's deletion by 0.3-60 s (data.with_fixed_parallelism).
    for dataset in (data.train_dataset(tiny_split(), 16, seed=0, augment=True, blur=0.5),
                    data.eval_dataset(tiny_split(), 16)):
        assert dataset.options().autotune.enabled is False
        assert len(batches(dataset, 3)) == 3


def test_train_order_is_a_function_of_seed_and_step():
    split = tiny_split()
    run = batches(data.train_dataset(split, 16, seed=7, augment=True), 30)
    resumed = batches(data.train_dataset(split, 16, seed=7, augment=True, start_step=17), 13)
    for (x1, y1), (x2, y2) in zip(run[17:], resumed):
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(x1, x2)
    other_seed = batches(data.train_dataset(split, 16, seed=8, augment=True), 30)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(run, other_seed))


def test_each_epoch_is_a_new_permutation():
    split = data.Split(np.zeros((20, 28, 28), np.uint8), np.arange(20, dtype=np.uint8) % 10)
    order = [data.epoch_permutation(20, 3, tf.constant(e, tf.int64)).numpy() for e in range(3)]
    for perm in order:
        assert sorted(perm) == list(range(20))
    assert not np.array_equal(order[0], order[1])
    del split


def test_sharding_rebuilds_the_global_batch():
    """Two pipelines x two replicas each: their rows, in order, are exactly one pipeline's global batch."""
    split = tiny_split()
    whole = batches(data.train_dataset(split, 32, seed=1, augment=True), 3)
    shards = {}
    for pipeline in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                         num_replicas_in_sync=4)
        shards[pipeline] = batches(data.train_dataset(split, 32, seed=1, augment=True, input_context=ctx), 6)
    for step in range(3):
        pieces = [shards[p][2 * step + r] for p in range(2) for r in range(2)]
        np.testing.assert_array_equal(np.concatenate([y for _, y in pieces]), whole[step][1])
        np.testing.assert_allclose(np.concatenate([x for x, _ in pieces]), whole[step][0], atol=1e-6)


def test_batch_must_divide_among_replicas():
    ctx = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=3)
    with pytest.raises(DigitsError, match=r'--batch_size \(32\) must be divisible by the number of '
                                          r'replicas \(3\)'):
        data.train_dataset(tiny_split(), 32, seed=0, augment=False, input_context=ctx)


def test_batch_larger_than_training_set():
    with pytest.raises(DigitsError, match=r'--batch_size \(500\) is larger than the training set'):
        data.train_dataset(tiny_split(), 500, seed=0, augment=False)


def test_random_affine_identity_and_shift():
    images = tf.constant(make_digits(4, 9)[0][..., None] / 255.0, tf.float32)
    np.testing.assert_allclose(data.random_affine(images, tf.zeros([4, 4])), images, atol=1e-5)
    shifted = data.random_affine(images, tf.constant([[0, 0, 0.5, 0]] * 4, tf.float32))  # +1 px in x
    np.testing.assert_allclose(shifted[:, :, 1:], images[:, :, :-1], atol=1e-5)


def test_augment_strength_scales_the_shifts():
    # A round blob on the centre, about which rotation and scale turn: only the shift moves its centre of
    # mass, by the shift (each axis up to 2 px x strength), rotated and times the scale (1 +- 0.1 x strength).
    radius = np.hypot(*np.meshgrid(np.arange(28) - 13.5, np.arange(28) - 13.5))
    blobs = np.repeat(np.round(255 * np.exp(-0.5 * (radius / 2.0) ** 2))[None], 64, axis=0).astype(np.uint8)
    split = data.Split(blobs, np.zeros(64, np.int64))

    def moves(strength):
        x = batches(data.train_dataset(split, 64, seed=3, augment=True, strength=strength), 1)[0][0][..., 0]
        grid = np.arange(28) - 13.5
        mass = x.sum(axis=(1, 2))
        return np.hypot((x.sum(axis=2) * grid).sum(1) / mass, (x.sum(axis=1) * grid).sum(1) / mass)

    full, half = moves(1.0), moves(0.5)
    assert half.max() <= 2**0.5 * 1.05 + 0.01 < full.max() <= 2 * 2**0.5 * 1.1 + 0.01
    np.testing.assert_allclose(half, full / 2, rtol=0.08, atol=0.01)  # the same draws, half the ranges


def test_hold_out_is_disjoint_and_seeded():
    split = data.Split(np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8),
                       np.arange(100, dtype=np.uint8) % 10)
    train, held = data.hold_out(split, 0.2, seed=0)
    assert len(train) == 80 and len(held) == 20
    assert not set(train.images[:, 0, 0]) & set(held.images[:, 0, 0])
    np.testing.assert_array_equal(held.images, data.hold_out(split, 0.2, seed=0)[1].images)
    with pytest.raises(DigitsError, match='validation_split'):
        data.hold_out(split, 0.001, seed=0)


def test_real_data_loads_with_published_counts(real_data_dir):
    arrays = data.load('mnist', real_data_dir)
    assert len(arrays.train) == 10000 and len(arrays.test) == 10000
    assert np.bincount(arrays.train.labels).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    elements = batches(data.eval_dataset(arrays.test, 384), 10**6)
    assert sum(w.sum() for _, _, w in elements) == 10000


def test_random_blur_is_a_gaussian_keeping_the_peak_for_the_chosen_fraction():
    dot = np.zeros([2, 28, 28, 1], np.float32)
    dot[:, 14, 10] = 0.8
    params = tf.constant([[0.1, 1.0], [0.6, 1.0]])  # first: blurred at the widest sigma; second: not chosen
    out = data.random_blur(tf.constant(dot), params, fraction=0.5).numpy()[..., 0]
    np.testing.assert_array_equal(out[1], dot[1, ..., 0])
    taps = np.exp(-0.5 * (np.arange(-3, 4) / data.MAX_BLUR_SIGMA) ** 2)
    expected = np.outer(taps, taps) / np.outer(taps, taps).max() * 0.8  # separable, rescaled to the same peak
    np.testing.assert_allclose(out[0, 11:18, 7:14], expected, atol=1e-5)
    assert out[0].max() == pytest.approx(0.8) and np.count_nonzero(out[0]) == 49


def test_blurred_batches_are_a_function_of_seed_and_step():
    split = tiny_split()
    run = batches(data.train_dataset(split, 16, seed=7, augment=True, blur=0.5), 6)
    resumed = batches(data.train_dataset(split, 16, seed=7, augment=True, blur=0.5, start_step=4), 2)
    plain = batches(data.train_dataset(split, 16, seed=7, augment=True), 6)
    np.testing.assert_array_equal(np.stack([b[0] for b in run[4:]]), np.stack([b[0] for b in resumed]))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(run, plain))  # some images were blurred


def test_flip_mirrors_the_chosen_fraction_as_a_function_of_seed_and_step():
    split = tiny_split()
    plain = batches(data.train_dataset(split, 16, seed=7, augment=False), 8)
    flipped = batches(data.train_dataset(split, 16, seed=7, augment=False, flip=0.5), 8)
    resumed = batches(data.train_dataset(split, 16, seed=7, augment=False, flip=0.5, start_step=5), 3)
    mirrored = kept = 0
    for (x, y), (fx, fy) in zip(plain, flipped):
        np.testing.assert_array_equal(y, fy)  # the same examples in the same order
        for image, out in zip(x, fx):
            same, mirror = np.array_equal(out, image), np.array_equal(out, image[:, ::-1])
            assert same or mirror
            mirrored, kept = mirrored + (mirror and not same), kept + same
    assert 0.35 < mirrored / (mirrored + kept) < 0.65  # about half of 128
    np.testing.assert_array_equal(np.stack([b[0] for b in flipped[5:]]), np.stack([b[0] for b in resumed]))


def test_augmentation_stops_at_augment_steps_and_resumes_alike():
    split, kwargs = tiny_split(), dict(seed=7, augment=True, blur=0.5, flip=0.5)
    always = batches(data.train_dataset(split, 16, **kwargs), 6)
    until_4 = batches(data.train_dataset(split, 16, augment_steps=4, **kwargs), 6)
    plain = batches(data.train_dataset(split, 16, seed=7, augment=False), 6)
    resumed = batches(data.train_dataset(split, 16, augment_steps=4, start_step=3, **kwargs), 3)
    for step in range(6):
        expected = always[step] if step < 4 else plain[step]
        np.testing.assert_array_equal(until_4[step][0], expected[0])
        np.testing.assert_array_equal(until_4[step][1], plain[step][1])
        assert not np.array_equal(always[step][0], plain[step][0])  # so the comparisons above tell the two apart
    np.testing.assert_array_equal(np.stack([b[0] for b in until_4[3:]]), np.stack([b[0] for b in resumed]))


def test_train_dataset_for_reads_the_config():
    # 2 epochs of 203 // 16 = 12 steps; augmented for half of the 24: steps 0-11.
    cfg = config.TrainConfig(batch_size=16, seed=7, augment=False, blur=0.0, flip=0.5, epochs=2,
                             augment_until=0.5)
    from_config = batches(data.train_dataset_for(cfg, tiny_split(), start_step=2), 12)
    direct = batches(data.train_dataset(tiny_split(), 16, seed=7, augment=False, flip=0.5, augment_steps=12,
                                        start_step=2), 12)
    np.testing.assert_array_equal(np.stack([b[0] for b in from_config]), np.stack([b[0] for b in direct]))


def test_each_ensemble_member_has_its_own_batches_and_the_first_a_single_models():
    cfg = config.TrainConfig(batch_size=16, seed=7, augment=True, blur=0.5, epochs=2, ensemble=3)
    stacked = batches(data.train_dataset_for(cfg, tiny_split(), start_step=2), 4)
    assert stacked[0][0].shape == (16, 3, 28, 28, 1) and stacked[0][1].shape == (16, 3)
    assert data.train_dataset_for(cfg, tiny_split()).options().autotune.enabled is False
    for member in range(3):
        alone = dataclasses.replace(cfg, ensemble=1, seed=cfg.seed + member * data.MEMBER_STREAM)
        direct = batches(data.train_dataset_for(alone, tiny_split(), start_step=2), 4)
        for (images, labels), (want_images, want_labels) in zip(stacked, direct):
            np.testing.assert_array_equal(images[:, member], want_images)
            np.testing.assert_array_equal(labels[:, member], want_labels)
    assert not np.array_equal(stacked[0][1][:, 0], stacked[0][1][:, 1])  # another order
