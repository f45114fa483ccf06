"""Where the store lives: ``--store``, then ``$NBCELLAR_STORE``, then the nearest ``.nbcellar/``
found walking up from the working directory (like ``.git``), else a new one in the working
directory."""

from __future__ import annotations

import os
from pathlib import Path

STORE_DIRNAME = ".nbcellar"
ENV_VAR = "NBCELLAR_STORE"


def find_store_root(path: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """The store folder to use; nothing is created here."""
    if path is not None:
        return Path(path).expanduser().absolute()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().absolute()
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return here / STORE_DIRNAME
