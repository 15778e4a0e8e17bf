"""Errors the library raises for bad input other than a scenario file."""


class InputError(ValueError):
    """Bad input (a key, a folder, an option): the message says what and where."""
