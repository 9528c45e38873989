"""The exceptions an entry point turns into one line and an exit status, never a traceback."""
import signal


class DigitsError(Exception):
    """A problem the user can fix; entry points print it as one line and exit with status 2."""
    prefix = 'error: '
    exit_code = 2


class Interrupted(DigitsError):
    """SIGTERM / SIGINT stopped training after a checkpoint; exit status 128 + signal, as a shell reports."""
    prefix = ''

    def __init__(self, signum: int, message: str):
        super().__init__(f'{signal.Signals(signum).name}: {message}')
        self.exit_code = 128 + signum


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (TensorFlow appends op traces), or its type's name."""
    text = (getattr(error, 'message', None) or getattr(error, 'strerror', None) or str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__
