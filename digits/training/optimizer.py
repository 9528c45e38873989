"""The optimizer, its learning-rate schedule, loss scaling, and the moving average of the weights.

OPTIMIZERS and SCHEDULES dispatch by name: a name digits.config offers without an entry here fails
tests/test_config.py, never falls through to another optimizer.
"""
import contextlib
from collections.abc import Callable

import keras
import tensorflow as tf

from digits.config import TrainConfig


def constant_schedule(learning_rate: float, total_steps: int, warmup_steps: int):
    del total_steps, warmup_steps
    return learning_rate


def cosine_schedule(learning_rate: float, total_steps: int, warmup_steps: int):
    """Linear warm-up from 0 over warmup_steps, then cosine decay to 0 at total_steps."""
    warmup = min(warmup_steps, total_steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate, decay_steps=total_steps - warmup,
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup)


SCHEDULES = {'constant': constant_schedule, 'cosine': cosine_schedule}
OPTIMIZERS = {  # (learning rate or schedule, momentum, weight decay, EMA options) -> optimizer
    'sgd': lambda lr, momentum, weight_decay, ema: keras.optimizers.SGD(lr, momentum=momentum, **ema),
    'adam': lambda lr, momentum, weight_decay, ema: keras.optimizers.Adam(lr, **ema),
    'adamw': lambda lr, momentum, weight_decay, ema: keras.optimizers.AdamW(lr, weight_decay=weight_decay, **ema),
}


def create_optimizer(name: str, *, learning_rate: float, schedule: str, total_steps: int, warmup_steps: int,
                     momentum: float = 0.9, weight_decay: float = 0.0, ema_decay: float = 0.0,
                     precision: str = 'float32') -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule (create inside strategy.scope()).

    ema_decay > 0: the optimizer also keeps an exponential moving average of the weights (Keras'
    use_ema), which evaluation and the export use (see averaged_weights). precision mixed_float16 wraps
    it in a LossScaleOptimizer.
    """
    lr = SCHEDULES[schedule](learning_rate, total_steps, warmup_steps)
    ema = dict(use_ema=True, ema_momentum=ema_decay) if ema_decay else {}
    optimizer = OPTIMIZERS[name](lr, momentum, weight_decay, ema)
    if precision == 'mixed_float16':
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def create_for(config: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """The optimizer a training config asks for, over total_steps (create inside strategy.scope())."""
    return create_optimizer(config.optimizer, learning_rate=config.learning_rate, schedule=config.lr_schedule,
                            total_steps=total_steps, warmup_steps=config.warmup_steps, momentum=config.momentum,
                            weight_decay=config.weight_decay, ema_decay=config.ema_decay,
                            precision=config.precision)


def base_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer itself, or the one a LossScaleOptimizer wraps (which holds the weight averages)."""
    return getattr(optimizer, 'inner_optimizer', optimizer)


@contextlib.contextmanager
def averaged_weights(model: keras.Model, optimizer: keras.optimizers.Optimizer):
    """Inside: the model holds the optimizer's moving averages of its weights (if it keeps them);
    on exit the trained weights are back. Evaluation and export run inside, training outside."""
    optimizer = base_optimizer(optimizer)
    if not optimizer.use_ema:
        yield
        return
    variables = model.trainable_variables
    trained = [tf.identity(v) for v in variables]  # copies, not references to the variables
    optimizer.finalize_variable_values(variables)  # assigns the averages to the variables
    try:
        yield
    finally:
        for variable, value in zip(variables, trained):
            variable.assign(value)


def averaging(model: keras.Model, optimizer: keras.optimizers.Optimizer, fn: Callable) -> Callable:
    """fn, called inside averaged_weights(model, optimizer)."""

    def averaged(*args, **kwargs):
        with averaged_weights(model, optimizer):
            return fn(*args, **kwargs)

    return averaged
