"""digits.training.optimizer: the registry, the schedule, loss scaling and the weights' moving average."""
import numpy as np
import pytest

from digits import config
from digits.training import loop, model, optimizer


def test_every_optimizer_and_schedule_the_flags_offer_exists():
    assert set(config.OPTIMIZERS) == set(optimizer.OPTIMIZERS)
    assert set(config.SCHEDULES) == set(optimizer.SCHEDULES)


@pytest.mark.parametrize('name,kind', [('sgd', 'SGD'), ('adam', 'Adam'), ('adamw', 'AdamW')])
def test_each_name_builds_its_own_optimizer(name, kind):
    built = optimizer.create_optimizer(name, learning_rate=0.1, schedule='constant', total_steps=10, warmup_steps=0)
    assert type(built).__name__ == kind


def test_mixed_float16_scales_the_loss():
    built = optimizer.create_optimizer('adam', learning_rate=0.1, schedule='constant', total_steps=10,
                                       warmup_steps=0, precision='mixed_float16')
    assert type(built).__name__ == 'LossScaleOptimizer' and type(optimizer.base_optimizer(built)).__name__ == 'Adam'


def test_cosine_schedule_warms_up_then_decays():
    opt = optimizer.create_optimizer('sgd', learning_rate=0.1, schedule='cosine', total_steps=100, warmup_steps=10)
    values = []
    for step in (0, 5, 10, 55, 100):
        opt.iterations.assign(step)
        values.append(float(opt.learning_rate))  # the schedule's value at the optimizer's step
    assert values[0] == 0 and values[1] == pytest.approx(0.05) and values[2] == pytest.approx(0.1)
    assert values[3] == pytest.approx(0.05, abs=1e-3) and values[4] == pytest.approx(0.0, abs=1e-7)


def test_averaged_weights_swaps_the_averages_in_and_the_trained_weights_back():
    net = model.create('simple')
    sgd = optimizer.create_optimizer('sgd', learning_rate=0.1, schedule='constant', total_steps=10, warmup_steps=0,
                                     ema_decay=0.9)
    state = loop.create_state(net, sgd)
    trained = [v.numpy() for v in net.trainable_variables]
    averages = optimizer.base_optimizer(state.optimizer)._model_variables_moving_average
    for average, value in zip(averages, trained):
        average.assign(value + 1.0)
    with optimizer.averaged_weights(net, state.optimizer):
        for variable, value in zip(net.trainable_variables, trained):
            np.testing.assert_array_equal(variable.numpy(), value + 1.0)
    for variable, value in zip(net.trainable_variables, trained):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_averaged_weights_without_ema_changes_nothing():
    net = model.create('simple')
    state = loop.create_state(net, optimizer.create_optimizer('adam', learning_rate=0.1, schedule='constant',
                                                             total_steps=10, warmup_steps=0))
    before = [v.numpy() for v in net.trainable_variables]
    with optimizer.averaged_weights(net, state.optimizer):
        assert all((v.numpy() == b).all() for v, b in zip(net.trainable_variables, before))
