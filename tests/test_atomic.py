"""digits.atomic: files written whole or not at all, and read back with one-line errors."""
import json
import os

import pytest

from digits import atomic
from digits.errors import DigitsError


def test_write_json_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = str(tmp_path / 'results.json')
    atomic.write_json(path, {'a': 1})
    atomic.write_json(path, {'a': 2})
    assert atomic.read_json(path) == {'a': 2}
    assert os.listdir(tmp_path) == ['results.json']


def test_write_json_failure_keeps_the_old_file(tmp_path):
    path = str(tmp_path / 'results.json')
    atomic.write_json(path, {'a': 1})
    with pytest.raises(TypeError):
        atomic.write_json(path, {'a': object()})  # not serialisable: fails half-way through dumping
    with open(path) as f:
        assert json.load(f) == {'a': 1}
    assert os.listdir(tmp_path) == ['results.json']


def test_read_json_errors(tmp_path):
    with pytest.raises(DigitsError, match='cannot read'):
        atomic.read_json(str(tmp_path / 'missing.json'))
    (tmp_path / 'bad.json').write_text('{')
    with pytest.raises(DigitsError, match='is not valid JSON'):
        atomic.read_json(str(tmp_path / 'bad.json'))
