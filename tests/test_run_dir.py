"""digits.training.run_dir: atomic JSON writes, unwritable directories, checkpoint keeping."""
import os

import pytest
import tensorflow as tf

from digits.errors import DigitsError
from digits.training import run_dir


@pytest.mark.skipif(os.geteuid() == 0, reason='root can write anywhere')
def test_unwritable_run_dir_is_one_line_error(tmp_path):
    os.chmod(tmp_path, 0o500)
    with pytest.raises(DigitsError, match='cannot write the run directory'):
        run_dir.create(str(tmp_path / 'run'))


def test_run_dir_under_a_file_is_one_line_error(tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(DigitsError, match=r'cannot write the run directory .*file/run'):
        run_dir.create(str(tmp_path / 'file' / 'run'))


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
