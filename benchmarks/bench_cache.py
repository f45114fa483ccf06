"""nbcellar's cell cache on a real notebook, side by side with plain nbclient and jupyter-cache.

The notebook is generated with nbformat in a temporary folder: 15 code cells, of which 3 are
expensive (linear algebra on random matrices; a sort, an argsort and a bootstrap of the median
over random samples; a scikit-learn ``RandomForestClassifier`` on the bundled digits plus a
``Ridge`` on a generated design matrix: about 520 MB of float64 arrays and a few seconds of CPU
each) and 12 cheap ones (imports, parameters, small pandas tables, prints, two matplotlib
figures drawn with the Agg backend and displayed as PNG images). Nothing is downloaded.

Every run below starts its own fresh kernel; each number is the median of ``--repeats``
repeats, and every repeat starts from new, empty caches in a new folder:

1. first run, caches empty: plain nbclient (``execute_notebook(store_root=None)``: the very
   same nbclient driver without the cache) vs nbcellar (an empty store) vs jupyter-cache
   (``add_nb_to_project`` + the ``local-serial`` executor + merging the cached outputs back);
   nbcellar's overhead over plain nbclient;
2. re-run after a kernel restart, nothing changed: nbcellar with the store its first run filled
   (every cell restored; ``nbcellar run`` sees that a kernel would restore every cell and starts
   none) vs jupyter-cache (finds the notebook cached, executes nothing); also, untargeted, the
   same re-run with a kernel forced (``without_kernel=False``): a fresh kernel restoring every
   cell, loading every value, as after a restart in Jupyter;
3. re-run after editing the last cell: nbcellar runs that cell only, jupyter-cache re-executes
   the whole notebook (its key is the hash of all the code);
4. re-run after editing a cheap cell in the middle (``bar_color = ...``, read by the two
   figures further down): nbcellar runs it and those two, jupyter-cache everything again.

Before the first repeat, an untimed warm-up runs the imports cell in a plain kernel and in a
caching one, so that no tool pays for a cold disk cache.

The time of a run is the wall time of the whole call, kernel start included. Per-cell statuses
of nbcellar's runs are printed for scenarios 2-4, with the cells expected to run.

    python benchmarks/bench_cache.py                 # ~520 MB of arrays, 3 repeats (minutes)
    python benchmarks/bench_cache.py --quick         # ~20 MB, ~0.5 s per expensive cell, 1 repeat
    python benchmarks/bench_cache.py --repeats 5 --dir /scratch

Needs numpy, pandas, matplotlib and scikit-learn in the kernel's environment (this Python's
``python3`` kernel); jupyter-cache is optional (its column reads ``n/a`` without it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common import machine, scratch

MB = 1_000_000
NOTEBOOK = "analysis.ipynb"

# 1-based numbers of the code cells with a role in the scenarios.
EXPENSIVE = (3, 5, 10)
MIDDLE = 8  # hist_bins and bar_color; the edit changes bar_color
MIDDLE_DEPENDANTS = (12, 13)  # the two figures
LAST = 15

OVERHEAD_TARGET_PCT = 5.0
RERUN_TARGET_PCT = 10.0


@dataclass(frozen=True)
class Sizes:
    """What the three expensive cells compute; the knobs set their time and memory."""

    matrix_n: int  # five float64 matrices of matrix_n x matrix_n
    power_steps: int  # extra matrix products
    sort_n: int  # samples, their sorted copy and argsort (three arrays of sort_n)
    boot_rounds: int  # bootstrap resamples of the median
    boot_size: int
    rows: int  # generated design matrix for the ridge regression
    features: int
    trees: int  # random forest on the digits

    def array_mb(self) -> float:
        values = 5 * self.matrix_n**2 + 3 * self.sort_n + self.rows * (self.features + 1)
        return values * 8 / MB


FULL = Sizes(
    matrix_n=2500,
    power_steps=6,
    sort_n=8_000_000,
    boot_rounds=60,
    boot_size=1_000_000,
    rows=100_000,
    features=100,
    trees=1400,
)
QUICK = Sizes(
    matrix_n=600,
    power_steps=80,
    sort_n=200_000,
    boot_rounds=250,
    boot_size=100_000,
    rows=10_000,
    features=20,
    trees=200,
)


# --- the notebook


def cell_sources(
    sizes: Sizes, *, last_edited: bool = False, middle_edited: bool = False
) -> list[str]:
    """The 15 code cells; the edits of scenarios 3 and 4 change one literal each."""
    title = "Benchmark notebook: summary (edited)" if last_edited else "Benchmark notebook: summary"
    color = "tab:orange" if middle_edited else "tab:blue"
    return [
        # 1: imports and a helper
        """\
import io

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split


def show(fig):
    \"\"\"Display a figure as a PNG (the Agg backend displays nothing by itself).\"\"\"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    display(Image(data=buffer.getvalue()))""",
        # 2: parameters
        f"""\
SEED = 20240601
MATRIX_N = {sizes.matrix_n}
POWER_STEPS = {sizes.power_steps}
SORT_N = {sizes.sort_n}
BOOT_ROUNDS = {sizes.boot_rounds}
BOOT_SIZE = {sizes.boot_size}
ROWS, FEATURES = {sizes.rows}, {sizes.features}
TREES = {sizes.trees}
print(f"{{MATRIX_N}}x{{MATRIX_N}} matrices, {{SORT_N:,}} samples, {{TREES}} trees")""",
        # 3: EXPENSIVE linear algebra
        """\
rng = np.random.default_rng(SEED)
A = rng.standard_normal((MATRIX_N, MATRIX_N))
B = rng.standard_normal((MATRIX_N, MATRIX_N))
C = A @ B
S = np.linalg.solve(A, B)
V = B.copy()
for _ in range(POWER_STEPS):
    V = A @ V
    V /= np.linalg.norm(V)
la_stats = {
    "trace(A @ B)": float(np.trace(C)),
    "|A @ S - B|": float(np.linalg.norm(A @ S - B)),
    "mean(S)": float(S.mean()),
    "|V|": float(np.linalg.norm(V)),
}""",
        # 4: table
        """\
la_table = pd.DataFrame({"value": la_stats})
la_table""",
        # 5: EXPENSIVE sort and bootstrap
        """\
rng = np.random.default_rng(SEED + 1)
samples = rng.standard_normal(SORT_N) * 2.0 + 1.0
ordered = np.sort(samples)
ranks = np.argsort(samples, kind="stable")
boot_medians = np.array(
    [np.median(rng.choice(samples, size=BOOT_SIZE)) for _ in range(BOOT_ROUNDS)]
)""",
        # 6: table
        """\
levels = [0.01, 0.25, 0.5, 0.75, 0.99]
quantiles = pd.DataFrame(
    {"q": levels, "value": [ordered[int(q * (ordered.size - 1))] for q in levels]}
)
quantiles""",
        # 7: print
        """\
low, high = np.percentile(boot_medians, [2.5, 97.5])
middle = ordered[ordered.size // 2]
print(f"median {middle:.4f}, bootstrap 95% interval [{low:.4f}, {high:.4f}]")""",
        # 8: MIDDLE, display settings read by the two figures
        f"""\
hist_bins = 60
bar_color = {color!r}""",
        # 9: data
        """\
digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    digits.data, digits.target, test_size=0.25, random_state=0
)
print(f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images")""",
        # 10: EXPENSIVE models
        """\
forest = RandomForestClassifier(n_estimators=TREES, n_jobs=1, random_state=0)
forest.fit(X_train, y_train)
rng = np.random.default_rng(SEED + 2)
X_big = rng.standard_normal((ROWS, FEATURES))
w_true = rng.standard_normal(FEATURES)
y_big = X_big @ w_true + rng.normal(scale=0.5, size=ROWS)
ridge = Ridge(alpha=1.0).fit(X_big, y_big)""",
        # 11: table
        """\
scores = pd.DataFrame(
    {
        "model": ["random forest, digits", "ridge, generated"],
        "metric": ["accuracy", "R^2"],
        "score": [forest.score(X_test, y_test), ridge.score(X_big[:10_000], y_big[:10_000])],
    }
)
scores""",
        # 12: figure (reads hist_bins, bar_color)
        """\
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(samples[:20_000], bins=hist_bins, color=bar_color)
ax.set_title("first 20,000 samples")
show(fig)""",
        # 13: figure (reads bar_color)
        """\
top = np.argsort(forest.feature_importances_)[::-1][:10]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar([str(i) for i in top], forest.feature_importances_[top], color=bar_color)
ax.set_title("random forest: the 10 most important pixels")
show(fig)""",
        # 14: print
        """\
arrays = (A, B, C, S, V, samples, ordered, ranks, X_big, y_big)
print(f"{sum(a.nbytes for a in arrays) / 1e6:,.0f} MB in {len(arrays)} arrays")""",
        # 15: LAST, the report
        f"""\
report_title = {title!r}
summary = pd.concat(
    [
        la_table.reset_index(names="item"),
        quantiles.rename(columns={{"q": "item"}}).astype({{"item": str}}),
        scores.rename(columns={{"model": "item"}}).drop(columns="metric"),
    ],
    ignore_index=True,
)
print(report_title)
summary""",
    ]


def write_notebook(path: Path, sources: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for number, cell in enumerate(nb.cells, start=1):
        cell["id"] = f"cell-{number:02d}"
    nbformat.write(nb, str(path))


# --- one run of each tool


@dataclass(frozen=True)
class Run:
    seconds: float
    statuses: tuple[str, ...]  # per code cell: ran, restored, error, not run
    cell_seconds: tuple[float, ...] = ()

    @property
    def ran(self) -> tuple[int, ...]:
        """1-based numbers of the cells that executed."""
        return tuple(n for n, status in enumerate(self.statuses, start=1) if status == "ran")


def run_nbclient(path: Path, store: Path | None, without_kernel: bool = True) -> Run:
    """nbcellar's executor: with ``store`` the cache, without it plain nbclient."""
    from nbcellar.notebook import read_notebook
    from nbcellar.runs.execute import execute_notebook

    start = time.perf_counter()
    result = execute_notebook(
        read_notebook(path), cwd=path.parent, store_root=store, without_kernel=without_kernel
    )
    seconds = time.perf_counter() - start
    failed = result.failed
    if failed is not None:
        raise RuntimeError(f"cell [{failed.index + 1}] failed: {failed.error}")
    return Run(
        seconds,
        tuple(cell.status for cell in result.cells),
        tuple(cell.seconds for cell in result.cells),
    )


def run_jupyter_cache(path: Path, cache_dir: Path, cells: int) -> Run:
    """jupyter-cache's documented flow: add to the project, execute what is stale, read back."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    start = time.perf_counter()
    cache = get_cache(str(cache_dir))
    record = cache.add_nb_to_project(str(path))
    executor = load_executor("local-serial", cache=cache)
    result = executor.run_and_cache(filter_pks=[record.pk], timeout=None)
    if result.excepted or result.errored:
        tb = cache.get_project_record(record.pk).traceback
        raise RuntimeError(f"jupyter-cache could not execute {path.name}:\n{tb}")
    _, merged = cache.merge_match_into_notebook(nbformat.read(str(path), as_version=4))
    seconds = time.perf_counter() - start
    executed = bool(result.succeeded)
    if not merged.cells[-1].get("outputs"):
        raise RuntimeError("jupyter-cache's executed notebook has no outputs in its last cell")
    return Run(seconds, ("ran" if executed else "restored",) * cells)


# --- the benchmark


@dataclass
class Measurements:
    plain: list[Run]
    nbcellar: dict[int, list[Run]]  # scenario -> runs
    jcache: dict[int, list[Run]]
    in_kernel: list[Run]  # scenario 2 with a kernel forced


def warm_up(parent: str | None, sizes: Sizes) -> None:
    """Run the imports cell in a plain and in a caching kernel, untimed: warms the disk cache."""
    with scratch(parent, "bench-cache-") as folder:
        path = folder / NOTEBOOK
        write_notebook(path, cell_sources(sizes)[:1])
        run_nbclient(path, None)
        run_nbclient(path, folder / "nbcellar-store")


def one_repeat(
    folder: Path, sizes: Sizes, repeat: int, with_jcache: bool, found: Measurements
) -> None:
    path = folder / NOTEBOOK
    store = folder / "nbcellar-store"
    jcache_dir = folder / "jupyter-cache"
    sources = cell_sources(sizes)
    write_notebook(path, sources)

    def note(scenario: int, tool: str, run: Run) -> None:
        extra = ""
        if tool != "plain nbclient":
            extra = f"  cells ran: {len(run.ran)}"
            if tool == "nbcellar" and scenario > 1:
                extra += f" {list(run.ran)}"
        print(f"  repeat {repeat} scenario {scenario} {tool:<14} {run.seconds:7.2f} s{extra}")
        sys.stdout.flush()

    # 1. first run: the three tools in an order rotating from repeat to repeat
    order = ["plain", "nbcellar", "jupyter-cache"]
    shift = (repeat - 1) % len(order)
    for tool in order[shift:] + order[:shift]:
        if tool == "plain":
            run = run_nbclient(path, None)
            found.plain.append(run)
            note(1, "plain nbclient", run)
        elif tool == "nbcellar":
            run = run_nbclient(path, store)
            found.nbcellar[1].append(run)
            note(1, tool, run)
        elif with_jcache:
            run = run_jupyter_cache(path, jcache_dir, len(sources))
            found.jcache[1].append(run)
            note(1, tool, run)

    edits = {
        2: sources,
        3: cell_sources(sizes, last_edited=True),
        4: cell_sources(sizes, middle_edited=True),
    }
    for scenario, edited in edits.items():
        write_notebook(path, edited)
        if scenario == 2:
            run = run_nbclient(path, store, without_kernel=False)
            found.in_kernel.append(run)
            note(scenario, "nbcellar+kernel", run)
        run = run_nbclient(path, store)
        found.nbcellar[scenario].append(run)
        note(scenario, "nbcellar", run)
        if with_jcache:
            run = run_jupyter_cache(path, jcache_dir, len(sources))
            found.jcache[scenario].append(run)
            note(scenario, "jupyter-cache", run)


def median_s(runs: list[Run]) -> float | None:
    return statistics.median(run.seconds for run in runs) if runs else None


def typical_ran(runs: list[Run]) -> tuple[int, ...]:
    """The set of cells that ran in most repeats."""
    return Counter(run.ran for run in runs).most_common(1)[0][0]


def cells_text(cells: tuple[int, ...]) -> str:
    return "none" if not cells else ", ".join(f"[{n}]" for n in cells)


def versions() -> str:
    found = []
    for name in ("nbcellar", "nbclient", "jupyter-cache", "numpy", "scikit-learn"):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def fmt_s(value: float | None, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f} s{suffix}"


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("scenario", "plain nbclient", "nbcellar", "jupyter-cache", "ratio", "target", "met")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for k, row in enumerate([header, *rows]):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if k == 0:
            print("  ".join("-" * width for width in widths))


def report(found: Measurements, repeats: int) -> None:
    code_cells = len(found.plain[0].statuses)
    expected: dict[int, tuple[int, ...]] = {
        2: (),
        3: (LAST,),
        4: (MIDDLE, *MIDDLE_DEPENDANTS),
    }
    print()
    print("nbcellar's cells per run (R = ran, . = restored, E = error, - = not run), by repeat:")
    marks = {"ran": "R", "restored": ".", "error": "E", "not run": "-"}
    surprises: list[str] = []
    for scenario in (1, 2, 3, 4):
        for repeat, run in enumerate(found.nbcellar[scenario], start=1):
            line = "".join(marks.get(status, "?") for status in run.statuses)
            want = "all" if scenario == 1 else cells_text(expected[scenario])
            ran = f"all {len(run.ran)}" if len(run.ran) == code_cells else cells_text(run.ran)
            print(f"  scenario {scenario} repeat {repeat}: {line}  ran {ran} (expected {want})")
            if scenario > 1 and run.ran != expected[scenario]:
                surprises.append(
                    f"scenario {scenario} repeat {repeat}: ran {cells_text(run.ran)}, "
                    f"expected {cells_text(expected[scenario])}"
                )
    print()
    print("seconds per cell (medians; first = scenario 1), as nbclient timed each execute:")
    columns = [("plain", found.plain)] + [
        (f"nbcellar {name}", found.nbcellar[scenario])
        for scenario, name in ((1, "first"), (3, "last"), (4, "middle"))
    ]
    columns.insert(2, ("re-run, kernel", found.in_kernel))
    print("  cell " + "".join(f"{name:>16}" for name, _ in columns))
    for number in range(1, code_cells + 1):
        values = [
            statistics.median(run.cell_seconds[number - 1] for run in runs) for _, runs in columns
        ]
        print(f"  [{number:>2}]" + "".join(f"{value:16.3f}" for value in values))
    totals = [median_s(runs) or 0.0 for _, runs in columns]
    print("  run " + "".join(f"{value:16.3f}" for value in totals) + "  (whole run)")
    if surprises:
        print("UNEXPECTED: " + "; ".join(surprises))

    plain = median_s(found.plain)
    nbc = {s: median_s(runs) for s, runs in found.nbcellar.items()}
    jc = {s: median_s(runs) for s, runs in found.jcache.items()}
    assert plain is not None
    first = nbc[1]
    assert first is not None

    overhead = (first / plain - 1) * 100
    jc_overhead = "" if jc[1] is None else f" (jupyter-cache {(jc[1] / plain - 1) * 100:+.1f}%)"
    rerun = (nbc[2] or 0.0) / first * 100
    in_kernel = median_s(found.in_kernel) or 0.0

    def jc_cells(scenario: int) -> str:
        runs = found.jcache[scenario]
        return "" if not runs else f", {len(typical_ran(runs))} cells ran"

    def speedup(scenario: int) -> str:
        value = nbc[scenario]
        other = jc[scenario]
        return (
            "" if other is None or not value else f"; jupyter-cache/nbcellar {other / value:.1f}x"
        )

    ran3 = typical_ran(found.nbcellar[3])
    ran4 = typical_ran(found.nbcellar[4])
    rows = [
        (
            "1. first run, cache empty",
            fmt_s(plain),
            fmt_s(nbc[1]),
            fmt_s(jc[1]),
            f"nbcellar overhead {overhead:+.1f}%{jc_overhead}",
            f"<= {OVERHEAD_TARGET_PCT:g}%",
            verdict(overhead <= OVERHEAD_TARGET_PCT),
        ),
        (
            "2. re-run, nothing changed",
            "-",
            fmt_s(nbc[2], f", {len(typical_ran(found.nbcellar[2]))} cells ran"),
            fmt_s(jc[2], jc_cells(2)),
            f"nbcellar re-run = {rerun:.1f}% of its first run",
            f"< {RERUN_TARGET_PCT:g}%",
            verdict(rerun < RERUN_TARGET_PCT),
        ),
        (
            "   same, a kernel forced",
            "-",
            fmt_s(in_kernel, f", {len(typical_ran(found.in_kernel))} cells ran"),
            "-",
            f"{in_kernel / first * 100:.1f}% of the first run (kernel start, every value loaded)",
            "-",
            "-",
        ),
        (
            "3. last cell edited",
            "-",
            fmt_s(nbc[3], f", {len(ran3)} cell{'s' * (len(ran3) != 1)} ran"),
            fmt_s(jc[3], jc_cells(3)),
            f"{len(ran3)} of {code_cells} cells ran{speedup(3)}",
            f"only {cells_text(expected[3])}",
            verdict(ran3 == expected[3]),
        ),
        (
            "4. middle cell edited",
            "-",
            fmt_s(nbc[4], f", ran {cells_text(ran4)}"),
            fmt_s(jc[4], jc_cells(4)),
            f"{len(ran4)} of {code_cells} cells ran{speedup(4)}",
            f"only {cells_text(expected[4])}",
            verdict(ran4 == expected[4]),
        ),
    ]
    print()
    print(f"results (medians of {repeats}; seconds are whole runs, kernel start included):")
    print_table(rows)


def provider_costs(rounds: int = 2000) -> None:
    """What following the kernel state outside the variables costs per cell: every ambient
    provider's state taken before and after a cell, with the notebook's libraries imported
    (numpy, pandas, matplotlib, scikit-learn: their options and generators are followed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    from nbcellar.cache.ambient import Ambient

    ambient = Ambient()
    ambient.settle(ambient.observe("x = 1"))
    rows = []
    for provider in ambient.providers:
        samples = []
        for _ in range(5):
            begin = time.perf_counter()
            for _ in range(rounds // 5):
                provider.state()
            samples.append((time.perf_counter() - begin) / (rounds // 5))
        rows.append((provider.name, statistics.median(samples)))
    per_cell = []
    for _ in range(5):
        begin = time.perf_counter()
        for _ in range(rounds // 5):
            ambient.settle(ambient.observe("x = 1"))
        per_cell.append((time.perf_counter() - begin) / (rounds // 5))
    cost = statistics.median(per_cell)
    print()
    print("kernel state followed per cell (each provider's state is taken before and after):")
    for name, seconds in rows:
        print(f"  {name:<14} {seconds * 1e6:7.1f} us per state")
    print(f"  all providers, one cell (before + after, compared): {cost * 1e3:.3f} ms "
          f"(target <= 1 ms: {verdict(cost <= 0.001)})")  # fmt: skip


def missing_libraries() -> list[str]:
    needed = ("numpy", "pandas", "matplotlib", "sklearn", "nbformat", "nbclient", "ipykernel")
    return [name for name in needed if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="~20 MB of arrays, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    sizes = QUICK if args.quick else FULL

    missing = missing_libraries()
    if missing:
        print(f"bench_cache: cannot run, not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    with_jcache = importlib.util.find_spec("jupyter_cache") is not None

    print(f"machine: {machine()}")
    print(f"python: {platform.python_implementation()} {platform.python_version()}")
    print(f"packages: {versions()}")
    print(
        f"notebook: 15 code cells, expensive {cells_text(EXPENSIVE)}, "
        f"{sizes.array_mb():,.0f} MB of float64 arrays ({sizes.matrix_n}^2 matrices, "
        f"{sizes.sort_n:,} samples, {sizes.rows:,}x{sizes.features} design, "
        f"{sizes.trees} trees); middle edit {cells_text((MIDDLE,))}, "
        f"read by {cells_text(MIDDLE_DEPENDANTS)}"
    )
    where = args.dir or tempfile.gettempdir()
    print(f"repeats: {repeats} (medians below); a fresh folder and fresh caches under {where}")
    if not with_jcache:
        print("jupyter-cache is not installed: its column reads n/a")
    print()

    found = Measurements(
        plain=[],
        nbcellar={s: [] for s in (1, 2, 3, 4)},
        jcache={s: [] for s in (1, 2, 3, 4)},
        in_kernel=[],
    )
    print("warming up (imports cell, plain and caching kernel; untimed) ...")
    warm_up(args.dir, sizes)
    for repeat in range(1, repeats + 1):
        with scratch(args.dir, "bench-cache-") as folder:
            one_repeat(folder, sizes, repeat, with_jcache, found)
    report(found, repeats)
    provider_costs()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
