"""Errors a user can act on: each names the file, line, task or field at fault."""


class InputError(Exception):
    """Bad input data or configuration. The CLI prints it and exits with status 2."""
