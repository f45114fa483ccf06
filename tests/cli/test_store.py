"""``nbcellar store info | verify | gc`` and where the store is looked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from nbcellar.store import open_store


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    store = open_store(tmp_path / "proj" / ".nbcellar")
    old = store.save_namespace({"big": np.random.default_rng(0).random(200_000), "n": 1})
    store.save_namespace({"n": 2})
    store.delete_snapshot(old.id)
    store.close()
    return tmp_path / "proj" / ".nbcellar"


def test_info_is_found_by_walking_up(
    filled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    deep = filled.parent / "notebooks" / "2024"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = CliRunner().invoke(cli, ["store", "info"])
    assert result.exit_code == 0, result.output
    assert f"store:      {filled}" in result.stdout
    assert "snapshots:  1 (1 variables" in result.stdout


def test_store_option_on_the_group_and_the_command(filled: Path) -> None:
    for args in (
        ["--store", str(filled), "store", "info"],
        ["store", "info", "--store", str(filled)],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert f"store:      {filled}" in result.stdout


def test_environment_variable_names_the_store(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBCELLAR_STORE", str(filled))
    result = CliRunner().invoke(cli, ["store", "info"])
    assert f"store:      {filled}" in result.stdout


def test_gc_reports_what_it_freed_then_verify_is_clean(filled: Path) -> None:
    result = CliRunner().invoke(cli, ["store", "gc", "--store", str(filled)])
    assert result.exit_code == 0, result.output
    # the array's buffer and value, and the old value of n (kept inline in the index)
    assert "removed 3 objects, freed 1.5 MiB; kept 0" in result.stdout
    again = CliRunner().invoke(cli, ["store", "gc", "--store", str(filled)])
    assert "removed 0 objects, freed 0 B" in again.stdout
    verified = CliRunner().invoke(cli, ["store", "verify", "--store", str(filled)])
    assert verified.exit_code == 0
    assert "store is intact" in verified.stdout


def _open_files_under(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open (Linux's /proc)."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith(str(folder)):
            held.append(str(target))
    return held


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc/self/fd")
def test_commands_run_in_process_let_go_of_the_store(filled: Path) -> None:
    """A command run in-process (CliRunner, a notebook's ``!``-free call of ``cli``, a test
    suite) closes the store it opened: SQLite's connection keeps itself alive through its
    statement cache, so an unclosed store holds its index files open until the cycle
    collector runs, and a process running many commands ran out of file descriptors."""
    import gc

    gc.disable()  # (what a long-lived process between collections sees)
    try:
        for args in (["store", "info"], ["store", "verify"], ["store", "gc"], ["runs"]):
            for _ in range(3):
                result = CliRunner().invoke(cli, [*args, "--store", str(filled)])
                assert result.exit_code in (0, 1), result.output
        assert _open_files_under(filled) == []
    finally:
        gc.enable()
