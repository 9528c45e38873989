"""The README's promises that can drift: Quick start == CI, recipes documented and parseable."""
import glob
import os
import re

import pytest
from absl import flags

from conftest import ROOT
from digits import config


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def quick_start() -> list[str]:
    block = read('README.md').split('## Quick start', 1)[1].split('```sh', 1)[1].split('```', 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = quick_start()
    assert len(commands) == 2
    assert commands[0].endswith('-m digits.train') and commands[1].endswith('-m pytest')
    assert commands[1] in read('.ci/run').splitlines()


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(ROOT, 'configs', '*.cfg'))))
def test_recipes_start_with_their_command_and_result(path, monkeypatch):
    """Each recipe's header gives a command that parses into a valid config, and its measured result."""
    with open(path) as f:
        lines = f.read().splitlines()
    header = [line for line in lines if line.startswith('#')]
    name = os.path.relpath(path, ROOT)
    commands = [h.split('python -m digits.train', 1)[1].split() for h in header
                if f'python -m digits.train --flagfile={name}' in h]
    assert lines[0].startswith('# ') and commands, 'the first lines give the command'
    assert any(re.match(r'# (Measured|Not measured)', h) for h in header), 'states its measured result'
    monkeypatch.chdir(ROOT)  # flagfile paths in the commands are relative to the checkout
    values = flags.FlagValues()
    config.define_train_flags(values)
    values(['prog', *commands[0]])
    config.train_config_from_flags(values)


def test_mnist_recipe_is_the_default():
    values = flags.FlagValues()
    config.define_train_flags(values)
    values(['prog', f'--flagfile={os.path.join(ROOT, "configs", "mnist.cfg")}', '--run_name=x'])
    assert config.train_config_from_flags(values) == config.TrainConfig(run_name='x', export_dir='models/x')
