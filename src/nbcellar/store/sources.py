"""The source of a notebook function travels with it: tracebacks, ``inspect.getsource``, ``f??``
and ``%debug`` work on a restored function as in the kernel that defined it.

A cell's code is compiled under a file name that exists only in memory (ipykernel's
``/tmp/ipykernel_<pid>/<hash>.py``, IPython's ``<ipython-input-<n>-<hash>>``): its lines are in
:mod:`linecache`, put there by IPython's compiler, and are gone in a fresh kernel. A code object
compiled from such a cell is stored with the cell's lines and file name; loading it registers
those lines in :mod:`linecache` again (never replacing lines already registered under that
name) and gives the code its file name back.

The stored name is the same whichever process stores it (the pickle is also a value's content
fingerprint, which must not change from one kernel to the next): the storing process's id in a
file name is stored as a mark, and the loading process puts its own id there. So a restored
ipykernel cell function has the file name this kernel gives the same cell, and its tracebacks
read ``Cell In[n]`` once that cell runs. Code from files on disk and other code stays as
cloudpickle stores it (``<dynamic-code>``).
"""

from __future__ import annotations

import linecache
import os
import re
import types
from typing import Any

StoredName = tuple[str, ...]
"""A file name cut where the storing process's id was: join with the loading process's id."""


def in_memory_lines(filename: str) -> list[str] | None:
    """The lines :mod:`linecache` holds for a file that is not on disk (registered with no
    modification time, as IPython registers a cell), or None."""
    entry = linecache.cache.get(filename)
    if entry is None or len(entry) != 4 or entry[1] is not None:
        return None
    lines = entry[2]
    return lines if isinstance(lines, list) and lines else None


def stored_name(filename: str) -> StoredName:
    return tuple(re.split(rf"(?<!\d){os.getpid()}(?!\d)", filename))


def loaded_name(name: StoredName) -> str:
    return str(os.getpid()).join(name)


def register_lines(filename: str, lines: list[str]) -> None:
    """Put ``lines`` in :mod:`linecache` under ``filename`` unless it holds lines for it."""
    if filename not in linecache.cache:
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)


def code_with_source(code: types.CodeType, name: StoredName, lines: list[str]) -> types.CodeType:
    """Loading a stored cell code object: its lines registered, its file name back."""
    filename = loaded_name(name)
    register_lines(filename, lines)
    return code.replace(co_filename=filename)


class CellFiles:
    """Per pickler: what to store for the code objects of each file name (memoized, so the
    lines of a cell are written once per stream however many functions it defined)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[StoredName, list[str]] | None] = {}

    def reduce(self, code: types.CodeType) -> Any:
        """A reduce tuple for a code object of a cell, or NotImplemented for other code."""
        filename = code.co_filename
        if filename not in self._seen:
            lines = in_memory_lines(filename)
            self._seen[filename] = None if lines is None else (stored_name(filename), lines)
        found = self._seen[filename]
        if found is None:
            return NotImplemented
        # The code itself is stored with no file name (as cloudpickle stores any code), which
        # also keeps this hook from seeing it again.
        return code_with_source, (code.replace(co_filename="<dynamic-code>"), *found)
