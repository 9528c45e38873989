"""A run directory's layout, its stored config, and its checkpoint manager.

    logs/<run_name>/config.json    the run's flags
                    train/ eval/   TensorBoard event files
                    checkpoints/   tf.train.CheckpointManager
                    results.json   final metrics, written atomically at the end
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from typing import TYPE_CHECKING

from digits.atomic import check_writable
from digits.errors import DigitsError, first_line

if TYPE_CHECKING:
    import tensorflow as tf

MAX_CHECKPOINTS = 3


@dataclasses.dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""
    root: str

    @property
    def config_path(self):
        return os.path.join(self.root, 'config.json')

    @property
    def results_path(self):
        return os.path.join(self.root, 'results.json')

    @property
    def checkpoint_dir(self):
        return os.path.join(self.root, 'checkpoints')

    def summary_dir(self, name: str) -> str:
        return os.path.join(self.root, name)


def create(root: str) -> RunDir:
    """Creates the run directory (and parents); a one-line error when it cannot be written."""
    check_writable(root, f'the run directory {root} (--logdir/--run_name)')
    return RunDir(root)


def checkpoint_manager(checkpoint: tf.train.Checkpoint, run: RunDir, task: int = 0,
                       chief: bool = True) -> CheckpointSaver:
    """The run's checkpoint saver: the chief keeps the last MAX_CHECKPOINTS in run.checkpoint_dir."""
    return CheckpointSaver(checkpoint, run, task, chief)


class CheckpointSaver:
    """tf.train.CheckpointManager with TensorFlow's multi-worker rule: every worker saves (saving may run
    collective ops), but only the chief's checkpoints are kept; the others write to a scratch folder
    and delete it at once."""

    def __init__(self, checkpoint: tf.train.Checkpoint, run: RunDir, task: int, chief: bool):
        import tensorflow as tf
        self.chief, self.kept_dir = chief, run.checkpoint_dir
        directory = run.checkpoint_dir if chief else os.path.join(run.root, f'.worker-{task}-checkpoints')
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=MAX_CHECKPOINTS)
        self.last_step, self.last_path = None, None

    def save(self, step: int) -> str:
        """Saves a checkpoint numbered `step` (once); returns its path in the chief's checkpoint folder."""
        import tensorflow as tf
        if step == self.last_step:
            return self.last_path
        try:
            # TensorFlow writes the files under temporary names and updates the `checkpoint` index
            # last, so a crash or a full disk mid-save leaves the previous checkpoint as the latest.
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as e:
            raise DigitsError(f'cannot save the checkpoint of step {step} in {self.manager.directory}: '
                              f'{first_line(e)}; the latest checkpoint is still '
                              f'{self.manager.latest_checkpoint}') from None
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
            path = os.path.join(self.kept_dir, os.path.basename(path))  # the chief's copy of this step
        self.last_step, self.last_path = step, path
        return path


def read_checkpoint(checkpoint: tf.train.Checkpoint, path: str, advice: str = ''):
    """checkpoint.restore(path), with an unreadable or mismatched file as a one-line DigitsError."""
    import tensorflow as tf
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
        return status
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as e:  # IndexError: truncated file
        raise DigitsError(f'cannot restore the latest checkpoint {path} ({first_line(e)}){advice}') from None
