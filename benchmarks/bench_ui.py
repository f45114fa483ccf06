"""``nbcellar ui`` on a large store: 10,000 runs x 40 logged values, each with a 50-step loss
history, against reading the same records the way the command line does (every record parsed,
filtered and sorted in Python: what a dashboard without a catalog would do per request).

1. Start-up: the first look at the store (the catalog made from 10,000 records).
2. The runs API: the first page (newest first), a filtered and sorted page, a page deep in a
   sort; medians of 7 requests over loopback (the client's wall time: an upper bound of the
   server's). Target <= 150 ms each. The ratio is against the full scan of the records.
3. The runs page in Debian's chromium: time to first paint, and until the table shows its rows.
4. Compare of 100 runs: the API (median of 5; target <= 1 s) and the compare page in chromium
   until its table and charts are drawn, against ``nbcellar compare`` of the same 100 runs.
5. The server's memory (resident set) after all of it. Target <= 300 MB.

    python benchmarks/bench_ui.py            # 10,000 runs
    python benchmarks/bench_ui.py --quick    # 1,000 runs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import machine, scratch, served_ui

CHROMIUM = "/usr/bin/chromium"
QUERIES = {
    "first page": "limit=50",
    "filtered+sorted": "where=model%3Dsvm%3Bm5%3C0.5&sort=m3&order=desc&limit=50",
    "deep in a sort": "sort=m7&order=asc&offset=5000&limit=50",
}


def make_store(root: Path, runs: int) -> None:
    from nbcellar.runs.records import RunBook, RunRecord, save_log_rows
    from nbcellar.store import open_store

    rng = random.Random(0)
    store = open_store(root)
    book = RunBook(store)
    for i in range(runs):
        params = {"model": rng.choice(["logreg", "svm", "forest"]), "C": rng.choice([0.1, 1, 10]),
                  "seed": i % 7, "depth": rng.randint(1, 9)}  # fmt: skip
        values = {f"m{j}": rng.random() for j in range(40)}
        run_id = f"20261201-{i:06d}-{i % 4096:03x}"
        book.save(RunRecord(id=run_id, notebook="/project/train.ipynb", params=params,
                            status="ok", created=1.79e9 + i, seconds=3.0, values=values,
                            cells={"total": 5, "ran": 2, "restored": 3, "error": 0}))  # fmt: skip
        history = [["loss", {"value": 1 / (s + 1) + rng.random() / 100}] for s in range(50)]
        save_log_rows(store, run_id, history + [[k, {"value": v}] for k, v in values.items()])
    store.close()


def full_scan(root: Path, query: str) -> float:
    """Seconds to answer ``query`` from every record, as the command line reads them."""
    from urllib.parse import parse_qs

    from nbcellar.runs.records import RunBook
    from nbcellar.runs.where import parse_conditions
    from nbcellar.store import open_store

    asked = {k: v[0] for k, v in parse_qs(query).items()}
    start = time.perf_counter()
    store = open_store(root)
    found = RunBook(store).all()
    store.close()
    for condition in parse_conditions(asked.get("where", "")):
        found = [r for r in found if condition(r)]
    key = asked.get("sort")
    if key:
        found.sort(
            key=lambda r: r.values.get(key, float("-inf")), reverse=asked.get("order") != "asc"
        )
    offset = int(asked.get("offset", 0))
    json.dumps([r.to_json() for r in found[offset : offset + 50]], default=repr)
    return time.perf_counter() - start


def median_request(url: str, times: int = 7) -> float:
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as answer:
            answer.read()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent)


def first_paint(url: str) -> tuple[float, float] | None:
    if not os.path.exists(CHROMIUM):
        return None
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#runs tbody tr")
        rows = time.perf_counter() - start
        paint = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
        )
        browser.close()
    return paint / 1000, rows


def compare_page(url: str) -> float | None:
    """Seconds until the compare page shows its table and its charts."""
    if not os.path.exists(CHROMIUM):
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#scalars")
        page.wait_for_selector(".chart canvas")
        drawn = time.perf_counter() - start
        browser.close()
    return drawn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 runs")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    args = parser.parse_args()
    runs = 1000 if args.quick else 10_000
    print(f"machine: {machine()}")
    with scratch(args.dir) as folder:
        root = folder / ".nbcellar"
        start = time.perf_counter()
        make_store(root, runs)
        print(f"store: {runs} runs x 40 values + a 50-step history each, made in "
              f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        exe = Path(sys.executable).with_name("nbcellar")
        start = time.perf_counter()
        with served_ui(root) as (base, pid):
            median_request(base + "api/keys", 1)
            print(f"1. start-up (catalog of {runs} runs made): {time.perf_counter() - start:.2f} s")
            print("2. the runs API (median of 7):")
            for name, query in QUERIES.items():
                served = median_request(f"{base}api/runs?{query}")
                scan = full_scan(root, query)
                mark = "yes" if served <= 0.150 else "NO"
                print(f"   {name:16} nbcellar ui {served * 1000:7.1f} ms   full scan "
                      f"{scan * 1000:7.1f} ms   ratio {scan / served:5.1f}x   "
                      f"(target <= 150 ms: {mark})")  # fmt: skip
            painted = first_paint(base)
            if painted is None:
                print("3. runs page: (no chromium here: left out)")
            else:
                paint, rows = painted
                print(f"3. runs page in chromium: first paint {paint * 1000:.0f} ms, rows shown "
                      f"after {rows * 1000:.0f} ms")  # fmt: skip
            compared = [f"20261201-{i:06d}-{i % 4096:03x}" for i in range(0, runs, runs // 100)]
            ids = ",".join(compared)
            served = median_request(f"{base}api/compare?runs={ids}", 5)
            start = time.perf_counter()
            done = subprocess.run([str(exe), "compare", *compared, "--store", str(root)],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            command = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"nbcellar compare failed: {done.stderr}")
            drawn = compare_page(f"{base}compare?runs={ids}")
            page = "" if drawn is None else f"; the page drawn in chromium after {drawn:.2f} s"
            print(f"4. compare of {len(compared)} runs: API {served * 1000:.0f} ms (target <= 1 s: "
                  f"{'yes' if served <= 1 else 'NO'}){page}; nbcellar compare {command:.2f} s, "
                  f"ratio {command / served:.1f}x")  # fmt: skip
            status = Path(f"/proc/{pid}/status").read_text()
            rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
            print(f"5. server memory: {rss:.0f} MB resident (target <= 300 MB: "
                  f"{'yes' if rss <= 300 else 'NO'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
