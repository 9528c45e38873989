"""The README is a front door that cannot drift: at most 250 lines and 24 KB, no dates or issue numbers, its
Quick start what CI runs, every command, flag, file, test and link it names real; the docs' links resolve."""
import glob
import os
import re

import pytest
from absl import flags
from conftest import ROOT

from digits import config
from support import reference

MAX_LINES, MAX_BYTES = 250, 24 * 1024
# absl's own flags, which every command accepts
ABSL_FLAGS = {'flagfile', 'help', 'helpfull', 'helpshort'}


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def quick_start() -> list[str]:
    block = read('README.md').split('## Quick start', 1)[1].split('```sh', 1)[1].split('```', 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def command_flags() -> dict[str, set[str]]:
    """{command: the flags it accepts}, from the declarations the commands use."""
    found = {}
    for name, _, define in reference.COMMANDS:
        values = flags.FlagValues()
        define(values)
        found[name] = set(values) | ABSL_FLAGS
    return found


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = quick_start()
    assert len(commands) == 2
    assert commands[0].endswith('-m digits.train') and commands[1].endswith('-m pytest')
    assert '--data_dir' not in commands[0]  # the default data ships with the package: no download
    ci = commands[1].replace('.venv/', '"$venv"/').replace('venv .venv', 'venv "$venv"')
    assert ci in read('.ci/run').splitlines()
    assert 'venv=.ci/venv' in read('.ci/run').splitlines()  # CI never touches the user's .venv


def test_readme_is_short_and_has_no_dates_or_issue_numbers():
    text = read('README.md')
    assert len(text.splitlines()) <= MAX_LINES and len(text.encode()) <= MAX_BYTES
    # A year of this project's (a step count such as 2000 is not one).
    assert not re.findall(r'\b20[1-3]\d\b|\b\d{4}-\d\d-\d\d\b', text), 'dates belong in docs/experiments/'
    assert not re.findall(r'(?i)\bissues? \d+|#\d+\b', text), 'issue numbers belong in docs/experiments/'


def test_every_command_and_flag_the_readme_names_exists():
    text, accepted = read('README.md'), command_flags()
    every_flag = set().union(*accepted.values())
    for name in re.findall(r'(?:-m digits\.|digits-)([a-z_]+)', text):
        assert name in accepted, f'README names a command digits.{name} that does not exist'
    for line in re.findall(r'`([^`\n]+)`', text) + text.splitlines():
        command = re.search(r'(?:-m digits\.|\bdigits-)([a-z]+)', line)
        named = re.findall(r'(?<![\w-])--(?:no)?([a-z][a-z_]*)', line)
        for flag in named:
            allowed = accepted[command.group(1)] if command and command.group(1) in accepted else every_flag
            assert flag in allowed or flag.removeprefix('no') in allowed, f'--{flag} in: {line}'


def test_every_file_and_test_the_readme_names_exists():
    text = read('README.md')
    named = r'\b((?:scripts|configs|tests|docs|notebooks|digits)/[\w./-]+\.(?:py|cfg|md|ipynb|png))'
    for path in re.findall(named, text):
        assert os.path.isfile(os.path.join(ROOT, path)), path
    for path, test in re.findall(r'(tests/\w+\.py)::(\w+)', text):
        assert re.search(rf'^def {test}\(', read(path), re.M), f'{path}::{test}'
    for test in re.findall(r'`(test_\w+)`', text):  # a test named without its module: some module has it
        modules = glob.glob(os.path.join(ROOT, 'tests', '*.py'))
        assert any(re.search(rf'^def {test}\(', read(p), re.M) for p in modules), test
    for script in re.findall(r'`(\w+\.py)`', text):
        assert glob.glob(os.path.join(ROOT, '*', script)), script


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(path: str) -> set[str]:
    return {slug(h) for h in re.findall(r'^#+ (.+)$', read(path), re.M)}


@pytest.mark.parametrize('page', ['README.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(
    os.path.join(ROOT, 'docs', '**', '*.md'), recursive=True)))
def test_every_link_resolves(page):
    for target in re.findall(r'\]\(([^)\s]+)\)', read(page)):
        if re.match(r'https?://', target):
            continue
        path, _, anchor = target.partition('#')
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        assert os.path.exists(os.path.join(ROOT, resolved)), f'{page}: {target}'
        if anchor and resolved.endswith('.md'):
            assert anchor in anchors(resolved), f'{page}: {target} (no such heading)'


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
    assert len(header) <= 8, 'a header is purpose, command, result and a link; the rest is the lab notebook'
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


def test_the_layout_block_follows_the_tree():
    """README's Layout names every folder and module of the package, and nothing that is not there."""
    block = read('README.md').split('## Layout', 1)[1].split('```', 2)[1]
    package = os.path.join(ROOT, 'digits')
    folders = {name for name in os.listdir(package) if os.path.isfile(os.path.join(package, name, '__init__.py'))}
    named_folders = set(re.findall(r'^  (\w+)/', block, re.M))
    assert named_folders == folders
    modules = {os.path.basename(p) for p in glob.glob(os.path.join(package, '**', '*.py'), recursive=True)}
    named_modules = set(re.findall(r'\b(\w+\.py)\b', block))
    assert modules - {'__init__.py'} == named_modules
