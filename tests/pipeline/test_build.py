"""``nbcellar build`` on a 6-task pipeline of percent scripts and notebooks, in real kernels:
the first build, a no-op rebuild, a comment-only edit, edits in the first task and in a
project module, a failing task, ``--explain``; and a pipeline declared badly, one line each."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import nbcellar
from nbcellar.cli.main import cli
from nbcellar.pipeline.spec import PipelineError, load_pipeline

pytestmark = pytest.mark.slow

PIPELINE = """\
tasks:
  - source: tasks/load.py
  - source: tasks/clean.ipynb
    product: {nb: products/clean.ipynb, data: products/clean.npy}
  - source: tasks/features.py
  - source: tasks/stats.py
    params: {power: 1}
  - source: tasks/model.ipynb
  - source: tasks/report.py
"""

LOAD = """\
# %% tags=["parameters"]
upstream = None
n = 200

# %%
import numpy as np
import nbcellar

# %%
data = np.arange(n)
nbcellar.log(rows=len(data))
"""

CLEAN = [  # a notebook: ploomber's product and upstream paths, a file handed on
    ("upstream = ['load']\nproduct = None", ["parameters"]),
    ("import numpy as np\nimport nbcellar", []),
    ("raw = nbcellar.upstream('load')['data']", []),
    ("cleaned = raw[raw % 5 != 0]\nnp.save(product['data'], cleaned)", []),
]

FEATURES = """\
# %% tags=["parameters"]
upstream = ["clean"]

# %%
import numpy as np
from helpers import scale

# %%
x = np.load(upstream["clean"]["data"])

# %%
feats = scale(x)
"""

STATS = """\
# %% tags=["parameters"]
upstream = ["load"]
power = 2

# %%
import nbcellar
total = int((nbcellar.upstream("load")["data"] ** power).sum())
"""

MODEL = [
    ("upstream = ['features', 'stats']", ["parameters"]),
    ("import nbcellar\nfeatures = nbcellar.upstream('features')", []),
    ("stats = nbcellar.upstream('stats')", []),
    ("w = float(features['feats'].mean()) / stats['total']", []),
]

REPORT = """\
# %% tags=["parameters"]
upstream = ["model"]

# %%
import nbcellar
w = nbcellar.upstream("model")["w"]

# %%
print(f"w = {w:.6f}")
"""

HELPERS = "def scale(values):\n    return values * 3\n"


def notebook(path: Path, cells: list[tuple[str, list[str]]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nb.cells = [nbformat.v4.new_code_cell(s, metadata={"tags": t} if t else {}) for s, t in cells]
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "helpers.py").write_text(HELPERS)
    (tasks / "load.py").write_text(LOAD)
    notebook(tasks / "clean.ipynb", CLEAN)
    (tasks / "features.py").write_text(FEATURES)
    (tasks / "stats.py").write_text(STATS)
    notebook(tasks / "model.ipynb", MODEL)
    (tasks / "report.py").write_text(REPORT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def expected_w(n: int = 200, factor: int = 3) -> float:
    kept = [v for v in range(n) if v % 5 != 0]
    return factor * sum(kept) / len(kept) / sum(range(n))


def statuses(built: object) -> dict[str, str]:
    return {n: o.status for n, o in built.outcomes.items()}  # type: ignore[attr-defined]


def run_count() -> int:
    return len(nbcellar.runs().records)


def test_a_pipeline_builds_once_then_only_what_an_edit_changes(project: Path) -> None:
    first = nbcellar.build()
    assert list(statuses(first)) == ["load", "clean", "features", "stats", "model", "report"]
    assert set(statuses(first).values()) == {"ran"}, statuses(first)
    report = nbformat.read(project / "products" / "report.ipynb", as_version=4)
    assert f"w = {expected_w():.6f}" in report.cells[-1].outputs[0]["text"]
    assert (project / "products" / "clean.npy").exists()
    assert nbcellar.upstream("load").logged["rows"] == 200
    runs = run_count()

    again = nbcellar.build()  # nothing changed: nothing runs, no kernel, no run recorded
    assert set(statuses(again).values()) == {"up to date"}, statuses(again)
    assert run_count() == runs

    path = project / "tasks" / "features.py"
    path.write_text(path.read_text().replace("feats = scale(x)", "feats = scale(x)  # scaled"))
    commented = nbcellar.build()  # a comment-only edit: nothing runs
    assert set(statuses(commented).values()) == {"up to date"}, statuses(commented)
    assert run_count() == runs

    path = project / "tasks" / "load.py"
    path.write_text(path.read_text().replace("np.arange(n)", "np.arange(0, n)"))
    same = nbcellar.build()  # its cell runs, and makes the same data: nothing after it runs
    assert same["load"].status == "ran"
    assert same["load"].cells["ran"] == 1, same["load"]
    assert {n: s for n, s in statuses(same).items() if n != "load"} == dict.fromkeys(
        ["clean", "features", "stats", "model", "report"], "up to date"
    )

    path.write_text(path.read_text().replace("np.arange(0, n)", "np.arange(0, n) ** 2"))
    edited = nbcellar.build()
    assert set(statuses(edited).values()) == {"ran"}, statuses(edited)
    assert edited["load"].cells["ran"] == 1
    assert edited["clean"].cells["ran"] == 2  # what reads load's data, and what follows
    assert edited["clean"].why == "cell [4] reads what task 'load' produced, which changed"
    assert edited["features"].cells["ran"] == 2  # the file clean wrote changed: x, feats
    assert edited["report"].cells["ran"] == 2

    (project / "helpers.py").write_text(HELPERS.replace("* 3", "* 4"))
    moduled = nbcellar.build()
    assert statuses(moduled) == {"load": "up to date", "clean": "up to date",
                                 "features": "ran", "stats": "up to date", "model": "ran",
                                 "report": "ran"}  # fmt: skip
    assert "module helpers, which changed" in moduled["features"].why
    assert moduled["features"].cells["ran"] == 2  # the import, and the cell calling scale
    w = nbcellar.upstream("model")["w"]
    kept = [v * v for v in range(200) if v * v % 5 != 0]
    assert w == pytest.approx(4 * sum(kept) / len(kept) / sum(v * v for v in range(200)))

    (project / "helpers.py").write_text(HELPERS)  # changed back: the earlier build's cells
    back = nbcellar.build()
    assert (
        back["features"].why == "its inputs are back to an earlier build's: restored from the store"
    )
    assert back["features"].cells["ran"] == 0, back["features"]  # (what it makes, rewritten)
    w = nbcellar.upstream("model")["w"]
    assert w == pytest.approx(3 * sum(kept) / len(kept) / sum(v * v for v in range(200)))


def test_a_failing_task_stops_what_needs_it_and_the_others_go_on(project: Path) -> None:
    path = project / "tasks" / "clean.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[3].source = "raise ValueError('bad rows')"
    nbformat.write(nb, path)
    done = CliRunner().invoke(cli, ["build", "-j", "2"])
    assert done.exit_code == 1, done.output
    lines = {ln.split(":")[0]: ln for ln in done.stdout.splitlines() if ":" in ln}
    assert lines["clean"].startswith("clean: FAILED (")
    assert "ValueError" in lines["clean"]
    assert lines["features"] == "features: skipped (task 'clean' did not build)"
    assert lines["model"] == "model: skipped (task 'features' did not build)"
    assert lines["stats"].startswith("stats: ran")  # (it needs load only)
    assert done.stdout.splitlines()[-1] == "6 tasks: 2 ran, 1 failed, 3 skipped"
    # The runs table names what a task read and wrote, not the absolute paths it was given.
    listed = CliRunner().invoke(cli, ["runs"], terminal_width=200).stdout
    assert "upstream=load" in listed, listed
    assert str(project) not in listed.replace("\n", "")


def test_explain_says_why_each_task_would_run_and_runs_nothing(project: Path) -> None:
    never = CliRunner().invoke(cli, ["build", "--explain"])
    assert never.exit_code == 0, never.output
    assert "load: would run (never built)" in never.stdout
    assert run_count() == 0
    built = nbcellar.build("stats")  # and the task it needs
    assert statuses(built) == {"load": "ran", "stats": "ran"}
    stats = project / "tasks" / "stats.py"
    stats.write_text(stats.read_text().replace("** power", "** power + 1"))
    runs = run_count()
    told = CliRunner().invoke(cli, ["build", "--explain"])
    assert told.exit_code == 0, told.output
    assert "load: up to date" in told.stdout
    assert "stats: would run (cell [3] changed)" in told.stdout
    assert "clean: would run (never built)" in told.stdout
    assert "model: would run (never built)" in told.stdout
    assert run_count() == runs


@pytest.mark.long
def test_ctrl_c_stops_the_build_and_the_next_one_goes_on(project: Path) -> None:
    path = project / "tasks" / "stats.py"
    path.write_text(STATS + "\n# %%\nimport time\nopen('stats.started', 'w').close()\n"
                    "time.sleep(60)\n")  # fmt: skip
    from tests.cli.test_run_forks import default_ctrl_c

    build = subprocess.Popen([str(Path(sys.executable).with_name("nbcellar")), "build"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_ctrl_c)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (project / "stats.started").exists():
            assert build.poll() is None, build.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        build.send_signal(signal.SIGINT)  # (a terminal's Ctrl-C, to the command alone)
        out, err = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert build.returncode == 130, out + err
    assert "nbcellar: interrupted" in err
    assert not (project / ".nbcellar-build" / "stats.json").exists()
    path.write_text(STATS)
    again = nbcellar.build()
    assert again["stats"].status == "ran"
    assert again["load"].status == "up to date"


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("tasks:\n  - source: tasks/a.py\n    upstream: [b]\n  - source: tasks/b.py\n"
         "    upstream: [a]\n", "the tasks form a cycle: a -> b -> a"),
        ("tasks:\n  - source: tasks/a.py\n    upstream: [zzz]\n",
         "task 'a' needs 'zzz', which is not a task (tasks: a)"),
        ("tasks:\n  - source: tasks/missing.py\n", "source tasks/missing.py does not exist"),
        ("tasks:\n  - source: tasks/a.py\n    product: out.ipynb\n  - source: tasks/b.py\n"
         "    product: out.ipynb\n", "tasks 'a' and 'b' both produce out.ipynb"),
        ("tasks:\n  - source: tasks/a.py\n  - source: tasks/a.py\n",
         "two tasks named 'a' (a.py and a.py); give one a 'name'"),
        ("tasks: [\n", "not valid YAML"),
        ("tasks:\n  - source: tasks/a.py\n    upsteam: [b]\n", "unknown field 'upsteam'"),
        ("task:\n  - source: tasks/a.py\ntasks: []\n", "unknown field 'task'"),
    ],
)  # fmt: skip
def test_a_badly_declared_pipeline_is_one_line_and_nothing_runs(
    tmp_path: Path, spec: str, said: str, private_store: Path
) -> None:
    (tmp_path / "tasks").mkdir()
    for name in ("a", "b"):
        (tmp_path / "tasks" / f"{name}.py").write_text("# %%\nx = 1\n")
    (tmp_path / "pipeline.yaml").write_text(spec)
    with pytest.raises(PipelineError, match=None) as raised:
        load_pipeline(tmp_path)
    assert said in str(raised.value)
    done = CliRunner().invoke(cli, ["build", "-C", str(tmp_path)])
    assert done.exit_code == 2
    assert done.stderr.strip().splitlines() == [f"nbcellar: error: {raised.value}"]
    assert not (tmp_path / ".nbcellar-build").exists()
    assert not private_store.exists()


def test_a_task_whose_parameters_cell_does_not_parse_is_one_line(
    tmp_path: Path, private_store: Path
) -> None:
    (tmp_path / "first.py").write_text("# %% tags=['parameters']\nupstream = None\n")
    (tmp_path / "second.py").write_text("# %% tags=['parameters']\nupstream = ['first'\n")
    done = CliRunner().invoke(cli, ["build", "-C", str(tmp_path)])
    assert done.exit_code == 2
    assert done.stderr.strip().splitlines() == [
        f"nbcellar: error: {tmp_path / 'second.py'}: its parameters cell is not valid Python "
        "(line 1: '[' was never closed); fix it and build again"
    ]
    assert not private_store.exists()
    drawn = CliRunner().invoke(cli, ["build", "-C", str(tmp_path), "--plot", "dag.png"])
    assert drawn.exit_code == 2
    assert "dag.png: draws an .html page or an .svg file" in drawn.stderr
    nowhere = tmp_path / "no" / "dag.svg"
    drawn = CliRunner().invoke(cli, ["build", "-C", str(tmp_path), "--plot", str(nowhere)])
    assert drawn.exit_code == 2
    assert drawn.stdout == ""  # (refused before anything is explained)
    assert f"{nowhere}: there is no folder {nowhere.parent}; make it first" in drawn.stderr
    assert "Traceback" not in drawn.output


def test_tasks_are_found_without_a_pipeline_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "first.py").write_text("# %% tags=['parameters']\nupstream = None\n\n# %%\n"
                                       "x = 20\n")  # fmt: skip
    (tmp_path / "second.py").write_text(
        "# %% tags=['parameters']\nupstream = ['first']\n\n# %%\nimport nbcellar\n"
        "y = nbcellar.upstream('first')['x'] + 1\n"
    )  # fmt: skip
    (tmp_path / "helper.py").write_text("def f():\n    return 1\n")  # not a task
    found = load_pipeline(tmp_path)
    assert list(found.tasks) == ["first", "second"]
    assert found.tasks["second"].upstream == ("first",)
    done = CliRunner().invoke(cli, ["build", "-C", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == "2 tasks: 2 ran"
    manifest = json.loads((tmp_path / ".nbcellar-build" / "second.json").read_text())
    assert "y" in manifest["state"]
    monkeypatch.chdir(tmp_path)
    assert nbcellar.upstream("second")["y"] == 21


RAISING = """\
# %% tags=["parameters"]
upstream = None

# %%
above = 12

# %% tags=["raises-exception"]
if above > 10:
    raise ValueError("too many")
"""


def test_a_raising_cell_says_why_its_variables_are_not_there_and_a_revert_brings_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task whose cell raised (as its raises-exception tag allows) names that cell to a task
    reading its variables; the task that failed for it runs again at the next build, and once
    the raising cell is gone both give the values a fresh build would."""
    first = tmp_path / "first.py"
    first.write_text(RAISING.split('# %% tags=["raises')[0])
    (tmp_path / "second.py").write_text(
        "# %% tags=['parameters']\nupstream = ['first']\n\n# %%\nimport nbcellar\n"
        "got = nbcellar.upstream('first')['above']\n"
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert nbcellar.build().ran() == ["first", "second"]
    first.write_text(RAISING)
    done = nbcellar.build()
    assert done.ran() == ["first"]
    assert done.failed == ["second"]
    assert ("left no variable 'above' (cell [4] raised ValueError, as its raises-exception "
            "tag allows") in done["second"].why  # fmt: skip
    first.write_text(RAISING.split('# %% tags=["raises')[0])  # (back to the first build's)
    again = nbcellar.build()
    assert again["first"].why == "its code is back to an earlier build's: restored from the store"
    assert again["second"].why == "its last build failed"
    assert again.ran() == ["first", "second"]
    assert nbcellar.upstream("second")["got"] == 12
    assert nbcellar.build().ran() == []


FORKED = ("import os\n"
          "forked = 'forkserver' in open(f'/proc/{os.getppid()}/cmdline').read()\n")  # fmt: skip


def test_a_build_of_several_tasks_forks_their_kernels_and_of_one_starts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a build has more than one task to run, every task's kernel is forked from a server
    kept for the build; a rebuild with one task to run starts that task's kernel itself."""
    (tmp_path / "first.py").write_text("# %% tags=['parameters']\nupstream = None\n\n# %%\n"
                                       f"{FORKED}x = 20\n")  # fmt: skip
    second = tmp_path / "second.py"
    second.write_text("# %% tags=['parameters']\nupstream = ['first']\n\n# %%\n"
                      f"import nbcellar\n{FORKED}"
                      "y = nbcellar.upstream('first')['x'] + 1\n")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert nbcellar.build().ran() == ["first", "second"]
    assert [nbcellar.upstream(t)["forked"] for t in ("first", "second")] == [True, True]
    second.write_text(second.read_text().replace("+ 1", "+ 2"))
    assert nbcellar.build().ran() == ["second"]
    assert nbcellar.upstream("second")["y"] == 22
    assert nbcellar.upstream("second")["forked"] is False


GRID_PIPELINE = """\
tasks:
  - source: base.py
  - source: fit.py
    grid: {k: [1, 2, 3]}
    product: {nb: "products/fit-[[k]].ipynb", data: products/fit.txt}
  - source: best.py
"""


@pytest.mark.long
def test_a_grid_task_is_one_task_per_parameter_set_and_downstream_sees_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pipeline.yaml").write_text(GRID_PIPELINE)
    (tmp_path / "base.py").write_text("# %% tags=['parameters']\nupstream = None\n# %%\n"
                                      "values = list(range(10))\n")  # fmt: skip
    (tmp_path / "fit.py").write_text(
        "# %% tags=['parameters']\nupstream = ['base']\nproduct = None\nk = 0\n# %%\n"
        "import nbcellar\nscore = sum(v * k for v in nbcellar.upstream('base')['values'])\n"
        "open(product['data'], 'w').write(str(score))\n"
    )  # fmt: skip
    (tmp_path / "best.py").write_text(
        "# %% tags=['parameters']\nupstream = ['fit']\n# %%\nimport nbcellar\n"
        "fits = nbcellar.upstream('fit')\nbest = max(fits, key=lambda f: f['score']).params['k']\n"
        "files = sorted(p['data'] for p in upstream['fit'].values())\n"
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    found = load_pipeline()
    assert list(found.tasks) == ["base", "fit[k=1]", "fit[k=2]", "fit[k=3]", "best"]
    built = nbcellar.build(jobs=2)
    assert set(statuses(built).values()) == {"ran"}, statuses(built)
    assert (tmp_path / "products" / "fit-2.ipynb").exists()
    assert (tmp_path / "products" / "fit-k=3.txt").read_text() == str(3 * 45)
    best = nbcellar.upstream("best")
    assert best["best"] == 3
    assert best["files"] == [str(tmp_path / "products" / f"fit-k={k}.txt") for k in (1, 2, 3)]
    assert [f.params["k"] for f in nbcellar.upstream("fit")] == [1, 2, 3]
    assert set(statuses(nbcellar.build()).values()) == {"up to date"}
    only = nbcellar.build("fit")  # a grid by its name: its tasks, and what they need
    assert list(statuses(only)) == ["base", "fit[k=1]", "fit[k=2]", "fit[k=3]"]
    (tmp_path / "base.py").write_text((tmp_path / "base.py").read_text().replace("10", "20"))
    again = nbcellar.build()
    assert set(statuses(again).values()) == {"ran"}
    assert (tmp_path / "products" / "fit-k=1.txt").read_text() == str(190)


def test_plot_draws_the_tasks_coloured_by_state_and_runs_nothing(
    tmp_path: Path, private_store: Path
) -> None:
    import xml.dom.minidom

    (tmp_path / "pipeline.yaml").write_text(GRID_PIPELINE)
    for name, upstream in (("base", "None"), ("fit", "['base']"), ("best", "['fit']")):
        (tmp_path / f"{name}.py").write_text(f"# %% tags=['parameters']\nupstream = {upstream}"
                                             "\nk = 0\n# %%\nx = 1\n")  # fmt: skip
    done = CliRunner().invoke(cli, ["build", "-C", str(tmp_path), "--plot",
                                    str(tmp_path / "dag.svg")])  # fmt: skip
    assert done.exit_code == 0, done.output
    svg = xml.dom.minidom.parse(str(tmp_path / "dag.svg"))
    boxes = [t.firstChild.data for t in svg.getElementsByTagName("title")]
    assert boxes == [f"{n}: would run (never built)" for n in
                     ("base", "fit[k=1]", "fit[k=2]", "fit[k=3]", "best")]  # fmt: skip
    edges = [p for p in svg.getElementsByTagName("path") if p.getAttribute("marker-end")]
    assert len(edges) == 6  # base -> each fit, each fit -> best
    assert not private_store.exists()  # nothing ran


@pytest.mark.long
def test_tasks_run_side_by_side_on_dask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed", reason="the Dask executor needs distributed")
    (tmp_path / "pipeline.yaml").write_text(GRID_PIPELINE)
    (tmp_path / "base.py").write_text("# %% tags=['parameters']\nupstream = None\n# %%\n"
                                      "values = list(range(10))\n")  # fmt: skip
    (tmp_path / "fit.py").write_text(
        "# %% tags=['parameters']\nupstream = ['base']\nproduct = None\nk = 0\n# %%\n"
        "import nbcellar\nscore = sum(v * k for v in nbcellar.upstream('base')['values'])\n"
        "open(product['data'], 'w').write(str(score))\n"
    )  # fmt: skip
    (tmp_path / "best.py").write_text("# %% tags=['parameters']\nupstream = ['fit']\n# %%\n"
                                      "import nbcellar\nbest = max(f['score'] for f in "
                                      "nbcellar.upstream('fit'))\n")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for size in (10, 20):  # (twice: launches side by side on one cluster, each its client)
        base = tmp_path / "base.py"
        base.write_text(base.read_text().replace("range(10)", f"range({size})"))
        built = nbcellar.build(jobs=2, executor="dask")
        assert set(statuses(built).values()) == {"ran"}, statuses(built)
        assert nbcellar.upstream("best")["best"] == 3 * sum(range(size))
