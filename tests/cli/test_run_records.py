"""What a run record keeps beyond params and logged scalars (tagged outputs, the project's
modules, artifact files), and the comparisons and reports made from records and notebooks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow

EXPERIMENT = """\
# %% tags=["parameters"]
alpha = 1.0

# %%
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

import nbcellar
from helper import square

# %%
for step in range(4):
    nbcellar.log(loss=square(alpha - 2) / (step + 1))
nbcellar.log(mse=square(alpha - 2), scores={"a": alpha, "b": 1 / alpha})
frame = pd.DataFrame({"x": [alpha, 2 * alpha]})
nbcellar.log(table=frame)
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [0, alpha])
nbcellar.log(curve=fig)
fig.savefig(nbcellar.artifacts("curve.png"))
(nbcellar.artifacts() / "alpha.txt").write_text(str(alpha))

# %% tags=["accuracy"]
1 / (1 + alpha)

# %% tags=["shown"]
frame
"""


def cli_run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result


def project(tmp_path: Path) -> Path:
    (tmp_path / "helper.py").write_text("def square(x):\n    return x * x\n")
    path = tmp_path / "exp.py"
    path.write_text(EXPERIMENT)
    return path


def runs_json() -> list[dict[str, Any]]:
    return list(json.loads(cli_run("runs", "--json").stdout))


def test_a_record_keeps_tagged_outputs_project_modules_and_artifacts(
    tmp_path: Path, private_store: Path
) -> None:
    path = project(tmp_path)
    cli_run("run", str(path), "-p", "alpha=2")
    record = runs_json()[-1]
    assert record["outputs"] == {"accuracy": 1 / 3, "shown": {"type": "html"}}
    assert record["artifacts"] == ["alpha.txt", "curve.png"]
    folder = private_store / "runs" / record["id"]
    assert (folder / "artifacts" / "alpha.txt").read_text() == "2"
    assert (folder / "artifacts" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    # The project's own module, as it was at run time; not the libraries (nor nbcellar).
    assert list(record["source"]["modules"]) == ["helper"]
    assert (folder / "source" / "helper.py").read_text() == (tmp_path / "helper.py").read_text()
    shown = cli_run("show", record["id"]).stdout
    assert "alpha.txt, curve.png" in shown
    assert "accuracy=0.333" in shown
    assert "modules    helper" in shown

    # Run again after editing only the last cell: the cell that wrote the files is restored,
    # and so are its files, into the new run's own folder.
    path.write_text(EXPERIMENT.replace("\nframe\n", "\nframe.T\n"))
    out = cli_run("run", str(path), "-p", "alpha=2").stdout
    assert "1 of 6 cells ran" in out
    again = runs_json()[-1]
    assert again["id"] != record["id"]
    assert again["artifacts"] == ["alpha.txt", "curve.png"]
    assert (private_store / "runs" / again["id"] / "artifacts" / "alpha.txt").read_text() == "2"
    # And once more without a kernel at all: the files come from the store all the same.
    out = cli_run("run", str(path), "-p", "alpha=2").stdout
    assert "without starting a kernel" in out
    third = runs_json()[-1]
    assert (private_store / "runs" / third["id"] / "artifacts" / "alpha.txt").read_text() == "2"


def test_values_of_every_kind_compare_side_by_side_and_in_a_report(
    tmp_path: Path, private_store: Path
) -> None:
    import nbcellar

    path = project(tmp_path)
    cli_run("run", str(path), "-p", "alpha=1,2,4", "-j", "2")
    runset = nbcellar.runs(grid="last")
    assert set(runset.names()) >= {"loss", "mse", "scores", "table", "curve", "accuracy"}
    assert runset.values["accuracy"].round(3).tolist() == [0.5, 0.333, 0.2]

    scores = runset["scores"]  # a dict: keys x runs, best of each row
    assert scores.kind == "dict"
    assert scores.to_frame().loc["a"].tolist() == [1, 2, 4]
    assert list(scores.to_frame().columns) == ["alpha=1", "alpha=2", "alpha=4"]
    html = scores._repr_html_()
    row_a = re.search(r"<tr><th>a</th>(.*?)</tr>", html)
    assert row_a is not None
    assert row_a.group(1).endswith('background-color:#d9f2d9">4</td>')  # highest a
    assert "4 *" in repr(scores)

    table = runset["table"]  # DataFrames side by side, each under its run's parameters
    assert table.kind == "frame"
    assert table.to_frame()[("alpha=4", "x")].tolist() == [4.0, 8.0]
    assert table._repr_html_().count("<figure") == 3

    curve = runset["curve"]  # figures as images, side by side
    assert curve.kind == "image"
    assert curve._repr_html_().count("data:image/png;base64,") == 3

    loss = runset["loss"]  # logged at every step: a history, drawn per run
    assert loss.histories[0] == [1.0, 0.5, 1 / 3, 0.25]
    assert loss.best == {1}  # alpha=2 reaches 0
    assert loss.has_history
    assert loss._repr_html_().count("data:image/png;base64,") == 1

    accuracy = runset["accuracy"]  # a tagged cell's output
    assert accuracy.best == {0}

    report = tmp_path / "report.html"
    printed = cli_run("report", "-o", str(report)).stdout
    assert "report on 3 runs" in printed
    html = report.read_text()
    for section in ("<h3>scores</h3>", "<h3>table</h3>", "<h3>curve</h3>", "<h3>loss</h3>"):
        assert section in html
    assert html.count("data:image/png;base64,") >= 4  # three figures and the loss chart
    assert not re.search(r"(src|href)=\"(http|file|/)", html)  # everything inline
    terminal = cli_run("compare", "--key", "table").stdout
    assert "--- alpha=4" in terminal
    unknown = CliRunner().invoke(cli, ["report", "--key", "f1", "-o", str(report)])
    assert unknown.exit_code == 2
    assert "no run here logged f1" in unknown.stderr


def test_runs_filter_by_time(tmp_path: Path, private_store: Path) -> None:
    import nbcellar
    from nbcellar.errors import NbcellarError

    path = tmp_path / "tiny.py"
    path.write_text("# %%\nx = 1\n")
    cli_run("run", str(path))
    assert len(nbcellar.runs(since="1h")) == 1
    assert len(nbcellar.runs(since="2999-01-01")) == 0
    assert len(nbcellar.runs(until="2000-01-01")) == 0
    with pytest.raises(NbcellarError, match="cannot read the time 'yesterday'"):
        nbcellar.runs(since="yesterday")


def test_collect_compares_notebooks_executed_by_papermill(tmp_path: Path) -> None:
    import papermill

    import nbcellar

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("alpha = 1.0", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("(alpha - 2) ** 2", metadata={"tags": ["mse"]}),
            nbformat.v4.new_code_cell(
                "print({'a': alpha, 'b': 2 * alpha})", metadata={"tags": ["scores"]}
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    source = tmp_path / "tune.ipynb"
    nbformat.write(nb, source)
    for alpha in (1.0, 2.5):
        papermill.execute_notebook(
            str(source), str(tmp_path / f"out-{alpha}.ipynb"), parameters={"alpha": alpha},
            progress_bar=False, cwd=str(tmp_path),
        )  # fmt: skip
    collection = nbcellar.collect(str(tmp_path / "out-*.ipynb"))
    assert [r.id for r in collection] == ["out-1.0", "out-2.5"]
    assert collection.params["alpha"].tolist() == [1.0, 2.5]
    mse = collection["mse"]
    assert mse.values == [1.0, 0.25]
    assert mse.best == {1}
    scores = collection["scores"]
    assert scores.kind == "dict"
    assert scores.to_frame().loc["b"].tolist() == [2.0, 5.0]
    with pytest.raises(nbcellar.runs.collect.NbcellarError, match="no notebook"):
        nbcellar.collect(tmp_path / "missing.ipynb")
