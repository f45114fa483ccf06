"""The dashboard in a real browser: ``nbcellar ui`` served by uvicorn on loopback, driven by
Playwright in Debian's chromium (``.ci/run`` installs it; no browser is downloaded)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import recorded_store

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)",
)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded_store(tmp_path_factory.mktemp("ui") / ".nbcellar")


@pytest.fixture(scope="module")
def served(store_root: Path) -> Iterator[str]:
    """``nbcellar ui`` on a free port of loopback over a store of 30 runs; its address."""
    root = store_root
    exe = Path(sys.executable).with_name("nbcellar")
    server = subprocess.Popen(
        [str(exe), "ui", "--store", str(root), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, line + (server.stderr.read() if server.stderr else "")
        yield found.group(0)
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Any, url: str, height: int) -> tuple[Any, list[str]]:
    """A page at ``url``, and the script errors it raises (a test ends asserting none)."""
    page = browser.new_page(viewport={"width": 1300, "height": height})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    return page, problems


def test_filter_sort_page_and_open_a_run(served: str, browser: Any, tmp_path: Path) -> None:
    page, problems = open_page(browser, served, 900)
    page.wait_for_selector("#runs tbody tr")
    assert page.inner_text("#count") == "30 runs"
    assert page.locator("#runs tbody tr").count() == 30
    page.fill("#where", "model=svm; accuracy>0.6")
    page.wait_for_function("document.querySelector('#count').textContent === '6 runs'")
    headers = page.locator("#runs thead th").all_inner_texts()
    assert headers[7:10] == ["C", "model", "seed"], headers
    assert set(page.locator("#runs tbody tr td:nth-child(9)").all_inner_texts()) == {"svm"}
    page.check("#differ")  # only C differs among the svm runs: model and seed go
    assert "model" not in page.locator("#runs thead th").all_inner_texts()
    page.uncheck("#differ")
    page.click("th[data-key=loss]")  # highest loss first, then lowest
    page.wait_for_selector("th.sorted[data-key=loss]")
    page.click("th[data-key=loss]")
    page.wait_for_selector("th.sorted.asc[data-key=loss]")
    first = page.locator("#runs tbody tr").first.inner_text()
    assert "20261201-000028-aaaaaa" in first  # the svm run with the lowest loss
    page.fill("#where", "accuracy")
    page.wait_for_selector("#problem:not([hidden])")
    assert "expected NAME=VALUE" in page.inner_text("#problem")
    page.fill("#where", "")
    page.wait_for_function("document.querySelector('#count').textContent === '30 runs'")
    page.click("#runs tbody tr a")
    page.wait_for_selector("dl.facts")
    assert "Parameters" in page.inner_text("#run")
    # A logged dict is a table of its own, as on the compare page; the scalars stay facts.
    page.wait_for_selector("section.logged h2")
    assert page.locator("section.logged h2").all_inner_texts() == ["report"]
    logged = page.locator("section", has_text="Logged values").locator("dt").all_inner_texts()
    assert set(logged) == {"accuracy", "loss"}
    page.screenshot(path=str(tmp_path / "run.png"))
    assert problems == []


def test_select_runs_and_compare_them(served: str, browser: Any, tmp_path: Path) -> None:
    page, problems = open_page(browser, served, 1400)
    page.wait_for_selector("#runs tbody tr")
    assert page.is_disabled("#compare")
    boxes = page.locator("#runs tbody input.pick")
    for row in (0, 1, 2):
        boxes.nth(row).check()
    assert page.inner_text("#compare") == "compare 3 selected"
    page.click("#compare")
    page.wait_for_selector("#scalars")
    assert page.url.startswith(served + "compare?runs=20261201-000029-aaaaaa,")
    best = page.locator("#scalars td.best").all_inner_texts()
    assert "0.79" in best  # the highest accuracy of runs 29, 28, 27
    assert "0.71" in best  # and the lowest loss
    page.wait_for_selector(".chart canvas")
    assert page.locator(".chart").count() == 2  # loss per step, parallel coordinates
    assert "loss per step" in page.inner_text("#compare")
    page.select_option("#parallel-metric", "accuracy")  # parameters -> accuracy
    axes = page.evaluate("echarts.getInstanceByDom(document.querySelectorAll('.chart')[1])"
                         ".getOption().parallelAxis.map((a) => a.name)")  # fmt: skip
    assert axes[-1] == "accuracy", axes
    page.evaluate(  # a brush on the accuracy axis keeping the best run only (0.79)
        "echarts.getInstanceByDom(document.querySelectorAll('.chart')[1]).dispatchAction("
        f"{{type: 'axisAreaSelect', parallelAxisId: 'axis-{len(axes) - 1}', "
        "intervals: [[0.785, 0.8]]})"
    )
    page.wait_for_selector("#scalars td.dimmed")
    accuracy = page.locator("#scalars tbody tr", has=page.locator("th", has_text="accuracy"))
    lit = accuracy.locator("td:not(.dimmed)").all_inner_texts()
    assert lit == ["0.79"], lit  # the best run's column stays lit, the others dim
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    page.goto(served + "compare?runs=20261201-000029-aaaaaa,20261201-000026-aaaaaa")
    page.wait_for_selector("#diff")  # two runs: what differs between them
    changed = page.locator("#diff tr th.text").all_inner_texts()
    assert changed == ["C (param)", "accuracy (logged)", "loss (logged)"], changed
    assert page.locator("#diff td.removed").first.inner_text() == "0.1"  # C of run 29
    assert page.locator("#diff td.added").first.inner_text() == "10"  # of run 26
    assert problems == []


def test_a_job_page_follows_its_runs_live(
    served: str, store_root: Path, browser: Any, tmp_path: Path
) -> None:
    """The page is not reloaded: the server's events bring each run's new state."""
    from tests.ui.conftest import record_a_launch, set_status

    runs = ["20261201-000020-aaaaaa", "20261201-000021-aaaaaa"]
    launch = record_a_launch(store_root, runs)
    page, problems = open_page(browser, served + "jobs", 700)
    page.wait_for_selector(f"section.job[data-id='{launch}']")
    assert page.inner_text(f"section.job[data-id='{launch}'] .counts").startswith("2 running")
    assert page.locator("button.cancel").count() == 0  # (read-only: no --allow-cancel)
    set_status(store_root, runs[0], "ok")
    page.wait_for_selector(f"tr[data-run='{runs[0]}'] td.status.ok", timeout=10_000)
    set_status(store_root, runs[1], "failed")
    page.wait_for_selector(f"tr[data-run='{runs[1]}'] td.status.failed", timeout=10_000)
    counts = page.inner_text(f"section.job[data-id='{launch}'] .counts")
    assert counts.startswith(("1 ok, 1 failed", "1 failed, 1 ok")), counts
    assert "live" in page.inner_text("#live")
    page.screenshot(path=str(tmp_path / "jobs.png"))
    assert problems == []
