"""How a store grows over repeated runs of the demo's grid, and what ``prune`` + ``gc`` give back.

A fresh copy of the demo project (``src/nbcellar/demo/project``, its 12-run ``grid.yaml``) is
run 20 times with ``nbcellar run digits.ipynb --grid grid.yaml -j 2``, in three phases:

- unchanged: the same command again (everything restored, a run record each time);
- refreshed: the evaluation cell carries ``# nbcellar: refresh`` (it runs every time and its
  new entries supersede the last ones);
- edited: the figure cell's title changes before each run (a new entry per edit).

After each run the store's size is read from ``nbcellar.store.open_store(...).info()`` (what
``nbcellar store info`` prints); at the end ``nbcellar store prune --superseded`` and ``nbcellar
store gc`` run, and the sizes before and after are printed with their ratio, next to the size of
the executed notebooks papermill would leave for the same 240 runs (each run's notebook, as
``nbcellar`` writes it too) for scale.

    python benchmarks/bench_store_growth.py            # 20 runs of the 12-run grid (~5 min)
    python benchmarks/bench_store_growth.py --quick    # 6 runs of a 4-run grid
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import machine, scratch

QUICK_GRID = "model: [logreg, svm]\nC: [1.0, 10.0]\n"
REFRESH = "accuracy = accuracy_score("
TITLE = 'ax.set_title(f"{model}: acc'


def nbcellar(*args: str, cwd: Path) -> str:
    command = [sys.executable, "-c", "from nbcellar.cli.main import main; main()", *args]
    done = subprocess.run(command, cwd=cwd, text=True, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"nbcellar {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def store_bytes(store: Path) -> tuple[int, int]:
    """(bytes on disk under the store, those of its cache: all but the run folders), as
    ``nbcellar store info`` counts them."""
    from nbcellar.store import open_store

    opened = open_store(store)
    try:
        info = opened.info()
    finally:
        opened.close()
    return info.bytes_on_disk, info.bytes_on_disk - info.runs_bytes


def edit_cell(notebook: Path, marker: str, edit: str) -> None:
    """Change the code cell containing ``marker`` with ``edit`` ("refresh" or a new title)."""
    data = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in data["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or marker not in source:
            continue
        if edit == "refresh":
            source = "# nbcellar: refresh\n" + source
        else:
            source = source.replace(TITLE, f'ax.set_title(f"{edit} {{model}}: acc')
        cell["source"] = source
    notebook.write_text(json.dumps(data, indent=1), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 runs of a 4-run grid")
    parser.add_argument("--where", help="parent folder for the scratch copy")
    options = parser.parse_args()
    phases = [("unchanged", 2), ("refreshed", 2), ("edited", 2)] if options.quick else [
        ("unchanged", 7), ("refreshed", 7), ("edited", 6)]  # fmt: skip
    print(machine())
    from nbcellar.demo import project_folder

    with scratch(options.where) as parent:
        folder = parent / "demo"
        skip = shutil.ignore_patterns("__pycache__", ".nbcellar", "*.runs", "*.out.ipynb")
        shutil.copytree(project_folder(), folder, ignore=skip)
        if options.quick:
            (folder / "grid.yaml").write_text(QUICK_GRID, encoding="utf-8")
        notebook = folder / "digits.ipynb"
        store = folder / ".nbcellar"
        grid = ["run", "digits.ipynb", "--grid", "grid.yaml", "-j", "2", "--store", str(store)]
        started = time.perf_counter()
        nbcellar(*grid, cwd=folder)
        first, first_cache = store_bytes(store)
        print(f"first grid run: store {first / 1e6:.2f} MB (cache {first_cache / 1e6:.2f} MB)")
        number = 0
        for phase, count in phases:
            if phase == "refreshed":
                edit_cell(notebook, REFRESH, "refresh")
            for _ in range(count):
                number += 1
                if phase == "edited":
                    edit_cell(notebook, TITLE, f"edit {number}")
                nbcellar(*grid, cwd=folder)
                size, _ = store_bytes(store)
                print(f"run {number:2d} ({phase}): store {size / 1e6:.2f} MB "
                      f"(+{(size - first) / 1e6:.2f} MB since the first)")  # fmt: skip
        before, objects_before = store_bytes(store)
        pruned = nbcellar("store", "prune", "--superseded", "--store", str(store), cwd=folder)
        collected = nbcellar("store", "gc", "--store", str(store), cwd=folder)
        after, objects_after = store_bytes(store)
        executed = sum(p.stat().st_size for p in store.glob("runs/*/executed.ipynb"))
        print(pruned.strip())
        print(collected.strip())
        print(f"after {number} more grid runs: store {before / 1e6:.2f} MB "
              f"(cache {objects_before / 1e6:.2f} MB)")  # fmt: skip
        print(f"after prune --superseded and gc: store {after / 1e6:.2f} MB "
              f"(cache {objects_after / 1e6:.2f} MB)")  # fmt: skip
        print(f"ratio after/before: {after / before:.2f} (store), "
              f"{objects_after / objects_before:.2f} (cache); of what the runs added to the "
              f"cache, {(objects_after - first_cache) / max(objects_before - first_cache, 1):.2f}"
              " is kept")  # fmt: skip
        print(
            f"for scale: the {len(list(store.glob('runs/*/executed.ipynb')))} executed "
            f"notebooks alone (what papermill would leave) take {executed / 1e6:.2f} MB"
        )
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
