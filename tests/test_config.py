"""digits.config: defaults, derived names, and one-line errors naming the flag and its value."""
import dataclasses
import datetime

import pytest
from absl import flags

from digits import config
from digits.errors import DigitsError


@pytest.fixture
def train_flags():
    values = flags.FlagValues()
    config.define_train_flags(values)
    return values


def parse(values, *args):
    values(['prog', *args])
    return config.train_config_from_flags(values, now=datetime.datetime(2026, 1, 2, 3, 4, 5))


def test_defaults_are_the_dataclass_defaults(train_flags):
    cfg = parse(train_flags)
    assert cfg.run_name == '20260102-030405' and cfg.export_dir == 'models/20260102-030405'
    assert dataclasses.replace(cfg, run_name='', export_dir='') == config.TrainConfig()
    assert cfg.run_dir == 'logs/20260102-030405'


@pytest.mark.parametrize('args,message', [
    (['--batch_size=-3'], r'^--batch_size \(-3\) must be positive$'),
    (['--epochs=0'], r'^--epochs \(0\) must be positive$'),
    (['--steps_per_loop=0'], r'--steps_per_loop \(0\) must be positive'),
    (['--learning_rate=0'], r'--learning_rate \(0.0\) must be positive'),
    (['--train_steps=-1'], r'--train_steps \(-1\) must not be negative'),
    (['--validation_split=1.5'], r'--validation_split \(1.5\) must be in \[0, 1\)'),
    (['--label_smoothing=1'], r'--label_smoothing \(1.0\) must be in \[0, 1\)'),
    (['--run_name=a/b'], r'--run_name \(a/b\) must be a plain name'),
    (['--cpu_replicas=-2'], r'--cpu_replicas \(-2\) must not be negative'),
])
def test_bad_values_are_one_line_errors(train_flags, args, message):
    with pytest.raises(DigitsError, match=message):
        parse(train_flags, *args)


def test_unknown_choices_are_rejected_by_the_parser(train_flags):
    with pytest.raises(flags.IllegalFlagValueError, match='cnn|simple'):
        train_flags(['prog', '--model=resnet'])


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.TrainConfig().batch_size = 3


def test_validate_catches_choices_set_without_flags():
    with pytest.raises(DigitsError, match=r'--optimizer \(rmsprop\) must be one of sgd, adam, adamw'):
        config.validate_train_config(config.TrainConfig(optimizer='rmsprop'))


def test_check_resumable_names_the_changed_flag_and_allows_intervals():
    stored = dataclasses.asdict(config.TrainConfig())
    config.check_resumable(config.TrainConfig(log_every_steps=7, epochs=3, learning_rate=0.1), stored, 'c.json')
    with pytest.raises(DigitsError, match=r'^--seed \(5\) differs from the run being resumed \(0, in c.json\); '
                                          r'pass --seed=0 to resume it'):
        config.check_resumable(config.TrainConfig(seed=5), stored, 'c.json')
