"""A run directory's layout, its stored config, atomic file writes, and its checkpoint manager.

    logs/<run_name>/config.json    the run's flags
                    train/ eval/   TensorBoard event files
                    checkpoints/   tf.train.CheckpointManager
                    results.json   final metrics, written atomically at the end
"""
import dataclasses
import json
import os
import shutil
import tempfile

import tensorflow as tf

from digits.errors import DigitsError

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
    try:
        os.makedirs(root, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as e:
        raise DigitsError(f'cannot write the run directory {root}: {e.strerror}') from None
    return RunDir(root)


def write_json(path: str, obj):
    """Writes obj as JSON atomically: a reader sees the old file or the new one, never half of one."""
    directory = os.path.dirname(path) or '.'
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path), suffix='.tmp')
    except OSError as e:
        raise DigitsError(f'cannot write {path}: {e.strerror}') from None
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write('\n')
            f.flush()
            os.fsync(f.fileno())  # The data is on disk before the rename makes it visible.
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise DigitsError(f'cannot write {path}: {e.strerror}') from None
        raise


def read_json(path: str) -> dict:
    """Reads a JSON file written by write_json; a one-line error if missing or malformed."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise DigitsError(f'cannot read {path}: {e.strerror}') from None
    except json.JSONDecodeError as e:
        raise DigitsError(f'{path} is not valid JSON: {e}') from None


def checkpoint_manager(checkpoint: tf.train.Checkpoint, run: RunDir, task: int = 0,
                       chief: bool = True) -> 'CheckpointSaver':
    """The run's checkpoint saver: the chief keeps the last MAX_CHECKPOINTS in run.checkpoint_dir."""
    return CheckpointSaver(checkpoint, run, task, chief)


class CheckpointSaver:
    """tf.train.CheckpointManager with TensorFlow's multi-worker rule: every worker saves (saving may run
    collective ops), but only the chief's checkpoints are kept; the others write to a scratch folder
    and delete it at once."""

    def __init__(self, checkpoint: tf.train.Checkpoint, run: RunDir, task: int, chief: bool):
        self.chief = chief
        directory = run.checkpoint_dir if chief else os.path.join(run.root, f'.worker-{task}-checkpoints')
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=MAX_CHECKPOINTS)

    def save(self, step: int) -> str:
        """Saves a checkpoint numbered `step`; returns its path (deleted already on a non-chief)."""
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return path
