"""A store found by walking up that another user owns is refused, with how to allow it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbcellar.errors import NbcellarError
from nbcellar.store.location import find_store_root

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="giving a folder to another user needs root",
)


@needs_root
def test_a_store_another_user_planted_above_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    monkeypatch.delenv("NBCELLAR_SAFE_STORES", raising=False)
    planted = tmp_path / ".nbcellar"
    planted.mkdir()
    os.chown(planted, 4321, 4321)
    work = tmp_path / "me" / "project"
    work.mkdir(parents=True)
    with pytest.raises(NbcellarError, match=r"belongs to another user \(uid 4321\).*--store"):
        find_store_root(start=work)
    # Allowed explicitly: named, or listed as safe.
    assert find_store_root(planted) == planted
    monkeypatch.setenv("NBCELLAR_SAFE_STORES", str(planted))
    assert find_store_root(start=work) == planted


def test_ones_own_store_above_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    (tmp_path / ".nbcellar").mkdir()
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    assert find_store_root(start=work) == tmp_path / ".nbcellar"
