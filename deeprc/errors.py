"""The one exception type the CLI turns into a clean message instead of a traceback."""


class InputError(ValueError):
    """Bad user input: the message names the file, line or field and says what to do."""
