"""A store of recorded runs for the dashboard's tests: real records in a real store (the
records 'nbcellar run' writes), and one run of a real notebook for what only an execution
leaves (the executed notebook, an artifact)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nbcellar.runs.records import RunBook, RunRecord, save_log_rows
from nbcellar.store import open_store

MODELS = ("logreg", "svm", "forest")


def recorded_store(root: Path, runs: int = 30) -> Path:
    """``runs`` runs of train.ipynb: model x C, an accuracy and a loss each."""
    store = open_store(root)
    try:
        book = RunBook(store)
        for i in range(runs):
            model = MODELS[i % 3]
            book.save(RunRecord(
                id=f"20261201-0000{i:02d}-aaaaaa", notebook="/project/train.ipynb",
                params={"model": model, "C": [0.1, 1.0, 10.0][i // 3 % 3], "seed": 0},
                status="failed" if i == 7 else "ok", created=1_790_000_000.0 + i,
                seconds=1.0 + i, cells={"total": 4, "ran": 1, "restored": 3, "error": 0},
                values={"accuracy": 0.5 + i / 100, "loss": 1.0 - i / 100,
                        "report": {"type": "dict"}},
                error="cell [3] ValueError: bad C" if i == 7 else None,
            ))  # fmt: skip
            loss = [[("loss", {"value": 1.0 - i / 100 + (4 - step) / 10})] for step in range(5)]
            save_log_rows(store, f"20261201-0000{i:02d}-aaaaaa",
                          [list(row[0]) for row in loss]
                          + [["accuracy", {"value": 0.5 + i / 100}],
                             ["report", {"type": "dict", "shown": {"text": "{...}"}}]])  # fmt: skip
    finally:
        store.close()
    return root


@pytest.fixture
def runs_store(tmp_path: Path) -> Path:
    return recorded_store(tmp_path / ".nbcellar")


@pytest.fixture(scope="module")
def executed_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store holding two real runs (k=3, k=4) of a notebook that shows HTML with a script,
    writes an artifact and logs a value; and the first run's id."""
    folder = tmp_path_factory.mktemp("executed")
    (folder / "shows.py").write_text(
        "# %% tags=['parameters']\nk = 2\n"
        "# %%\nimport nbcellar\nfrom IPython.display import HTML, display\n"
        "display(HTML('<b id=\"bold\">bold</b><script>window.parent.hacked = 1</script>'))\n"
        "nbcellar.log(score=k * 0.25)\n"
        "(nbcellar.artifacts() / 'table.csv').write_text('a,b\\n1,2\\n')\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("nbcellar")), "run", "shows.py", "-p", "k=3,4",
         "--store", str(folder / ".nbcellar")],
        cwd=folder, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    store = open_store(folder / ".nbcellar")
    try:
        (record,) = [r for r in RunBook(store).all() if r.params["k"] == 3]
    finally:
        store.close()
    return folder / ".nbcellar", record.id


def record_a_launch(root: Path, runs: list[str], status: str = "running") -> str:
    """A launch of ``runs`` (already recorded) as 'nbcellar run' on a cluster records it, its
    runs set to ``status`` on a worker; the launch's id."""
    import json
    import time
    from dataclasses import asdict, replace

    from nbcellar.runs.jobs import KIND, LaunchRecord

    store = open_store(root)
    try:
        book = RunBook(store)
        for run in runs:
            record = book.get(run)
            assert record is not None
            book.save(replace(record, status=status, worker="tcp://127.0.0.1:40001",
                              started=time.time(), ended=None, cell=1))  # fmt: skip
        launch = LaunchRecord(id="grid-20261201-launch", executor="dask://127.0.0.1:8786",
                              notebook="/project/train.ipynb", created=1_790_000_100.0,
                              runs=runs, outputs=[f"/project/out-{r}.ipynb" for r in runs],
                              owner=None, reach={})  # fmt: skip
        store.put_record(KIND, launch.id, json.dumps(asdict(launch)).encode("utf-8"))
    finally:
        store.close()
    return launch.id


def set_status(root: Path, run: str, status: str) -> None:
    """A worker writing how its run ended."""
    import time
    from dataclasses import replace

    store = open_store(root)
    try:
        book = RunBook(store)
        record = book.get(run)
        assert record is not None
        book.save(replace(record, status=status, ended=time.time(), cell=None))  # type: ignore[arg-type]
    finally:
        store.close()
