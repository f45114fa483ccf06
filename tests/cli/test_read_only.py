"""Commands that only read the store never make one where there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

READING = [
    ["runs"],
    ["runs", "--json"],
    ["compare"],
    ["show", "someid"],
    ["diff", "a", "b"],
    ["status", "nb.py"],
    ["store", "info"],
    ["store", "verify"],
    ["store", "gc"],
]


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_read_only_command_creates_no_store(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    folder = tmp_path / "somewhere"
    folder.mkdir()
    (folder / "nb.py").write_text("# %%\nx = 1\n")
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(cli, args)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2), result.output
    assert not any(p.name == ".nbcellar" for p in tmp_path.rglob("*")), result.output
    if result.exit_code:
        assert result.output.startswith("nbcellar: error: "), result.output


def test_listing_runs_from_python_creates_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbcellar

    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert len(nbcellar.runs()) == 0
    assert not (tmp_path / ".nbcellar").exists()
