"""One exception type for problems the user can fix, so front ends can show a message instead of a traceback."""


class InputError(ValueError):
    """Bad input from the user (file, volume, parameters, checkpoint); the message says what and how to fix it."""
