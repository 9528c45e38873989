"""docs/commands.md, rendered from the commands' own flag declarations (tests/test_reference.py checks that the
file is exactly this, so the reference cannot drift from the code):

    python scripts/support/reference.py > docs/commands.md
"""
import dataclasses
import functools
import importlib
import sys

from absl import flags

from digits import config

# (command, its entry module, the function declaring its flags)
COMMANDS = (('train', 'digits.train', config.define_train_flags),
            ('evaluate', 'digits.evaluate', functools.partial(config.define_flags, config.EvalConfig)),
            ('predict', 'digits.predict', functools.partial(config.define_flags, config.PredictConfig)),
            ('serve', 'digits.serve', functools.partial(config.define_flags, config.ServeConfig)),
            ('convert', 'digits.convert', functools.partial(config.define_flags, config.ConvertConfig)),
            ('sweep', 'digits.sweep', config.define_sweep_flags))
HEADER = '''# Commands

Every command runs as `python -m digits.<command>` in a checkout, or as `digits-<command>` once installed
(`pip install .`). `--help` lists a command's flags with their defaults and `--helpfull` adds absl's own; a
`--flagfile=configs/<recipe>.cfg` reads flags from a file (later flags override it). Bad input is one line on
stderr and exit status 2, e.g. `digits.train: error: --batch_size (-3) must be positive`.

This page is generated from the flag declarations (`python scripts/support/reference.py > docs/commands.md`); a test
keeps it equal to them.
'''


def render() -> str:
    """The whole reference: each command's docstring and a table of its flags."""
    return HEADER + ''.join(render_command(*command) for command in COMMANDS)


def render_command(name: str, module: str, define) -> str:
    """One command's section."""
    values = flags.FlagValues()
    define(values)
    doc = (importlib.import_module(module).__doc__ or '').strip()
    text = f'\n## {name}\n\n`python -m {module}`, or `digits-{name}` once installed.\n\n{doc}\n\n'
    if name == 'sweep':
        own = [values[n] for n in values if n not in {f.name for f in config.TRAIN_FIELDS}]
        return text + flag_table(own) + '\nand every flag of [train](#train), ' \
                                          'given to each run.\n'
    if name != 'train':
        return text + flag_table([values[n] for n in values])
    for group in config.GROUPS:
        fields = [f for f in dataclasses.fields(config.TrainConfig) if f.metadata['group'] == group]
        text += f'**{group}**\n\n' + flag_table([values[f.name] for f in fields]) + '\n'
    return text.rstrip('\n') + '\n'


def flag_table(flag_list) -> str:
    """Flags as a Markdown table: name, default, help."""
    rows = ['| flag | default | meaning |', '| --- | --- | --- |']
    for flag in flag_list:
        default = '' if flag.default in (None, '', []) else f'`{flag.default_as_str.strip(chr(39))}`'
        kind = f'`--{flag.name}` / `--no{flag.name}`' if flag.boolean else f'`--{flag.name}`'
        rows.append(f'| {kind} | {default} | {flag.help.replace("|", "/")} |')
    return '\n'.join(rows) + '\n'


if __name__ == '__main__':
    sys.stdout.write(render())
