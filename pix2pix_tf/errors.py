"""The errors people see: each names the thing that is wrong and the fix.

The lowest layer of the package: importing it loads nothing else, so any module (and any
command's cheap checks) can raise these.
"""


class DataError(ValueError):
    """Bad input data or a bad request about it (a corrupt image, a mismatched pair, an empty
    folder, a missing model file). ``problems`` lists ``(path, message)`` for every file found
    wrong."""

    def __init__(self, message, problems=()):
        super().__init__(message)
        self.problems = list(problems)


class OptionError(ValueError):
    """An option that does not apply where it was given (another task's, or a network's that
    was not chosen); the message names where it belongs."""
