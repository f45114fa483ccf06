"""Editing a source file in a test as a user edits it: later than its last compilation.

Python reuses a module's cached byte code when the source has the same size and the same
modification time in whole seconds: a test rewriting a module within a second of importing it
would run the old code. A user's edit comes later than that; so does this one.
"""

from __future__ import annotations

import os
from pathlib import Path


def edit_source(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with a modification time two seconds past the old one."""
    before = path.stat().st_mtime if path.exists() else None
    path.write_text(text)
    if before is not None:
        later = max(before + 2, path.stat().st_mtime)
        os.utime(path, (later, later))
