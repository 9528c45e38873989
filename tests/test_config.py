"""digits.config: defaults, derived names, and one-line errors naming the flag and its value."""
import dataclasses
import datetime
import os
import subprocess
import sys

import pytest
from absl import flags
from conftest import ROOT

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
    (['--augment_until=0'], r'^--augment_until \(0.0\) must be in \(0, 1\]$'),
    (['--augment_until=1.5'], r'^--augment_until \(1.5\) must be in \(0, 1\]$'),
    (['--first_block_convs=-1'], r'^--first_block_convs \(-1\) must not be negative$'),
    (['--ensemble=0'], r'^--ensemble \(0\) must be positive$'),
    (['--run_name=a/b'], r'--run_name \(a/b\) must be a plain name'),
    (['--cpu_replicas=-2'], r'--cpu_replicas \(-2\) must not be negative'),
])
def test_bad_values_are_one_line_errors(train_flags, args, message):
    with pytest.raises(DigitsError, match=message):
        parse(train_flags, *args)


def test_negatives_default_to_the_datasets_own_and_only_digits_take_them(train_flags):
    assert parse(train_flags).negatives == 0.1
    assert parse(train_flags, '--dataset=fashion_mnist').negatives == 0.0
    assert parse(train_flags, '--negatives=0').negatives == 0.0
    with pytest.raises(DigitsError, match=r"^--negatives \(0.2\) teaches .*fashion_mnist's classes are not digits: "
                                          r"use --negatives=0$"):
        parse(train_flags, '--dataset=fashion_mnist', '--negatives=0.2')
    with pytest.raises(DigitsError, match=r'^--negatives \(1.0\) must be in \[0, 1\)$'):
        parse(train_flags, '--negatives=1')
    # A run of an older digits trained on none: it resumes as it was.
    assert config.train_config_from_stored({'dataset': 'mnist_10k'}).negatives == 0.0


def test_total_steps_are_whole_epochs_unless_train_steps_is_set():
    assert config.TrainConfig(batch_size=128, epochs=20).total_steps(54000) == 20 * 421  # partial batch dropped
    assert config.TrainConfig(batch_size=128, epochs=20, train_steps=7).total_steps(54000) == 7


def test_unknown_choices_are_rejected_by_the_parser(train_flags):
    with pytest.raises(flags.IllegalFlagValueError, match='cnn|simple'):
        train_flags(['prog', '--arch=resnet'])


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.TrainConfig().batch_size = 3


def test_validate_catches_choices_set_without_flags():
    with pytest.raises(DigitsError, match=r'--optimizer \(rmsprop\) must be one of sgd, adam, adamw'):
        config.check_config(config.TrainConfig(optimizer='rmsprop'))


def test_check_resumable_names_the_changed_flag_and_allows_intervals():
    stored = dataclasses.asdict(config.TrainConfig())
    config.check_resumable(config.TrainConfig(log_every_steps=7, epochs=3, learning_rate=0.1), stored, 'c.json')
    with pytest.raises(DigitsError, match=r'^--seed \(5\) differs from the run being resumed \(0, in c.json\); '
                                          r'pass --seed=0 to resume it'):
        config.check_resumable(config.TrainConfig(seed=5), stored, 'c.json')


def test_the_derived_resume_rule_and_hparams_are_the_declared_ones():
    assert set(config.RESUME_FIXED) == {'dataset', 'arch', 'batch_size', 'optimizer', 'precision', 'l2', 'seed',
                                        'validation_split', 'augment', 'augment_strength', 'augment_until',
                                        'ema_decay', 'blur', 'flip', 'width', 'blocks', 'convs_per_block',
                                        'first_block_convs', 'ensemble', 'negatives'}
    assert set(config.HPARAMS) == {'dataset', 'arch', 'batch_size', 'epochs', 'train_steps', 'optimizer',
                                   'learning_rate', 'lr_schedule', 'warmup_steps', 'weight_decay', 'l2',
                                   'label_smoothing', 'ema_decay', 'augment', 'augment_strength', 'augment_until',
                                   'negatives',
                                   'precision', 'strategy', 'seed', 'blur', 'flip', 'width', 'blocks',
                                   'convs_per_block', 'first_block_convs', 'tta', 'ensemble', 'line_steps'}


def test_adding_a_field_adds_its_flag_check_resume_rule_and_hparam():
    @dataclasses.dataclass(frozen=True)
    class WithDropout(config.TrainConfig):
        dropout: float = config.option(0.5, 'Dropout rate of the head.', group='model', check=config.fraction,
                                       fixed_on_resume=True, hparam=True)

    values = flags.FlagValues()
    config.define_train_flags(values, WithDropout)
    assert values['dropout'].default == 0.5 and values['dropout'].help == 'Dropout rate of the head.'
    values(['prog', '--dropout=0.25', '--run_name=r'])
    cfg = config.train_config_from_flags(values, config_class=WithDropout)
    assert cfg.dropout == 0.25
    assert 'dropout' in config.resume_fixed(WithDropout) and 'dropout' in config.hyperparameters(WithDropout)
    with pytest.raises(DigitsError, match=r'^--dropout \(1.5\) must be in \[0, 1\)$'):
        config.check_config(WithDropout(dropout=1.5))
    with pytest.raises(DigitsError, match=r'^--dropout \(0.25\) differs from the run being resumed \(0.5, in c.json\)'):
        config.check_resumable(cfg, dataclasses.asdict(WithDropout()), 'c.json')
    model_group = config.train_flags_help(values, WithDropout).split('\nmodel:\n')[1].split('\n\n')[0]
    assert '--dropout: Dropout rate of the head.' in model_group


def test_help_lists_every_flag_by_group_and_exits_0():
    proc = subprocess.run([sys.executable, '-m', 'digits.train', '--help'], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0 and proc.stderr == ''
    groups = [line[:-1] for line in proc.stdout.splitlines() if line.endswith(':') and not line.startswith(' ')]
    assert groups == list(config.GROUPS)
    assert all(f'--{field.name}:' in proc.stdout for field in config.TRAIN_FIELDS)


def test_every_strategy_the_flags_offer_exists():
    from digits.training import distribute
    assert set(config.STRATEGIES) == set(distribute.STRATEGIES)


def serve_config(*args) -> config.ServeConfig:
    values = flags.FlagValues()
    config.define_flags(config.ServeConfig, values)
    values(['prog', '--model=m', *args])
    return config.from_flags(config.ServeConfig, values)


def test_serve_flags_are_the_serve_configs_fields():
    assert serve_config() == config.ServeConfig(model='m')
    cfg = serve_config('--grpc_port=8500', '--noenable_batching', '--version_labels=stable,canary', '--cors_origin=*')
    assert (cfg.grpc_port, cfg.enable_batching, cfg.version_labels, cfg.cors_origin) == (8500, False,
                                                                                         ('stable', 'canary'), '*')


@pytest.mark.parametrize('args,message', [
    (['--grpc_port=-1'], '--grpc_port (-1) must be in [0, 65536)'),
    (['--port=8500', '--grpc_port=8500'], '--grpc_port (8500) must differ from --port'),
    (['--max_batch_size=0'], '--max_batch_size (0) must be positive'),
    (['--batch_timeout_micros=-5'], '--batch_timeout_micros (-5) must not be negative'),
    (['--drain_seconds=-1'], '--drain_seconds (-1.0) must not be negative'),
    (['--version_labels=stable,a/b'], "--version_labels (stable,a/b) has 'a/b'"),
    (['--version_labels=7'], "--version_labels (7) has '7'")])
def test_serve_errors_name_the_flag_and_its_value(args, message):
    with pytest.raises(DigitsError) as error:
        serve_config(*args)
    assert str(error.value).startswith(message), str(error.value)


def test_the_line_readers_flagfile_is_the_recipe_the_default_trains_it_with():
    """configs/lines.cfg (the line reader alone) and the default recipe's line reader (--line_steps) are one
    recipe: LINE_RECIPE for LINE_STEPS steps."""
    values = flags.FlagValues()
    config.define_train_flags(values)
    values(['prog', f'--flagfile={os.path.join(ROOT, "configs", "lines.cfg")}', '--run_name=x'])
    alone = config.train_config_from_flags(values)
    nested = config.TrainConfig(run_name='r', export_dir='models/r').line_reader_config()
    assert alone.train_steps == nested.train_steps == config.LINE_STEPS
    assert all(getattr(alone, k) == getattr(nested, k) == v for k, v in config.LINE_RECIPE.items())
    assert (nested.run_dir, nested.export_dir) == (os.path.join('logs', 'r', 'line_reader'), 'models/r/line_reader')
