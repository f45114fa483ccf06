"""Another local user, as a real process of that user (``sh`` run with its uid): what they
plant is refused, what we store they cannot read, and a group-shared store they can."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import nbcellar_process

OTHER = 4321  # a uid and gid no account uses here

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="acting as a second user needs root",
)


def as_other(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` run by /bin/sh as the other user."""
    return subprocess.run(["/bin/sh", "-c", script], cwd=cwd, user=OTHER, group=OTHER,
                          extra_groups=[], capture_output=True, text=True, check=False,
                          timeout=60)  # fmt: skip


@pytest.fixture
def shared() -> Iterator[Path]:
    """A world-writable folder with the sticky bit, as /tmp is (outside pytest's private
    folders, which the other user cannot enter)."""
    folder = Path(tempfile.mkdtemp(prefix="nbcellar-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_store_another_user_planted_in_a_shared_folder_is_not_used(shared: Path) -> None:
    planted = as_other("mkdir -p .nbcellar/objects && echo planted > .nbcellar/index.sqlite",
                       shared)  # fmt: skip
    assert planted.returncode == 0, planted.stderr
    project = shared / "mine"
    project.mkdir()
    (project / "nb.py").write_text("# %%\nx = 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBCELLAR_")}
    for args in (["run", "nb.py"], ["runs"], ["store", "info"]):
        done = nbcellar_process(*args, cwd=project, env=env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (args, done.stderr)
        assert f"belongs to another user (uid {OTHER})" in lines[0]
        assert "NBCELLAR_SAFE_STORES" in lines[0]
    assert not (project / "nb.out.ipynb").exists()  # nothing ran
    assert (shared / ".nbcellar" / "index.sqlite").read_text() == "planted\n"  # untouched


def test_what_we_store_the_other_user_cannot_read(shared: Path) -> None:
    project = shared / "mine"
    project.mkdir()
    (project / "nb.py").write_text("# %%\nsecret = 'hunter2' * 1000\nprint(len(secret))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBCELLAR_")}
    done = nbcellar_process("run", "nb.py", cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    store = project / ".nbcellar"
    files = [p for p in store.rglob("*") if p.is_file()]
    assert any(p.parent.parent.name == "objects" for p in files)
    assert any(p.name == "executed.ipynb" for p in files)
    for path in files:
        tried = as_other(f"cat '{path}' > /dev/null", project)
        assert tried.returncode != 0, path
        assert "Permission denied" in tried.stderr
    listed = as_other(f"ls '{store}'", project)
    assert listed.returncode != 0


def test_a_store_shared_with_a_group_is_read_by_its_members(shared: Path) -> None:
    project = shared / "team"
    project.mkdir()
    store = project / ".nbcellar"
    store.mkdir()
    os.chown(store, 0, OTHER)
    store.chmod(0o2770)  # the group's folder: what is written in it is the group's
    (project / "nb.py").write_text("import numpy as np\n# %%\nbig = np.arange(200_000)\n")
    done = nbcellar_process("run", "nb.py", "--store", str(store), cwd=project)
    assert done.returncode == 0, done.stderr
    blobs = [p for p in (store / "objects").glob("??/*") if p.is_file()]
    assert blobs
    for path in blobs:
        member = as_other(f"cat '{path}' > /dev/null", project)  # in the group, by its gid
        assert member.returncode == 0, (path, member.stderr)
