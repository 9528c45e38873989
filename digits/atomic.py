"""Files written whole or not at all: a reader sees the old file or the new one, never half of one."""
import json
import os
import tempfile

from digits.errors import DigitsError


def check_writable(directory: str, what: str):
    """Creates directory if needed and writes a scratch file there, so a bad path fails before training."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise DigitsError(f'cannot write {what}: {e.strerror}') from None


def write_json(path: str, obj):
    """Writes obj as JSON atomically: a reader sees the old file or the new one, never half of one."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode())


def write_bytes(path: str, content: bytes):
    """Writes content to path atomically (a temporary file in the same folder, synced, then renamed)."""
    directory = os.path.dirname(path) or '.'
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path), suffix='.tmp')
    except OSError as e:
        raise DigitsError(f'cannot write {path}: {e.strerror}') from None
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(content)
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
