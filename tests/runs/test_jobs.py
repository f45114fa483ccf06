"""``nbcellar jobs`` on launches of the local executor: listed from the store by any process,
shown, waited for; bad ids are one line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import nbcellar
from nbcellar.cli.main import cli

NOTEBOOK = """\
# %% tags=["parameters"]
x = 1

# %%
import nbcellar
nbcellar.log(y=x * 2)
"""


def test_a_local_grid_is_listed_shown_and_waited_for(tmp_path: Path, private_store: Path) -> None:
    path = tmp_path / "calc.py"
    path.write_text(NOTEBOOK)
    runset = nbcellar.run(path, grid={"x": [1, 2]}, jobs=1)
    grid = runset.records[0].grid
    runner = CliRunner()
    listed = runner.invoke(cli, ["jobs"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert grid in listed.stdout
    assert "2 ok" in listed.stdout
    assert "local" in listed.stdout
    as_json = json.loads(runner.invoke(cli, ["jobs", "--json"]).stdout)
    assert [j["id"] for j in as_json] == [grid]
    assert as_json[0]["runs"] == [r.id for r in runset.records]
    shown = runner.invoke(cli, ["jobs", "show", grid[:12]], terminal_width=200)  # (a prefix)
    assert shown.exit_code == 0, shown.output
    assert all(r.id in shown.stdout for r in runset.records)
    waited = runner.invoke(cli, ["jobs", "wait", grid], terminal_width=200)
    assert waited.exit_code == 0, waited.output
    cancelled = runner.invoke(cli, ["jobs", "cancel", grid])  # ended: nothing to stop
    assert cancelled.exit_code == 0
    assert cancelled.stdout.strip() == f"launch {grid}: nothing to cancel (every run ended)"


def test_an_unknown_launch_is_one_line(tmp_path: Path, private_store: Path) -> None:
    for command in (["show"], ["wait"], ["cancel"]):
        result = CliRunner().invoke(cli, ["jobs", *command, "grid-nope"])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"nbcellar: error: no launch 'grid-nope': there is no store at {private_store}"
        ]
