"""digits.run_dir: atomic JSON writes, unwritable directories, checkpoint keeping."""
import json
import os

import pytest
import tensorflow as tf

from digits import run_dir
from digits.errors import DigitsError


def test_write_json_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = str(tmp_path / 'results.json')
    run_dir.write_json(path, {'a': 1})
    run_dir.write_json(path, {'a': 2})
    assert run_dir.read_json(path) == {'a': 2}
    assert os.listdir(tmp_path) == ['results.json']


def test_write_json_failure_keeps_the_old_file(tmp_path):
    path = str(tmp_path / 'results.json')
    run_dir.write_json(path, {'a': 1})
    with pytest.raises(TypeError):
        run_dir.write_json(path, {'a': object()})  # not serialisable: fails half-way through dumping
    with open(path) as f:
        assert json.load(f) == {'a': 1}
    assert os.listdir(tmp_path) == ['results.json']


@pytest.mark.skipif(os.geteuid() == 0, reason='root can write anywhere')
def test_unwritable_run_dir_is_one_line_error(tmp_path):
    os.chmod(tmp_path, 0o500)
    with pytest.raises(DigitsError, match='cannot write the run directory'):
        run_dir.create(str(tmp_path / 'run'))


def test_run_dir_under_a_file_is_one_line_error(tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(DigitsError, match=r'cannot write the run directory .*file/run'):
        run_dir.create(str(tmp_path / 'file' / 'run'))


def test_read_json_errors(tmp_path):
    with pytest.raises(DigitsError, match='cannot read'):
        run_dir.read_json(str(tmp_path / 'missing.json'))
    (tmp_path / 'bad.json').write_text('{')
    with pytest.raises(DigitsError, match='is not valid JSON'):
        run_dir.read_json(str(tmp_path / 'bad.json'))


def test_chief_keeps_checkpoints_and_workers_do_not(tmp_path):
    run = run_dir.create(str(tmp_path / 'run'))
    checkpoint = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64))
    chief = run_dir.checkpoint_manager(checkpoint, run, task=0, chief=True)
    worker = run_dir.checkpoint_manager(checkpoint, run, task=1, chief=False)
    for step in (1, 2, 3, 4):
        chief.save(step)
        worker.save(step)
    assert tf.train.latest_checkpoint(run.checkpoint_dir).endswith('ckpt-4')
    kept = sorted(f for f in os.listdir(run.checkpoint_dir) if f.endswith('.index'))
    assert kept == ['ckpt-2.index', 'ckpt-3.index', 'ckpt-4.index']
    assert sorted(os.listdir(run.root)) == ['checkpoints']
