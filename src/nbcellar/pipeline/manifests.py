"""What a pipeline task produced, as the tasks after it read it: one small JSON file per task.

After a task's run, ``nbcellar build`` writes ``.nbcellar-build/<task>.json`` in the
pipeline's folder (the tasks' working folder): the run, its parameters, the final variables of
its notebook (for each, the stored snapshot holding it and the version of its content), what it
logged, its product files, and a ``version`` made only of contents (the variables' versions,
the logged values, the products' bytes). A cell that calls ``nbcellar.upstream("clean")`` is
keyed on that version (see nbcellar.cache.inputs), so it runs again only when what ``clean``
produced changed, and a task whose upstream is unchanged is served from the store whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FOLDER = ".nbcellar-build"
NONE = "none"  # the version of a task that was never built here
PROFILE_VARIABLE = "NBCELLAR_PROFILE"
"""A build under a profile (``smoke``: ``nbcellar test``) keeps its manifests apart, in
``.nbcellar-build/<profile>/``, and its products under ``.nbcellar-<profile>/``: set in the
building process, its kernels inherit it, so ``upstream()`` reads the same ones."""


def profile() -> str:
    import os

    name = os.environ.get(PROFILE_VARIABLE, "")
    return "".join(ch for ch in name if ch.isalnum() or ch in "-_")


def manifest_path(root: Path, task: str) -> Path:
    safe = "".join("_" if ch in "/\\\0" else ch for ch in task)
    folder = root / FOLDER / profile() if profile() else root / FOLDER
    return folder / f"{safe}.json"


def find_manifest(task: str, cwd: Path) -> Path | None:
    """The manifest of ``task`` seen from ``cwd``: in its folder or the nearest parent that
    has one (a task's notebook opened from its subfolder in Jupyter finds the pipeline's)."""
    here = cwd.resolve()
    for folder in (here, *here.parents):
        candidate = manifest_path(folder, task)
        if candidate.is_file():
            return candidate
        if (folder / FOLDER).is_dir():
            return None  # (the pipeline's folder: the task was not built)
    return None


def read_manifest(task: str, cwd: Path) -> dict[str, Any] | None:
    path = find_manifest(task, cwd)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def upstream_version(task: str, cwd: Path) -> str:
    """The content version of what ``task`` produced, seen from ``cwd`` (NONE if unbuilt)."""
    data = read_manifest(task, cwd)
    return NONE if data is None else str(data.get("version", NONE))


def write_manifest(root: Path, task: str, data: Mapping[str, Any]) -> Path:
    """Write the manifest whole (a reader sees the old one or the new one)."""
    import os
    import tempfile

    path = manifest_path(root, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{task}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(dict(data), out, indent=1, sort_keys=True, default=str)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def source_facts(root: Path, source: Path, read: Any) -> Any:
    """What ``read(source)`` says of a task's source (its declared ``upstream``), kept in
    ``.nbcellar-build/.sources.json`` by the source's content hash: a build of an unchanged
    pipeline reads no notebook (reading one costs jupytext's import)."""
    from nbcellar.cache.sources import file_hash

    path = manifest_path(root, ".sources")
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    digest = file_hash(str(source))
    held = known.get(str(source))
    if isinstance(held, dict) and held.get("hash") == digest:
        return held.get("facts")
    facts = read(source)
    known[str(source)] = {"hash": digest, "facts": facts}
    if (root / FOLDER).is_dir():  # (a pipeline built here before: not made by a first look)
        write_manifest(root, ".sources", known)
    return facts
