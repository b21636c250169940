"""One exception type for problems the user can fix, so front ends can show a message instead of a traceback."""


class InputError(ValueError):
    """Bad input from the user (file, volume, parameters, checkpoint); the message says what and how to fix it."""


def first_line(exc: BaseException) -> str:
    """First line of an exception's message, or its type: library messages (nibabel, torch, numpy) can span many
    lines, and an :class:`InputError` that quotes one is shown as one line."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
