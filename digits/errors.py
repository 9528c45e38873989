"""The one exception type for user errors: bad flags, bad data, bad files."""


class DigitsError(Exception):
    """A problem the user can fix; entry points print it as one line and exit with status 2."""
