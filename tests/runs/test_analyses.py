"""``run.analyze(fn)``: a function over a run's checkpoints, a DataFrame by step, each answer
kept so that only new checkpoints (or an edited function) are computed again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nbcellar
from nbcellar.errors import NbcellarError
from tests.runs.test_resume import NOTEBOOK

np = pytest.importorskip("numpy", reason="the training loop uses numpy")

EVALUATE = """\
import numpy as np
truth = np.array([1.0, -2.0, 0.5])

def evaluate(w):
    with open(CALLS, "a") as calls:  # (how many times it was called)
        calls.write("x")
    return {"error": float(np.abs(w - truth).sum())}
"""


def notebook_function(calls: Path, source: str = EVALUATE) -> tuple[Any, dict[str, Any]]:
    """A function as a notebook defines it (in its own namespace, not an importable module)."""
    namespace: dict[str, Any] = {"CALLS": str(calls)}
    exec(source, namespace)
    return namespace["evaluate"], namespace


def count(calls: Path) -> int:
    return len(calls.read_text()) if calls.exists() else 0


def test_an_analysis_computes_only_what_it_has_not_kept(
    tmp_path: Path, private_store: Path
) -> None:
    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    (tmp_path / "die").touch()
    nbcellar.run(path, params={"lr": 0.05}, allow_errors=True)  # its kernel dies at step 4
    first = nbcellar.runs().records[-1]
    calls = tmp_path / "calls"
    evaluate, scope = notebook_function(calls)
    found = nbcellar.runs()[first.id].analyze(evaluate)
    taken = len(found)  # (4 or 5: the last may not have been written when the kernel died)
    assert found.index.tolist() == list(range(taken))
    assert taken >= 4
    assert count(calls) == taken
    errors = found["error"].tolist()
    assert errors[-1] < errors[0]  # (the weights get nearer the truth)

    resumed = nbcellar.run(path, resume=first.id).records[0]
    again = nbcellar.runs()[resumed.id].analyze(evaluate)
    assert again.index.tolist() == list(range(8))
    assert count(calls) == 8  # only the checkpoints it had not seen
    assert again["error"].tolist()[:taken] == errors

    scope["truth"] = np.array([1.0, -2.0, 0.0])  # the data it reads changed: all again
    nbcellar.runs()[resumed.id].analyze(evaluate)
    assert count(calls) == 16
    edited, _ = notebook_function(calls, EVALUATE.replace("abs(w - truth)", "abs(w)"))
    nbcellar.runs()[resumed.id].analyze(edited)
    assert count(calls) == 16 + 8  # an edited function: all again


def test_an_analysis_asking_for_what_checkpoints_do_not_keep_is_one_error(
    tmp_path: Path, private_store: Path
) -> None:
    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    run = nbcellar.run(path).runs[0]
    with pytest.raises(NbcellarError, match="takes 'model', which the checkpoints do not keep"):
        run.analyze(lambda model: 1.0)


def test_the_command_lists_checkpoints_and_analyses_them(
    tmp_path: Path, private_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from nbcellar.cli.main import cli

    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    run = nbcellar.run(path).records[0]
    (tmp_path / "evaluation.py").write_text(EVALUATE.replace("CALLS", repr(str(tmp_path / "n"))))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    listed = runner.invoke(cli, ["checkpoints", run.id[:15], "--json"])
    assert listed.exit_code == 0, listed.output
    rows = __import__("json").loads(listed.stdout)
    assert [r["step"] for r in rows] == list(range(8))
    assert all(r["run"] == run.id and r["loss"] > 0 for r in rows)
    analysed = runner.invoke(cli, ["checkpoints", run.id, "--analyze", "evaluation:evaluate"],
                             terminal_width=200)  # fmt: skip
    assert analysed.exit_code == 0, analysed.output
    header = [line.split() for line in analysed.stdout.splitlines() if "error" in line]
    assert header == [["step", "error"]], analysed.stdout
    bad = runner.invoke(cli, ["checkpoints", run.id, "--analyze", "evaluation:nope"])
    assert bad.exit_code == 2
    assert bad.stderr.strip() == ("nbcellar: error: --analyze evaluation:nope: evaluation has no "
                                  "function nope")  # fmt: skip


@pytest.mark.slow
def test_an_analysis_on_a_dask_cluster_gives_what_it_gives_here(
    tmp_path: Path, private_store: Path
) -> None:
    pytest.importorskip("distributed", reason="the Dask executor needs distributed")
    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    run = nbcellar.run(path).runs[0]
    here, _ = notebook_function(tmp_path / "here")
    there, _ = notebook_function(tmp_path / "there")
    on_cluster = run.analyze(there, executor="dask", jobs=2)
    assert count(tmp_path / "there") == 8  # (computed by the workers)
    assert on_cluster.equals(run.analyze(here))


def test_show_draws_each_checkpoint_metric_by_step(tmp_path: Path, private_store: Path) -> None:
    from click.testing import CliRunner

    from nbcellar.cli.main import cli
    from nbcellar.cli.render import SPARKS

    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    run = nbcellar.run(path).records[0]
    shown = CliRunner().invoke(cli, ["show", run.id], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "checkpoints: 8, steps 0 to 7" in shown.stdout
    loss = next(line for line in shown.stdout.splitlines() if line.strip().startswith("loss"))
    chart = next(word for word in loss.split() if set(word) <= set(SPARKS))
    assert len(chart) == 8
    assert chart[0] == SPARKS[-1]
    assert chart[-1] == SPARKS[0]


def test_checkpoint_metrics_are_compared_and_reported_as_histories(
    tmp_path: Path, private_store: Path
) -> None:
    from click.testing import CliRunner

    from nbcellar.cli.main import cli

    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    runset = nbcellar.run(path, grid={"lr": [0.05, 0.01]}, jobs=1)
    loss = runset["loss"]  # (what the checkpoints kept: nbcellar.log was not called for it)
    assert loss.has_history
    assert [len(r.history("loss")) for r in runset.runs] == [8, 8]
    assert loss.history_chart() is not None  # one line per run, step on x
    report = tmp_path / "report.html"
    made = CliRunner().invoke(cli, ["report", *[r.id for r in runset.records], "-o", str(report)])
    assert made.exit_code == 0, made.output
    html = report.read_text()
    section = html[html.index(">loss<") :]
    assert "<img" in section[:20_000]  # the chart of the histories


def test_a_function_reaching_itself_has_a_digest_that_follows_its_code() -> None:
    from nbcellar.runs.analyses import function_digest

    def defined(source: str) -> Any:
        namespace: dict[str, Any] = {"np": np}
        exec(source, namespace)
        return namespace["norm"]

    # np.linalg.norm puts "norm" among the names the code reads: the function itself.
    named = "def norm(w):\n    return {'norm': float(np.linalg.norm(w))}"
    recursive = "def norm(w, n=0):\n    return w if n > 2 else norm(w, n + 1)"
    assert function_digest(defined(named)) == function_digest(defined(named))
    assert function_digest(defined(recursive)) != function_digest(defined(named))
    assert function_digest(defined(named.replace("float", "int"))) != function_digest(
        defined(named)
    )
