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
            refuse_foreign(candidate)
            return candidate
    return here / STORE_DIRNAME


def store_for_notebook(path: str | os.PathLike[str] | None, notebook: Path) -> Path:
    """The store of a command given a notebook: found walking up from the notebook's folder,
    as its kernel in Jupyter finds it; else from the working directory; a new one goes in
    the working directory when the notebook is below it (the project), else beside the
    notebook."""
    if path is not None or os.environ.get(ENV_VAR):
        return find_store_root(path)
    folder = notebook.resolve().parent
    for start in (folder, Path.cwd().absolute()):
        found = find_store_root(None, start)
        if found.is_dir():
            return found
    here = Path.cwd().absolute()
    return (here if folder.is_relative_to(here) else folder) / STORE_DIRNAME


SAFE_VAR = "NBCELLAR_SAFE_STORES"


def refuse_foreign(root: Path) -> None:
    """A store found by walking up that another user owns is not used: restoring its values
    runs code they wrote (a store planted in a shared parent folder). Named explicitly (``--store``,
    ``$NBCELLAR_STORE``) or listed in ``$NBCELLAR_SAFE_STORES`` (``:``-separated), it is."""
    from nbcellar.errors import NbcellarError

    try:
        owner = root.stat().st_uid
    except OSError:
        return
    if not hasattr(os, "geteuid") or owner == os.geteuid():
        return
    allowed = [p for p in os.environ.get(SAFE_VAR, "").split(os.pathsep) if p]
    if any(p == "*" or Path(p).expanduser().absolute() == root for p in allowed):
        return
    raise NbcellarError(
        f"{root} belongs to another user (uid {owner}) and restoring from it would run their "
        f"code; to use it anyway pass --store {root}, or add it to ${SAFE_VAR}"
    )
