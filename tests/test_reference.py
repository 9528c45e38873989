"""support.reference: docs/commands.md is exactly what the commands' flag declarations render."""
import os

from conftest import ROOT

from digits import config
from support import reference


def test_the_command_reference_is_generated_from_the_declarations():
    with open(os.path.join(ROOT, 'docs', 'commands.md')) as f:
        assert f.read() == reference.render(), 'run: python scripts/support/reference.py > docs/commands.md'


def test_the_reference_names_every_flag_of_every_command():
    text = reference.render()
    for field in config.TRAIN_FIELDS:
        assert f'`--{field.name}`' in text
    for name in ('model', 'run_dir', 'report_dir', 'output_json', 'save_preprocessed', 'host', 'port',
                 'max_body_mb', 'sweep_dir', 'grid', 'range', 'random', 'parallel', 'best_flagfile'):
        assert f'`--{name}`' in text, name
