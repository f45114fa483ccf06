"""``nbcellar run -p / --grid``: parameters injected papermill's way, grids sharing the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow


def write(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import time"),
            nbformat.v4.new_code_cell(
                "scale = 2\nmodel = 'linear'", metadata={"tags": ["parameters"]}
            ),
            nbformat.v4.new_code_cell("time.sleep(0.3)\ndata = list(range(10))"),  # preprocessing
            nbformat.v4.new_code_cell(
                "result = sum(v * scale for v in data)\nprint(model, result)"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["run", *args])


def printed(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_one_run_with_parameters(tmp_path: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    result = invoke(str(nb), "-p", "scale=3", "-p", "model=rf")
    assert result.exit_code == 0, result.output
    out = nbformat.read(tmp_path / "train.out.ipynb", as_version=4)
    injected = out.cells[2]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert injected.source == "# Parameters\nscale = 3\nmodel = 'rf'"
    assert printed(tmp_path / "train.out.ipynb") == "rf 135\n"
    original = nbformat.read(nb, as_version=4)
    assert len(original.cells) == 4  # the input is left as it was


def test_a_grid_runs_every_combination_and_shares_what_does_not_vary(tmp_path: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    grid = tmp_path / "grid.yaml"
    grid.write_text("scale: [1, 2, 3]\n")
    result = invoke(str(nb), "--grid", str(grid), "-p", "model=rf,svm", "-j", "2")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "train.runs"
    outputs = sorted(folder.glob("*.ipynb"))
    assert [p.name for p in outputs][:2] == [
        "001-scale=1,model=rf.ipynb",
        "002-scale=1,model=svm.ipynb",
    ]
    assert len(outputs) == 6
    assert printed(outputs[-1]) == "svm 135\n"
    statuses = [
        [c.metadata.get("nbcellar", {}).get("status") for c in nbformat.read(p, as_version=4).cells]
        for p in outputs
    ]
    # Two runs at a time: the slow preprocessing cell (index 3 after injection) ran once; the
    # run that reached it at the same moment waited and restored it.
    assert sorted(s[3] for s in statuses) == ["ran"] + ["restored"] * 5
    assert "6 of 6 runs ok (2 at a time)" in result.stdout
    assert "restored from the cache" in result.stdout


def test_unknown_parameters_warn_or_fail_with_strict(tmp_path: Path, private_store: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    warned = invoke(str(nb), "-p", "depth=3")
    assert warned.exit_code == 0, warned.output
    assert "depth not assigned in the 'parameters' cell" in warned.stderr
    strict = invoke(str(nb), "-p", "depth=4", "--strict", "-o", str(tmp_path / "strict.ipynb"))
    assert strict.exit_code == 2
    assert "depth" in strict.stderr
    assert "--strict" in strict.stderr
    assert not (tmp_path / "strict.ipynb").exists()


def test_malformed_values_fail_before_anything_runs(tmp_path: Path, private_store: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    result = invoke(str(nb), "-p", "scale=[1, 2")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "-p scale" in result.stderr
    assert not private_store.exists()
    assert not (tmp_path / "train.out.ipynb").exists()


def test_percent_scripts_take_parameters_too(tmp_path: Path) -> None:
    script = tmp_path / "report.py"
    script.write_text(
        "# %% tags=[\"parameters\"]\nname = 'world'\n\n# %%\nprint(f'hello {name}')\n"
    )
    result = invoke(str(script), "-p", "name=nbcellar")
    assert result.exit_code == 0, result.output
    assert printed(tmp_path / "report.out.ipynb") == "hello nbcellar\n"


def test_runs_one_at_a_time_keep_their_order(tmp_path: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    result = invoke(str(nb), "-p", "scale=1,2,3", "-j", "1", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    outputs = sorted((tmp_path / "out").glob("*.ipynb"))
    assert [printed(p) for p in outputs] == ["linear 45\n", "linear 90\n", "linear 135\n"]
    first = nbformat.read(outputs[0], as_version=4).cells[3].metadata["nbcellar"]["status"]
    assert first == "ran"


def test_a_failing_run_does_not_stop_the_others(tmp_path: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    result = invoke(str(nb), "-p", "scale=1,'x',3", "-j", "2")
    assert result.exit_code == 1
    assert "2 of 3 runs ok" in result.stdout
    assert "run 2 of" in result.stderr
    assert "TypeError" in result.stderr
    assert len(list((tmp_path / "train.runs").glob("*.ipynb"))) == 3


# --- run records


def runs_json(*args: str) -> list[dict[str, Any]]:
    import json

    listed = CliRunner().invoke(cli, ["runs", "--json", *args])
    assert listed.exit_code == 0, listed.output
    return list(json.loads(listed.stdout))


def test_every_run_is_recorded_in_the_store(tmp_path: Path, private_store: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    single = invoke(str(nb), "-p", "scale=5")
    assert single.exit_code == 0, single.output
    grid = invoke(str(nb), "-p", "scale=1,'x'", "-j", "2")
    assert grid.exit_code == 1
    records = runs_json()
    assert [r["params"] for r in records] == [{"scale": 5}, {"scale": 1}, {"scale": "x"}]
    assert [r["status"] for r in records] == ["ok", "ok", "failed"]
    first, ok, failed = records
    assert first["grid"] is None
    assert ok["grid"] == failed["grid"] is not None
    assert first["notebook"] == str(nb.resolve())
    assert first["cells"]["total"] == 5
    assert first["values"] == {}
    assert first["environment"]["python"]
    assert "TypeError" in failed["error"]
    assert first["output"] == str((tmp_path / "train.out.ipynb").resolve())
    executed = private_store / "runs" / first["id"] / "executed.ipynb"
    assert printed(executed) == "linear 225\n"
    assert [r["id"] for r in runs_json("--status", "failed")] == [failed["id"]]
    assert [r["id"] for r in runs_json("--last", "1")] == [failed["id"]]
    assert [r["params"] for r in runs_json("--where", "scale<3")] == [{"scale": 1}]
    assert [r["params"] for r in runs_json("--where", "scale=x")] == [{"scale": "x"}]
    assert len(runs_json("--where", "scale!=1", "--where", "scale!=5")) == 1
    for condition in ("scale", "scale<", "scale>>1"):  # (none of them matches no run: an error)
        bad = CliRunner().invoke(cli, ["runs", "--where", condition])
        assert bad.exit_code == 2, (condition, bad.output)
        assert f"--where '{condition}'" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert "no value after '<'" in CliRunner().invoke(cli, ["runs", "--where", "scale<"]).stderr
    assert runs_json("--notebook", str(tmp_path / "other.ipynb")) == []
    table = CliRunner().invoke(cli, ["runs"], terminal_width=200)
    assert table.exit_code == 0
    assert "3 runs in" in table.stdout
    assert "scale=5" in table.stdout


def test_a_run_in_a_git_repository_records_its_commit(tmp_path: Path, private_store: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    nb = write(tmp_path / "train.ipynb")
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", "train.ipynb")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
    assert invoke(str(nb)).exit_code == 0
    clean = runs_json()[-1]
    assert len(clean["source"]["git_commit"]) == 40
    assert clean["source"]["git_dirty"] is False
    edited = nbformat.read(nb, as_version=4)
    edited.cells[1].source = "scale = 7\nmodel = 'linear'"
    nbformat.write(edited, nb)
    assert invoke(str(nb)).exit_code == 0
    dirty = runs_json()[-1]
    assert dirty["source"] == {"git_commit": clean["source"]["git_commit"], "git_dirty": True}
    diff = (private_store / "runs" / dirty["id"] / "uncommitted.diff").read_text()
    assert "scale = 7" in diff


# --- values logged with nbcellar.log


LOGGED = [
    ("alpha = 1.0", ["parameters"]),
    (
        "import time\nimport nbcellar\nimport numpy as np\ntime.sleep(0.3)\n"
        "nbcellar.log(prep='done', rows=200, sample=np.arange(3))",
        [],
    ),
    (
        "import pandas as pd\nfor step in range(3):\n    nbcellar.log(loss=alpha / (step + 1))\n"
        "nbcellar.log(table=pd.DataFrame({'a': [1, 2]}), mse=alpha * 0.5)",
        [],
    ),
]


def test_logged_values_stay_with_the_run_when_cells_are_restored(
    tmp_path: Path, private_store: Path
) -> None:
    import json

    from nbcellar.runs.records import load_log
    from nbcellar.store import open_store

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(s, metadata={"tags": t}) for s, t in LOGGED]
    )
    path = tmp_path / "logged.ipynb"
    nbformat.write(nb, path)
    assert invoke(str(path), "-p", "alpha=2").exit_code == 0  # everything runs
    assert invoke(str(path), "-p", "alpha=1,2", "-j", "2").exit_code == 0
    records = runs_json()
    # alpha=1 restores the slow cell (its logs come from the cache); the second alpha=2 run
    # restores every cell without a kernel.
    assert [r["cells"]["ran"] for r in records] == [4, 2, 0]
    for record in records:
        alpha = record["params"]["alpha"]
        assert record["values"] == {
            "prep": "done",
            "rows": 200,
            "sample": {"type": "ndarray"},
            "loss": alpha / 3,
            "table": {"type": "DataFrame"},
            "mse": alpha * 0.5,
        }
    store = open_store(private_store)
    try:
        for record in records:
            entries = load_log(store, record["id"])
            assert [name for name, _ in entries] == [
                "prep", "rows", "sample", "loss", "loss", "loss", "table", "mse"
            ]  # fmt: skip
            assert entries[2][1].tolist() == [0, 1, 2]  # from the cache in the later runs
            assert entries[6][1]["a"].tolist() == [1, 2]
    finally:
        store.close()
    # Every cell that ran was recorded: nothing warned in the executed notebooks.
    for output in [*(tmp_path / "logged.runs").glob("*.ipynb"), tmp_path / "logged.out.ipynb"]:
        assert "could not record" not in output.read_text()

    # nbcellar show: by id, by a unique end of one; its logged values and histories.
    last = records[-1]
    shown = CliRunner().invoke(cli, ["show", last["id"][-6:]], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert f"run {last['id']}: ok" in shown.stdout
    assert "4 restored" in shown.stdout
    assert "3 values, first 2, min 0.666667, max 2" in shown.stdout
    assert "<DataFrame>" in shown.stdout
    as_json = CliRunner().invoke(cli, ["show", last["id"], "--json"])
    assert json.loads(as_json.stdout)["histories"]["loss"] == [2.0, 1.0, 2 / 3]
    ambiguous = CliRunner().invoke(cli, ["show", "20"])
    assert ambiguous.exit_code == 2
    assert "names 3 runs" in ambiguous.stderr
    missing = CliRunner().invoke(cli, ["show", "no-such-run"])
    assert missing.exit_code == 2
    assert "no run 'no-such-run'" in missing.stderr


def test_compare_puts_logged_values_side_by_side_best_highlighted(
    tmp_path: Path, private_store: Path
) -> None:
    import json

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("alpha = 1.0", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(
                "import nbcellar\nnbcellar.log(mse=(alpha - 2) ** 2, accuracy=1 / (1 + alpha),"
                " model='ridge')"
            ),
        ]
    )
    path = tmp_path / "tune.ipynb"
    nbformat.write(nb, path)
    assert invoke(str(path), "-p", "alpha=1,2,3", "-j", "2").exit_code == 0
    rows = json.loads(CliRunner().invoke(cli, ["compare", "--json"]).stdout)
    assert [r["params"] for r in rows] == [{"alpha": 1}, {"alpha": 2}, {"alpha": 3}]
    assert [r["values"]["mse"] for r in rows] == [1.0, 0.0, 1.0]
    table = CliRunner().invoke(cli, ["compare"], terminal_width=200)
    assert table.exit_code == 0, table.output
    ids = {r["id"][-6:] for r in rows}
    lines = [ln for ln in table.stdout.splitlines() if ln.split()[:1] and ln.split()[0] in ids]
    assert "0 *" in lines[1]  # the lowest mse: alpha=2
    assert "0.5 *" in lines[0]  # the highest accuracy: alpha=1
    assert "model" in table.stdout
    assert "ridge *" not in table.stdout  # nothing to choose between
    assert "* best: mse (lowest), accuracy (highest)" in table.stdout
    one = CliRunner().invoke(cli, ["compare", rows[0]["id"], rows[2]["id"], "--key", "mse"])
    assert one.exit_code == 0
    assert "accuracy" not in one.stdout
    unknown = CliRunner().invoke(cli, ["compare", "--key", "f1"])
    assert unknown.exit_code == 2
    assert "no run here logged f1" in unknown.stderr

    # The same from Python: nbcellar.runs() gives a RunSet.
    import nbcellar

    runset = nbcellar.runs(notebook=path, grid="last")
    assert len(runset) == 3
    assert runset.params["alpha"].tolist() == [1, 2, 3]
    assert runset.values["mse"].tolist() == [1.0, 0.0, 1.0]
    mse = runset["mse"]
    assert list(mse.to_frame().columns) == ["alpha", "mse"]
    assert mse.best == {1}
    assert "* best mse (lowest)" in repr(mse)
    assert 'background-color:#d9f2d9">0</td>' in mse._repr_html_()
    assert [r.params for r in nbcellar.runs(alpha=3)] == [{"alpha": 3}]
    with pytest.raises(KeyError, match="logged: accuracy, model, mse"):
        runset["f1"]


def test_diff_shows_what_differs_between_two_runs(tmp_path: Path, private_store: Path) -> None:
    nb = write(tmp_path / "train.ipynb")
    assert invoke(str(nb), "-p", "scale=1,3", "-j", "2").exit_code == 0
    first, second = runs_json()
    result = CliRunner().invoke(cli, ["diff", first["id"], second["id"][-6:]], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "scale: 1 -> 3" in text
    assert "-scale = 1" in text
    assert "+scale = 3" in text
    assert "-linear 45" in text
    assert "+linear 135" in text
    same = CliRunner().invoke(cli, ["diff", first["id"], first["id"]])
    assert "no differences" in same.stdout
