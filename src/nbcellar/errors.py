"""Errors that reach the user as one clear line: what went wrong, where, and what to do."""

from __future__ import annotations


class NbcellarError(Exception):
    """Base of every error nbcellar reports to a user instead of a traceback."""


class NbcellarWarning(UserWarning):
    """Base of nbcellar's warnings: the command line shows each as one ``nbcellar: warning:``
    line."""


class NotebookError(NbcellarError):
    """A notebook or script could not be read or written."""

    def __init__(self, path: str, problem: str, hint: str = "") -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        message = f"{path}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
