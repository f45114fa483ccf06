"""Screenshots of every page of ``nbcellar ui``, to look at with one's own eyes: the demo
project's grid run for real (12 runs, or 4 with ``--quick``), then the runs page, a filtered
one, a run, a compare of three runs and of two (what differs), the jobs, pipeline and cache
pages, in Debian's chromium. Not a benchmark: it prints where the pictures went.

    python benchmarks/screenshots.py --out screenshots
    python benchmarks/screenshots.py --quick --out /tmp/shots
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench_demo import fresh_copy
from common import scratch, served_ui

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", default="screenshots", help="folder for the PNG files")
    parser.add_argument("--quick", action="store_true", help="a grid of 4 runs")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("nbcellar")
    with scratch(args.dir, "nbcellar-shots-") as parent:
        folder = fresh_copy(parent, "demo", args.quick)
        store = folder / ".nbcellar"
        subprocess.run([str(exe), "run", "digits.ipynb", "--grid", "grid.yaml", "-j", "2",
                        "--store", str(store)], cwd=folder, check=True,
                       capture_output=True)  # fmt: skip
        with served_ui(store) as (base, _):
            shoot(base, out)
    for picture in sorted(out.glob("*.png")):
        print(picture)
    return 0


def shoot(base: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(base)
        page.wait_for_selector("#runs tbody tr")
        page.screenshot(path=str(out / "1-runs.png"), full_page=True)
        ids = page.locator("#runs tbody tr td a").all_inner_texts()
        page.fill("#where", "model=svm")
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "2-runs-filtered.png"), full_page=True)
        page.goto(f"{base}runs/{ids[0]}")
        page.wait_for_selector("dl.facts")
        page.frame_locator("iframe.notebook").locator(".jp-Cell").first.wait_for(timeout=30_000)
        page.screenshot(path=str(out / "3-run.png"), full_page=True)
        # (A full-page picture leaves the sandboxed frame blank, as its document is another
        # origin's, painted apart: the frame is taken on its own.)
        page.wait_for_timeout(2000)
        page.locator("iframe.notebook").screenshot(path=str(out / "3-run-notebook.png"))
        for name, chosen, ready in (("4-compare-three", ids[:3], ".chart canvas"),
                                    ("5-compare-two", ids[:2], "#diff")):  # fmt: skip
            page.goto(f"{base}compare?runs={','.join(chosen)}")
            page.wait_for_selector(ready)
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        for name, path in (("6-jobs", "jobs"), ("7-pipeline", "pipeline"), ("8-cache", "cache")):
            page.goto(base + path)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
