"""The artifact folder: where a run's cells write the files the run produces.

``nbcellar.artifacts()`` is ``runs/<id>/artifacts/`` in the store during ``nbcellar run`` (the
runner sets ``NBCELLAR_ARTIFACTS`` in the kernel), and ``artifacts/`` in the working directory
elsewhere. The cell cache treats files a cell writes there as part of its effect: they are kept
with the cell's entry and written again when the cell is restored, so a restored run has the
same artifacts as one that ran.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbcellar.kernel.protocol import ARTIFACTS_VARIABLE as ENV

RESERVED_FILES = "nbcellar:files"  # the snapshot variable holding a cell's artifact files

Listing = dict[str, tuple[int, int]]


def artifact_folder(base: Path | None = None) -> Path:
    """The current artifact folder (not created)."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    return (base or Path.cwd()) / "artifacts"


def listing(folder: Path) -> Listing:
    """Every file under ``folder``: relative path -> (size, modification time in ns)."""
    found: Listing = {}
    if not folder.is_dir():
        return found
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            try:
                stat = path.stat()
            except OSError:
                continue
            found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def changed(folder: Path, before: Listing) -> dict[str, bytes]:
    """The files under ``folder`` created or changed since ``before``, with their bytes."""
    files: dict[str, bytes] = {}
    for name, stamp in listing(folder).items():
        if before.get(name) != stamp:
            try:
                files[name] = (folder / name).read_bytes()
            except OSError:
                continue
    return files


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write files back under ``folder`` (each through a temporary file and a rename)."""
    for name, data in files.items():
        target = folder / name
        if folder.resolve() not in target.resolve().parents:
            continue  # a name that would leave the folder
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.nbcellar-tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
