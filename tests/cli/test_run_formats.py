"""``nbcellar run`` on a notebook as found in the wild: run, warned about once, every field kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

WIDGETS = {"application/vnd.jupyter.widget-state+json": {
    "state": {}, "version_major": 2, "version_minor": 0}}  # fmt: skip


def wild_notebook() -> dict[str, Any]:
    """Saved by an older tool: nbformat 4.4 yet with cell ids, a kernelspec without a name, and
    fields the schema does not allow; Jupyter and nbclient open and run it."""
    return {
        "nbformat": 4,
        "nbformat_minor": 4,
        "generator": {"tool": "exporter"},
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python"},
                     "widgets": WIDGETS},
        "cells": [
            {"id": "intro", "cell_type": "markdown", "metadata": {}, "outputs": [],
             "source": ["# Answer\n", "![p](attachment:p.png)"],
             "attachments": {"p.png": {"image/png": "iVBORw0KGgo="}}},
            {"id": "set", "cell_type": "code", "metadata": {"tags": ["setup"], "tool": {"k": 1}},
             "source": "x = 41", "outputs": []},
            {"id": "say", "cell_type": "code", "metadata": {}, "execution_count": None,
             "source": ["print(x + 1)"], "outputs": [], "tool_field": True},
        ],
    }  # fmt: skip


def nbcellar_run(folder: Path, name: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("nbcellar")
    return subprocess.run(
        [str(exe), "run", name], cwd=folder, capture_output=True, text=True, check=False
    )


def test_run_keeps_every_field_and_warns_in_one_line(tmp_path: Path) -> None:
    original = wild_notebook()
    (tmp_path / "wild.ipynb").write_text(json.dumps(original, indent=1))
    for attempt in ("runs in a kernel", "restored without one"):
        proc = nbcellar_run(tmp_path, "wild.ipynb")
        assert proc.returncode == 0, proc.stderr
        said = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(said) == 1, (attempt, proc.stderr)  # no traceback, no line per cell
        assert said[0].startswith("nbcellar: warning: wild.ipynb: does not follow the nbformat")
        assert "4.4 schema" in said[0]
        assert ("0 of 2 cells ran" in proc.stdout) == (attempt == "restored without one")
        out = json.loads((tmp_path / "wild.out.ipynb").read_text())
        assert (out["nbformat"], out["nbformat_minor"]) == (4, 4)
        assert out["generator"] == original["generator"]
        assert out["metadata"] == original["metadata"]
        assert out["cells"][0] == original["cells"][0]
        assert [c["id"] for c in out["cells"]] == ["intro", "set", "say"]
        assert out["cells"][1]["metadata"]["tool"] == {"k": 1}
        assert out["cells"][1]["metadata"]["tags"] == ["setup"]
        assert out["cells"][2]["tool_field"] is True
        assert out["cells"][2]["outputs"][0]["text"] == ["42\n"]
