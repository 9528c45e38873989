"""digits.data.pipeline: the tf.data pipelines: order a function of (seed, step), sharding, augmentation, evaluation."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_TEST, make_digits

from digits import config
from digits.data import arrays, pipeline
from digits.errors import DigitsError

# ------------------------------------------------------------------------------------------- pipelines

def tiny_split(n=TINY_TEST, seed=2):
    return arrays.Split(*make_digits(n, seed))


def batches(dataset, count):
    return [tuple(t.numpy() for t in element) for element in dataset.take(count)]


@pytest.mark.parametrize('batch_size', [64, 1000, 1])
def test_eval_dataset_counts_every_example_once(batch_size):
    split = tiny_split()
    elements = batches(pipeline.eval_dataset(split, batch_size), 10**6)
    weights = np.concatenate([w for _, _, w in elements])
    labels = np.concatenate([y for _, y, _ in elements])
    images = np.concatenate([x for x, _, _ in elements])
    assert weights.sum() == TINY_TEST and all(len(w) == batch_size for _, _, w in elements)
    np.testing.assert_array_equal(labels[weights == 1], split.labels)  # every example, in order, once
    np.testing.assert_allclose(images[weights == 1][..., 0], split.images / 255.0, atol=1e-6)


def test_train_dataset_shapes_and_range():
    images, labels = next(iter(pipeline.train_dataset(tiny_split(), 32, seed=0, augment=True)))
    assert images.shape == (32, 28, 28, 1) and images.dtype == tf.float32 and labels.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0


def test_pipelines_run_without_the_autotuner():
    # Its model thread held up the training iterator's deletion by 0.3-60 s (pipeline.with_fixed_parallelism).
    for dataset in (pipeline.train_dataset(tiny_split(), 16, seed=0, augment=True, blur=0.5),
                    pipeline.eval_dataset(tiny_split(), 16)):
        assert dataset.options().autotune.enabled is False
        assert len(batches(dataset, 3)) == 3


def test_train_order_is_a_function_of_seed_and_step():
    split = tiny_split()
    run = batches(pipeline.train_dataset(split, 16, seed=7, augment=True), 30)
    resumed = batches(pipeline.train_dataset(split, 16, seed=7, augment=True, start_step=17), 13)
    for (x1, y1), (x2, y2) in zip(run[17:], resumed):
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(x1, x2)
    other_seed = batches(pipeline.train_dataset(split, 16, seed=8, augment=True), 30)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(run, other_seed))


def test_each_epoch_is_a_new_permutation():
    split = arrays.Split(np.zeros((20, 28, 28), np.uint8), np.arange(20, dtype=np.uint8) % 10)
    order = [pipeline.epoch_permutation(20, 3, tf.constant(e, tf.int64)).numpy() for e in range(3)]
    for perm in order:
        assert sorted(perm) == list(range(20))
    assert not np.array_equal(order[0], order[1])
    del split


def test_sharding_rebuilds_the_global_batch():
    """Two pipelines x two replicas each: their rows, in order, are exactly one pipeline's global batch."""
    split = tiny_split()
    whole = batches(pipeline.train_dataset(split, 32, seed=1, augment=True), 3)
    shards = {}
    for pipeline_id in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id,
                                         num_replicas_in_sync=4)
        shards[pipeline_id] = batches(pipeline.train_dataset(split, 32, seed=1, augment=True, input_context=ctx), 6)
    for step in range(3):
        pieces = [shards[p][2 * step + r] for p in range(2) for r in range(2)]
        np.testing.assert_array_equal(np.concatenate([y for _, y in pieces]), whole[step][1])
        np.testing.assert_allclose(np.concatenate([x for x, _ in pieces]), whole[step][0], atol=1e-6)


def test_batch_must_divide_among_replicas():
    ctx = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=3)
    with pytest.raises(DigitsError, match=r'--batch_size \(32\) must be divisible by the number of '
                                          r'replicas \(3\)'):
        pipeline.train_dataset(tiny_split(), 32, seed=0, augment=False, input_context=ctx)


def test_batch_larger_than_training_set():
    with pytest.raises(DigitsError, match=r'--batch_size \(500\) is larger than the training set'):
        pipeline.train_dataset(tiny_split(), 500, seed=0, augment=False)


def test_random_affine_identity_and_shift():
    images = tf.constant(make_digits(4, 9)[0][..., None] / 255.0, tf.float32)
    np.testing.assert_allclose(pipeline.random_affine(images, tf.zeros([4, 4])), images, atol=1e-5)
    shifted = pipeline.random_affine(images, tf.constant([[0, 0, 0.5, 0]] * 4, tf.float32))  # +1 px in x
    np.testing.assert_allclose(shifted[:, :, 1:], images[:, :, :-1], atol=1e-5)


def test_augment_strength_scales_the_shifts():
    # A round blob on the centre, about which rotation and scale turn: only the shift moves its centre of
    # mass, by the shift (each axis up to 2 px x strength), rotated and times the scale (1 +- 0.1 x strength).
    radius = np.hypot(*np.meshgrid(np.arange(28) - 13.5, np.arange(28) - 13.5))
    blobs = np.repeat(np.round(255 * np.exp(-0.5 * (radius / 2.0) ** 2))[None], 64, axis=0).astype(np.uint8)
    split = arrays.Split(blobs, np.zeros(64, np.int64))

    def moves(strength):
        x = batches(pipeline.train_dataset(split, 64, seed=3, augment=True, strength=strength), 1)[0][0][..., 0]
        grid = np.arange(28) - 13.5
        mass = x.sum(axis=(1, 2))
        return np.hypot((x.sum(axis=2) * grid).sum(1) / mass, (x.sum(axis=1) * grid).sum(1) / mass)

    full, half = moves(1.0), moves(0.5)
    assert half.max() <= 2**0.5 * 1.05 + 0.01 < full.max() <= 2 * 2**0.5 * 1.1 + 0.01
    np.testing.assert_allclose(half, full / 2, rtol=0.08, atol=0.01)  # the same draws, half the ranges


def test_real_data_loads_with_published_counts(real_data_dir):
    data = arrays.load('mnist', real_data_dir)
    assert len(data.train) == 10000 and len(data.test) == 10000
    assert np.bincount(data.train.labels).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    elements = batches(pipeline.eval_dataset(data.test, 384), 10**6)
    assert sum(w.sum() for _, _, w in elements) == 10000


def test_random_blur_is_a_gaussian_keeping_the_peak_for_the_chosen_fraction():
    dot = np.zeros([2, 28, 28, 1], np.float32)
    dot[:, 14, 10] = 0.8
    params = tf.constant([[0.1, 1.0], [0.6, 1.0]])  # first: blurred at the widest sigma; second: not chosen
    out = pipeline.random_blur(tf.constant(dot), params, fraction=0.5).numpy()[..., 0]
    np.testing.assert_array_equal(out[1], dot[1, ..., 0])
    taps = np.exp(-0.5 * (np.arange(-3, 4) / pipeline.MAX_BLUR_SIGMA) ** 2)
    expected = np.outer(taps, taps) / np.outer(taps, taps).max() * 0.8  # separable, rescaled to the same peak
    np.testing.assert_allclose(out[0, 11:18, 7:14], expected, atol=1e-5)
    assert out[0].max() == pytest.approx(0.8) and np.count_nonzero(out[0]) == 49


def test_blurred_batches_are_a_function_of_seed_and_step():
    split = tiny_split()
    run = batches(pipeline.train_dataset(split, 16, seed=7, augment=True, blur=0.5), 6)
    resumed = batches(pipeline.train_dataset(split, 16, seed=7, augment=True, blur=0.5, start_step=4), 2)
    plain = batches(pipeline.train_dataset(split, 16, seed=7, augment=True), 6)
    np.testing.assert_array_equal(np.stack([b[0] for b in run[4:]]), np.stack([b[0] for b in resumed]))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(run, plain))  # some images were blurred


def test_flip_mirrors_the_chosen_fraction_as_a_function_of_seed_and_step():
    split = tiny_split()
    plain = batches(pipeline.train_dataset(split, 16, seed=7, augment=False), 8)
    flipped = batches(pipeline.train_dataset(split, 16, seed=7, augment=False, flip=0.5), 8)
    resumed = batches(pipeline.train_dataset(split, 16, seed=7, augment=False, flip=0.5, start_step=5), 3)
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
    always = batches(pipeline.train_dataset(split, 16, **kwargs), 6)
    until_4 = batches(pipeline.train_dataset(split, 16, augment_steps=4, **kwargs), 6)
    plain = batches(pipeline.train_dataset(split, 16, seed=7, augment=False), 6)
    resumed = batches(pipeline.train_dataset(split, 16, augment_steps=4, start_step=3, **kwargs), 3)
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
    from_config = batches(pipeline.train_dataset_for(cfg, tiny_split(), start_step=2), 12)
    direct = batches(pipeline.train_dataset(tiny_split(), 16, seed=7, augment=False, flip=0.5, augment_steps=12,
                                        start_step=2), 12)
    np.testing.assert_array_equal(np.stack([b[0] for b in from_config]), np.stack([b[0] for b in direct]))


def test_each_ensemble_member_has_its_own_batches_and_the_first_a_single_models():
    cfg = config.TrainConfig(batch_size=16, seed=7, augment=True, blur=0.5, epochs=2, ensemble=3)
    stacked = batches(pipeline.train_dataset_for(cfg, tiny_split(), start_step=2), 4)
    assert stacked[0][0].shape == (16, 3, 28, 28, 1) and stacked[0][1].shape == (16, 3)
    assert pipeline.train_dataset_for(cfg, tiny_split()).options().autotune.enabled is False
    for member in range(3):
        alone = dataclasses.replace(cfg, ensemble=1, seed=cfg.seed + member * pipeline.MEMBER_STREAM)
        direct = batches(pipeline.train_dataset_for(alone, tiny_split(), start_step=2), 4)
        for (images, labels), (want_images, want_labels) in zip(stacked, direct):
            np.testing.assert_array_equal(images[:, member], want_images)
            np.testing.assert_array_equal(labels[:, member], want_labels)
    assert not np.array_equal(stacked[0][1][:, 0], stacked[0][1][:, 1])  # another order
