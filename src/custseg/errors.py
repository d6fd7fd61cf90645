"""Errors a user can cause and fix. The CLI turns these into exit code 2."""


class CustsegError(Exception):
    """A problem with the user's input or request, explained in one paragraph."""


class DataError(CustsegError):
    """The data cannot be used as given (unreadable, wrong columns, bad values)."""


class ModelError(CustsegError):
    """A model file is missing, untrusted, or does not fit the data."""
