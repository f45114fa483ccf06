"""Bad input gets one clear line, a non-zero exit, and nothing in the store changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from tests.conftest import nbcellar_process

ALIAS_BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "\n".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)
)


def files(folder: Path) -> dict[str, str]:
    folder.mkdir(exist_ok=True)
    (folder / "nb.py").write_text("# %%\nx = 1\n")
    (folder / "cells.ipynb").write_text(
        json.dumps({"cells": "no", "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    deep = "[" * 100_000 + "]" * 100_000
    (folder / "deep.ipynb").write_text(f'{{"cells": {deep}, "nbformat": 4}}')
    (folder / "grid.bin").write_bytes(bytes(range(256)) * 8)
    (folder / "bomb.yaml").write_text(ALIAS_BOMB)
    big = list(range(1000))
    (folder / "big.yaml").write_text(f"a: {big}\nb: {big}\n")
    return {"nb": str(folder / "nb.py")}


CASES = {
    "timeout nan": ["run", "{nb}", "--timeout", "nan"],
    "timeout inf": ["run", "{nb}", "--timeout", "inf"],
    "timeout 0": ["run", "{nb}", "--timeout", "0"],
    "timeout -1": ["run", "{nb}", "--timeout", "-1"],
    "empty kernel name": ["run", "{nb}", "--kernel", ""],
    "cells not a list": ["run", "cells.ipynb"],
    "JSON 100,000 deep": ["run", "deep.ipynb"],
    "a 5000-digit value": ["run", "{nb}", "-p", "n=" + "9" * 5000],
    "a binary grid": ["run", "{nb}", "--grid", "grid.bin"],
    "a YAML alias bomb": ["run", "{nb}", "--grid", "bomb.yaml"],
    "a 10^6-run grid": ["run", "{nb}", "--grid", "big.yaml"],
    "store /dev/null": ["run", "{nb}", "--store", "/dev/null"],
    "store /dev/null, runs": ["--store", "/dev/null", "runs"],
    "an unknown option": ["run", "{nb}", "--bogus"],
    "jobs 0": ["run", "{nb}", "-j", "0"],
    "an unknown executor": ["run", "{nb}", "--executor", "nope"],
    "an address for local": ["run", "{nb}", "--executor", "local://far"],
}


@pytest.mark.parametrize("args", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_and_changes_nothing(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    where = files(tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    before = sorted(os.listdir(tmp_path / "work"))
    result = CliRunner().invoke(cli, [a.format(**where) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nbcellar: error: "), lines[0]
    assert "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path / "work")) == before  # no store, no output notebook


def test_a_big_grid_runs_when_asked_to(tmp_path: Path) -> None:
    from nbcellar.runs.params import expand

    grid = tmp_path / "g.yaml"
    grid.write_text("a: [1, 2, 3]\nb: [1, 2]\n")
    assert len(expand([], grid, max_runs=6)) == 6
    with pytest.raises(Exception, match="more than 5; give --max-runs 6"):
        expand([], grid, max_runs=5)


def test_a_deleted_working_directory_is_one_line(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; time.sleep(1); "
         "from nbcellar.cli.main import main; sys.argv[1:] = ['runs']; main()"],
        cwd=gone, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    gone.rmdir()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.strip().splitlines() == [
        "nbcellar: error: the working directory no longer exists; cd to a folder that does"
    ]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_output_to_a_full_device_is_one_line(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        done = nbcellar_process("store", "info", "--store", str(tmp_path), stdout=full,
                       stderr=subprocess.PIPE)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "nbcellar: error: No space left on device writing the output"
    ]


def test_an_output_encoding_without_the_notebooks_characters_is_not_a_traceback(
    tmp_path: Path,
) -> None:
    notebook = tmp_path / "accents.py"
    notebook.write_text('# %%\nprint("héllo ✓")\n')
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "NBCELLAR_STORE": str(tmp_path / "s")}
    done = nbcellar_process("run", str(notebook), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert 'print("h?llo ?")' in done.stdout  # the table, with what the terminal cannot show
    import nbformat

    executed = nbformat.read(tmp_path / "accents.out.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "héllo ✓\n"  # the notebook keeps them
