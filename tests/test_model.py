"""digits.training.model: output shapes, the keras.io parameter count, the registry."""
import numpy as np
import pytest
import tensorflow as tf

from digits import config
from digits.data import line_format
from digits.training import model

DIGIT_MODELS = sorted(set(model.ARCHITECTURES) - {'line'})


@pytest.mark.parametrize('name', DIGIT_MODELS)
def test_logits_shape_and_dtype(name):
    net = model.create(name)
    logits = net(tf.random.uniform([5, 28, 28, 1]), training=False)
    assert logits.shape == (5, 10) and logits.dtype == tf.float32


def test_simple_is_the_keras_io_convnet():
    net = model.create('simple')
    assert net.count_params() == 34826
    kernels = [tuple(v.shape) for v in net.trainable_variables if len(v.shape) > 1]
    assert kernels == [(3, 3, 1, 32), (3, 3, 32, 64), (1600, 10)]


def test_registry_matches_flag_choices():
    assert set(config.ARCHITECTURES) == set(model.ARCHITECTURES)


def test_l2_adds_regularization_losses():
    net = model.create('simple', l2=1e-3)
    net(tf.zeros([1, 28, 28, 1]))
    assert len(net.losses) == 3 and float(tf.add_n(net.losses)) > 0
    assert not model.create('simple').losses


def test_dropout_only_in_training():
    net = model.create('cnn')
    x = tf.random.uniform([8, 28, 28, 1], seed=1)
    np.testing.assert_allclose(net(x, training=False), net(x, training=False))
    assert not np.allclose(net(x, training=True), net(x, training=True))


def test_tta_reads_the_mean_probability_of_the_image_and_its_four_shifts():
    net = model.create('cnn', widths=(4, 8), tta=True, dropout=0.0)
    x = np.random.default_rng(0).uniform(size=[6, 28, 28, 1]).astype(np.float32)
    padded = np.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    shifted = [x, padded[:, :28, 1:29], padded[:, 2:, 1:29], padded[:, 1:29, :28], padded[:, 1:29, 2:]]
    assert np.array_equal(shifted[1][:, 1:], x[:, :-1]) and not shifted[1][:, 0].any()  # one row down
    want = np.mean([tf.nn.softmax(net.plain_logits(tf.constant(s), training=False)) for s in shifted], axis=0)
    np.testing.assert_allclose(tf.nn.softmax(net(x, training=False)), want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(tf.nn.softmax(net.plain_logits(x, training=False)), want, atol=1e-3)
    # Training reads each image once (batch norm on the batch's statistics: deterministic without dropout).
    np.testing.assert_allclose(net(x, training=True), net.plain_logits(x, training=True), rtol=1e-6, atol=1e-6)


def test_create_for_passes_tta():
    assert model.create_for(config.TrainConfig(width=4, tta=True)).tta
    assert not model.create_for(config.TrainConfig(width=4, tta=False)).tta


def test_an_ensemble_trains_every_member_and_reads_their_mean_probability():
    net = model.create('cnn', widths=(4, 8), dropout=0.0, ensemble=3)
    x = tf.random.uniform([6, 28, 28, 1], seed=2)
    members = net.members
    assert len(members) == 3 and len({m.name for m in members}) == 3
    assert not np.allclose(members[0].logits.kernel, members[1].logits.kernel)  # each its own initial weights
    # Training: a batch per member [b, members, h, w, 1] in, every member's logits [b, members, classes]
    # out (batch norm on the batch: deterministic).
    batches = tf.random.uniform([6, 3, 28, 28, 1], seed=3)
    trained = net(batches, training=True)
    assert trained.shape == (6, 3, 10)
    for i, member in enumerate(members):
        np.testing.assert_allclose(trained[:, i], member(batches[:, i], training=True), rtol=1e-6, atol=1e-6)
    want = np.mean([tf.nn.softmax(member(x, training=False)) for member in members], axis=0)
    got = net(x, training=False)
    assert got.shape == (6, 10)
    np.testing.assert_allclose(tf.nn.softmax(got), want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(tf.nn.softmax(members[0](x, training=False)), want, atol=1e-3)


def test_create_for_passes_tta_and_ensemble_to_every_member():
    net = model.create_for(config.TrainConfig(width=4, tta=True, ensemble=2))
    assert [m.tta for m in net.members] == [True, True]
    assert [m.blocks.layers[0].filters for m in net.members] == [4, 4]
    assert isinstance(model.create_for(config.TrainConfig(width=4)), model.DigitCNN)  # 1: the model itself


@pytest.mark.parametrize('name,ensemble', [(name, 1) for name in sorted(model.ARCHITECTURES)] + [('cnn', 2)])
def test_a_checkpoint_of_the_model_holds_every_weight(name, ensemble, tmp_path):
    """Every weight, batch-norm statistics included, goes into tf.train.Checkpoint(model=...) and comes back."""
    trained = model.create(name, ensemble=ensemble)
    for variable in trained.weights:
        variable.assign(tf.random.uniform(variable.shape, seed=7))
    path = tf.train.Checkpoint(model=trained).save(str(tmp_path / 'ckpt'))
    saved = [n for n, _ in tf.train.list_variables(path) if n.startswith('model/')]
    assert len(saved) == len(trained.weights)
    fresh = model.create(name, ensemble=ensemble)
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    for got, want in zip(fresh.weights, trained.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_the_dataset_decides_the_input_shape_and_classes():
    from digits.data import datasets
    shapes = datasets.DatasetSpec(name='shapes', description='shapes', class_names=('a', 'b', 'c'), files=(),
                                  cache_subdir='x', image_shape=(20, 24))
    for name in DIGIT_MODELS:
        assert model.create(name, dataset=shapes)(tf.zeros([2, 20, 24, 1])).shape == (2, 3)


def test_the_line_reader_reads_lines_of_any_width_into_a_frame_per_frame_columns():
    """Logits over the digits, "not a digit" and the blank, for lines of any width (a multiple of FRAME_COLUMNS)."""
    net = model.create('line')
    for width in (28, 224, 402):
        logits = net(tf.random.uniform([3, 28, width, 1]), training=False)
        assert logits.shape == (3, width // line_format.FRAME_COLUMNS, 12) and logits.dtype == tf.float32


def test_create_for_builds_the_architecture_flags_describe():
    cfg = config.TrainConfig(width=8, blocks=3, convs_per_block=1, first_block_convs=0)
    net = model.create_for(cfg)
    kernels = [tuple(v.shape) for v in net.trainable_variables if len(v.shape) == 4]
    assert kernels == [(3, 3, 1, 8), (3, 3, 8, 16), (3, 3, 16, 32)]
    assert net.hidden.kernel.shape == (3 * 3 * 32, 128)  # 28 -> 14 -> 7 -> 3 after three pools
    default = [tuple(v.shape) for v in model.create_for(config.TrainConfig()).trainable_variables if len(v.shape) == 4]
    assert default == [(3, 3, 1, 16), (3, 3, 16, 32), (3, 3, 32, 32), (3, 3, 32, 64), (3, 3, 64, 64)]
    cfg = config.TrainConfig(width=8, blocks=2, convs_per_block=3, first_block_convs=1)
    kernels = [tuple(v.shape) for v in model.create_for(cfg).trainable_variables if len(v.shape) == 4]
    assert kernels == [(3, 3, 1, 8), (3, 3, 8, 16), (3, 3, 16, 16), (3, 3, 16, 16)]


def test_create_for_gives_simple_no_architecture_flags():
    assert model.create_for(config.TrainConfig(arch='simple', width=8)).count_params() == 34826
