"""A Dask worker on another machine runs a notebook on a shared store (``--store s3://...``):
the spec names the store by its URL, and the worker opens its own local folder of it. The
worker's cache folder differs from the client's and it runs in another folder, as on a machine
of its own; what it cached is restored by the client's next run, and its record is read back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbcellar
from tests.cli.test_run_shared import NOTEBOOK, cli_ok, latest_run
from tests.runs.test_dask_faults import scheduler_and_worker

pytest.importorskip("distributed", reason="the runs go to a Dask scheduler")
pytestmark = [pytest.mark.slow, pytest.mark.long]


@pytest.fixture
def remote_worker(s3_bucket: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A scheduler, and a worker whose cache folder and working directory are its own."""
    worker_cache = tmp_path / "worker-cache"
    elsewhere = tmp_path / "worker-home"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NBCELLAR_STORE"}
    env["XDG_CACHE_HOME"] = str(worker_cache)
    with scheduler_and_worker(tmp_path, env, elsewhere) as (_, where):
        yield where, worker_cache


def test_a_worker_with_its_own_cache_folder_runs_on_the_shared_store(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    remote_worker: tuple[str, Path],
) -> None:  # fmt: skip
    where, worker_cache = remote_worker
    url = f"s3://{s3_bucket}/team"
    cli_ok("store", "init", "--shared", url)
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    notebook = tmp_path / "nb.py"
    notebook.write_text(NOTEBOOK)
    ran = nbcellar.run(notebook, executor=where, store=url, output=tmp_path / "remote.ipynb")
    first = ran.records[0]
    assert first.status == "ok"
    assert first.cells["ran"] == 2
    assert list(worker_cache.glob("nbcellar/shared/*")), "the worker kept no folder of the store"
    # The client, on its own cache folder, restores what the worker cached.
    again = nbcellar.run(notebook, store=url, output=tmp_path / "here.ipynb").records[0]
    assert again.cells["restored"] == 2, again.cells
    record, _ = latest_run(url)
    assert record.id == again.id
    assert "9999900000" in (tmp_path / "remote.ipynb").read_text()
