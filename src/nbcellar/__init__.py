"""nbcellar gives Jupyter notebooks a memory.

The top-level package stays light: importing it must not pull in IPython, pandas or
jupyter_client, so that ``import nbcellar`` and ``nbcellar --help`` are fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "RunFailed",
    "__version__",
    "artifacts",
    "build",
    "checkpoint",
    "checkpoints",
    "collect",
    "inherit",
    "load_ipython_extension",
    "log",
    "logged",
    "resumable",
    "run",
    "runs",
    "submit",
    "test",
    "unload_ipython_extension",
    "upstream",
]


def __getattr__(name: str) -> Any:
    """``nbcellar.runs``: the runs package, which is also the function returning a RunSet
    (``nbcellar.runs(notebook=..., model="rf")``); imported when first asked for."""
    if name == "runs":
        import importlib

        return importlib.import_module("nbcellar.runs")
    if name == "RunFailed":
        from nbcellar.runs.api import RunFailed

        return RunFailed
    raise AttributeError(f"module 'nbcellar' has no attribute {name!r}")


def run(notebook: str | Path, params: Any = None, **options: Any) -> Any:
    """Run a notebook or percent script with parameters, a grid of them, the cell cache and run
    records, as ``nbcellar run`` does: ``nbcellar.run("train.ipynb", params={"alpha": 0.1})``,
    ``grid={"model": ["rf", "svm"]}``, ``jobs=4``, ``executor="local"``, ``store=...``,
    ``wait=False``... Returns the RunSet of its runs (see nbcellar.runs.api.run)."""
    from nbcellar.runs.api import run as run_notebook

    return run_notebook(notebook, params, **options)


def build(*tasks: str, **options: Any) -> Any:
    """Build a pipeline as ``nbcellar build`` does: ``nbcellar.build()`` (every task of the
    pipeline here), ``nbcellar.build("features", jobs=2, force=True, explain=True,
    pipeline="path/pipeline.yaml")``. Returns the Build (each task's outcome and why); see
    nbcellar.pipeline.build."""
    from nbcellar.pipeline.build import build as build_pipeline

    return build_pipeline(tasks, **options)


def test(*paths: Any, **options: Any) -> Any:
    """Smoke-test the notebooks and pipelines under ``paths`` (default: here), as
    ``nbcellar test`` does: each notebook with its ``smoke-parameters``, each pipeline with
    its ``smoke:`` values; ``jobs=``, ``changed=True`` (skip what the store would serve whole),
    ``store=``. Returns a SmokeResult per test (see nbcellar.smoke)."""
    from nbcellar.smoke import smoke_test

    return smoke_test(paths, **options)


def upstream(task: str) -> Any:
    """In a pipeline task: what the task ``task`` produced (its final variables, loaded when
    read, its logged values, its products' paths); see nbcellar.pipeline.upstream."""
    from nbcellar.pipeline.upstream import upstream as upstream_of

    return upstream_of(task)


def collect(paths: Any, ids: Any = None) -> Any:
    """Executed notebooks (papermill's, anyone's) as a RunSet, compared by their tagged cells'
    outputs: ``nbcellar.collect("runs/*.ipynb")["accuracy"]`` (see nbcellar.runs.collect)."""
    from nbcellar.runs.collect import collect as collect_notebooks

    return collect_notebooks(paths, ids)


def inherit(
    notebook: str | Path,
    names: Any = None,
    exclude: Any = (),
    *,
    timeout: float = 60.0,
    run: bool | None = None,
    store: str | Path | None = None,
    into: Any = None,
) -> Any:
    """Bring another notebook's variables into this namespace: from its running kernel (any
    Jupyter server here), else its cached final state, else a headless run. ``names`` /
    ``exclude`` select; the result says what came from where (see nbcellar.runs.inherit)."""
    from nbcellar.runs.inherit import inherit as inherit_state

    return inherit_state(notebook, names, exclude, timeout=timeout, run=run, store=store, into=into)


def checkpoint(step: Any, state: Any = None, **metrics: Any) -> Any:
    """Keep a long loop's state at ``step`` in the store, with its metrics:
    ``nbcellar.checkpoint(epoch, loss=loss)``; a run started again goes on from the last one
    through :func:`resumable` (see nbcellar.checkpointing)."""
    from nbcellar.checkpointing import checkpoint as take

    return take(step, state, **metrics)


def resumable(steps: Any) -> Any:
    """``for epoch in nbcellar.resumable(range(100)):`` — after a run was started again, the
    last checkpoint is put back and the loop goes on from the step after it."""
    from nbcellar.checkpointing import resumable as steps_from

    return steps_from(steps)


def checkpoints(run: str | None = None) -> Any:
    """The checkpoints of this kernel's run (or of ``run``) as a DataFrame: step, time,
    metrics."""
    from nbcellar.checkpointing import checkpoints as listed

    return listed(run)


def submit(expression: str, **options: Any) -> Any:
    """In a notebook: run the cells ``expression`` needs (of those run so far) as a job:
    ``job = nbcellar.submit("train(model, data)", executor="dask", params={"lr": 0.1})``, then
    ``job.result()``. ``dry_run=True`` shows the slice; see nbcellar.slices."""
    from nbcellar.slices import submit as send

    return send(expression, **options)


def log(**values: Any) -> None:
    """Log values with the run: ``nbcellar.log(mse=0.12, confusion=fig)``. A name logged
    again makes a history. ``nbcellar run`` keeps them in the run's record."""
    from nbcellar.logbook import BOOK

    BOOK.log(values)


def artifacts(*parts: str) -> Path:
    """The folder for files the run produces (created if missing), or a path inside it:
    ``fig.savefig(nbcellar.artifacts("confusion.png"))``. With ``nbcellar run`` it is the run's
    own folder in the store (``nbcellar show RUN`` lists it); elsewhere ``artifacts/`` here.
    A cached cell that wrote files there writes them again when it is restored."""
    from nbcellar.runfiles import artifact_folder

    folder = artifact_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.joinpath(*parts)


def logged() -> dict[str, list[Any]]:
    """What this kernel logged so far: each name's values, in order."""
    from nbcellar.logbook import BOOK

    return BOOK.histories()


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext nbcellar``: cache every following cell of this kernel."""
    from nbcellar.kernel.extension import load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext nbcellar``: run cells normally again."""
    from nbcellar.kernel.extension import unload

    unload(shell)
