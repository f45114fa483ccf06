"""Where the store lives: ``--store``, then ``$NBCELLAR_STORE``, then the nearest ``.nbcellar/``
found walking up from the working directory (like ``.git``), else a new one in the working
directory.

A shared store (a URL: ``s3://bucket/prefix``, ``file:///nfs/team/store``) is used through a
local store folder of its own under the user's cache folder, which names the URL in a file:
callers pass that folder around as they pass any store folder (to kernels, in run records).
"""

from __future__ import annotations

import os
from pathlib import Path

STORE_DIRNAME = ".nbcellar"
ENV_VAR = "NBCELLAR_STORE"


URL_FILE = "shared-url"
"""In the local folder of a shared store: the store's URL."""


def find_store_root(path: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """The store folder to use; nothing is created here (but, for a shared store's URL, its
    local folder and the file in it naming the URL)."""
    if path is not None:
        return _folder(os.fspath(path))
    env = os.environ.get(ENV_VAR)
    if env:
        return _folder(env)
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            refuse_foreign(candidate)
            return candidate
    return here / STORE_DIRNAME


def _folder(given: str) -> Path:
    from nbcellar.store.shared import is_url

    if is_url(given):
        return shared_cache_root(given)
    return Path(given).expanduser().absolute()


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nbcellar"


def shared_cache_root(url: str) -> Path:
    """The local store folder of the shared store at ``url`` (made, with the file naming the
    URL, if it is not there): ``$XDG_CACHE_HOME/nbcellar/shared/<digest of the URL>/``."""
    from nbcellar.store.shared import normal_url
    from nbcellar.store.signing import url_digest

    url = normal_url(url)
    root = cache_folder() / "shared" / url_digest(url)
    named = root / URL_FILE
    if not named.exists():
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = root / f".{URL_FILE}.{os.getpid()}.tmp"
        temporary.write_text(url + "\n", encoding="utf-8")
        os.replace(temporary, named)
    return root


def shared_url(root: str | os.PathLike[str]) -> str | None:
    """The URL of the shared store whose local folder is ``root``; None for a local store.
    (What to give a worker on another machine, to open the same store there.)"""
    try:
        return (Path(root) / URL_FILE).read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


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
