"""The jobs page cancels a real launch on a real Dask cluster (``nbcellar ui --allow-cancel``):
a grid of 4 runs on an external scheduler, two of them held at a gate; a click on "cancel"
stops the running ones and the queued ones never start, and the page shows it live."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbcellar
from nbcellar.store import open_store
from tests.runs.test_dask_faults import address, cluster, notebook, until
from tests.ui.test_browser import CHROMIUM, browser, open_page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.long,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no browser at {CHROMIUM}"),
]
__all__ = ["browser", "cluster"]  # (fixtures used here)


@pytest.fixture
def served_allowing_cancel(private_store: Path) -> Iterator[str]:
    exe = Path(sys.executable).with_name("nbcellar")
    private_store.mkdir(parents=True, exist_ok=True)
    open_store(private_store).close()
    server = subprocess.Popen(
        [str(exe), "ui", "--store", str(private_store), "--port", "0", "--no-browser",
         "--allow-cancel"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline())
        assert found, server.stderr.read() if server.stderr else ""
        yield found.group(0)
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_the_jobs_page_cancels_a_launch_on_a_cluster(
    tmp_path: Path, cluster: Any, browser: Any, served_allowing_cancel: str
) -> None:
    gate = tmp_path / "gate"
    handle = nbcellar.run(notebook(tmp_path), grid={"x": [1, 2, 3, 4]},
                          params={"gate": str(gate)}, jobs=2, executor=address(cluster),
                          wait=False)  # fmt: skip
    until(lambda: len(list(tmp_path.glob("gate.*.started"))) == 2)  # two held, two queued
    page, problems = open_page(browser, served_allowing_cancel + "jobs", 800)
    job = f"section.job[data-id='{handle.id}']"
    page.wait_for_selector(f"{job} button.cancel")
    assert "2 running" in page.inner_text(f"{job} .counts")
    page.click(f"{job} button.cancel")
    page.wait_for_function(
        f"document.querySelector(\"{job} .counts\").textContent.startsWith('4 cancelled')",
        timeout=60_000,
    )
    assert sorted(handle.status().values()) == ["cancelled"] * 4
    assert len(list(tmp_path.glob("gate.*.started"))) == 2  # the queued ones never started
    assert problems == []
