"""nbcellar's state store side by side with ``dill.dump_session`` / ``dill.load_session``.

The namespace is a notebook-like ``__main__``: four float64 arrays totalling ``--gib`` GiB of
random data, a 1,000,000-row DataFrame (float, int and string columns), a function and a class
defined in ``__main__`` with an instance, 1,000 small dict / list / tuple variables and one small
int called ``small``. It is built in the ``__main__`` globals of a child process, because
``dill.dump_session`` pickles ``__main__``; nbcellar saves the very same globals (the script's
own helper functions included, for both tools). Measured, each the median of ``--repeats`` runs,
every store or file in a fresh temporary folder deleted after use:

1. full save: ``save_namespace`` into an empty store vs ``dill.dump_session`` vs writing the
   same array bytes with ``ndarray.tofile`` (the raw write speed of the disk and page cache);
2. incremental save after changing ``small`` only, on the Store object that made the full save:
   without a hint (everything pickled and hashed again) and with ``changed=["small"]``;
3. restore in a fresh child process (libraries imported before the clock starts; the page cache
   is warm, nothing is dropped): until every variable is usable, and until every byte has been
   read once;
4. store size after saving the same namespace twice into one store.

    python benchmarks/bench_store.py                # 2 GiB of arrays, 3 repeats (a few minutes)
    python benchmarks/bench_store.py --quick        # 64 MiB and 10,000 rows: a few seconds
    python benchmarks/bench_store.py --gib 8 --repeats 5 --dir /scratch
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from common import machine, scratch

ARRAYS = ("a0", "a1", "a2", "a3")
SMALL_OBJECTS = 1000
FULL_ROWS = 1_000_000
QUICK_ROWS = 10_000
QUICK_GIB = 64 / 1024
MIB = 1 << 20
MB = 1_000_000

Result = dict[str, Any]


# --- the user code of the namespace: defined in ``__main__``, so both tools pickle it by value


def scale(x: float, factor: float = 2.0) -> float:
    return x * factor


class Accumulator:
    def __init__(self, start: float) -> None:
        self.total = start

    def add(self, x: float) -> float:
        self.total += x
        return self.total


# --- child processes: build the namespace in ``__main__`` and time one tool at a time


def build_namespace(gib: float, rows: int) -> None:
    """Put the benchmark's variables into this module's (``__main__``'s) globals."""
    import numpy as np
    import pandas as pd

    ns = globals()
    rng = np.random.default_rng(20240601)
    per_array = int(gib * (1 << 30)) // 8 // len(ARRAYS)
    for name in ARRAYS:
        ns[name] = rng.random(per_array)
    ns["df"] = pd.DataFrame(
        {
            "x": rng.random(rows),
            "i": rng.integers(0, 1 << 40, rows),
            "s": [f"row-{n}-{n * 7919 % 100_003}" for n in range(rows)],
        }
    )
    ns["acc"] = Accumulator(10.0)
    for n in range(SMALL_OBJECTS):
        kind = n % 3
        if kind == 0:
            ns[f"v{n:04d}"] = {"id": n, "name": f"item {n}", "tags": ["a", "b"]}
        elif kind == 1:
            ns[f"v{n:04d}"] = [n, n * 2.5, f"x{n}"]
        else:
            ns[f"v{n:04d}"] = (n, f"t{n}", None)
    ns["small"] = 0


def touch_all(ns: Mapping[str, Any]) -> Result:
    """Read every byte of the large values once, and use the function and the class."""
    sums = [float(ns[name].sum()) for name in ARRAYS]
    df = ns["df"]
    return {
        "arrays": sum(sums),
        "df_x": float(df["x"].sum()),
        "df_i": int(df["i"].sum()),
        "df_s": int(df["s"].str.len().sum()),
        "user": ns["scale"](ns["acc"].add(1.0)),
        "small_objects": sum(1 for n in range(SMALL_OBJECTS) if f"v{n:04d}" in ns),
        "small": ns["small"],
    }


def array_bytes() -> int:
    return sum(int(globals()[name].nbytes) for name in ARRAYS)


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bump_small() -> None:
    globals()["small"] += 1


def time_nbcellar(parent: str | None) -> Result:
    """Full save, a second identical save, then incremental saves after changing ``small``."""
    from nbcellar.store import open_store

    ns = globals()
    with scratch(parent) as folder:
        store = open_store(folder / ".nbcellar")
        start = time.perf_counter()
        snap = store.save_namespace(ns)
        full = time.perf_counter() - start
        first = store.info().bytes_on_disk
        start = time.perf_counter()
        store.save_namespace(ns)
        identical = time.perf_counter() - start
        second = store.info().bytes_on_disk
        bump_small()
        start = time.perf_counter()
        store.save_namespace(ns)
        no_hint = time.perf_counter() - start
        bump_small()
        start = time.perf_counter()
        hinted = store.save_namespace(ns, changed=["small"])
        with_hint = time.perf_counter() - start
        store.close()
    return {
        "full_s": full,
        "full_bytes": snap.written_bytes,
        "identical_s": identical,
        "size_first": first,
        "size_second": second,
        "incr_no_hint_s": no_hint,
        "incr_hint_s": with_hint,
        "incr_hint_written": hinted.written_bytes,
        "unserializable": snap.unserializable,
    }


def time_dill(parent: str | None) -> Result:
    import dill

    with scratch(parent) as folder:
        path = folder / "session.pkl"
        start = time.perf_counter()
        dill.dump_session(str(path))
        seconds = time.perf_counter() - start
        size = path.stat().st_size
    return {"full_s": seconds, "full_bytes": size}


def time_raw(parent: str | None) -> Result:
    ns = globals()
    with scratch(parent) as folder:
        start = time.perf_counter()
        for name in ARRAYS:
            ns[name].tofile(folder / f"{name}.bin")
        seconds = time.perf_counter() - start
    return {"full_s": seconds, "full_bytes": array_bytes()}


def child_save(args: argparse.Namespace) -> Result:
    """Phases 1, 2 and 4: every repeat times the three writers, in a rotating order."""
    build_namespace(args.gib, args.rows)
    writers: list[tuple[str, Callable[[str | None], Result]]] = [
        ("nbcellar", time_nbcellar),
        ("dill", time_dill),
        ("raw", time_raw),
    ]
    runs: dict[str, list[Result]] = {name: [] for name, _ in writers}
    for repeat in range(args.repeats):
        turn = repeat % len(writers)
        for name, writer in writers[turn:] + writers[:turn]:
            runs[name].append(writer(args.dir))
    return {"array_bytes": array_bytes(), "runs": runs}


def child_prepare(args: argparse.Namespace) -> Result:
    """Save the namespace once with each tool into ``--dir``, for the restore children."""
    import dill

    from nbcellar.store import open_store

    build_namespace(args.gib, args.rows)
    folder = Path(args.dir)
    store = open_store(folder / ".nbcellar")
    snap = store.save_namespace(globals())
    store.close()
    dill.dump_session(str(folder / "session.pkl"))
    return {"snapshot": snap.id, "expected": touch_all(globals())}


def child_restore(args: argparse.Namespace, tool: str) -> Result:
    """Phase 3, in a process that has imported the libraries and holds none of the values."""
    import cloudpickle  # noqa: F401 - imported before timing, like the rest
    import dill
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from nbcellar.store import open_store

    folder = Path(args.dir)
    main_globals = globals()
    touch = touch_all  # the loads below rebind this module's globals to the saved copies
    clock = time.perf_counter
    start = clock()
    if tool == "nbcellar":
        store = open_store(folder / ".nbcellar")
        main_globals.update(store.load_namespace(args.snapshot))
    else:
        dill.load_session(str(folder / "session.pkl"))
    usable = clock() - start
    checks = touch(main_globals)
    touched = clock() - start
    return {"usable_s": usable, "touched_s": touched, "checks": checks}


def run_child(args: argparse.Namespace, phase: str, *extra: str) -> Result:
    command = [
        sys.executable,
        __file__,
        "--child",
        phase,
        "--gib",
        repr(args.gib),
        "--rows",
        str(args.rows),
        "--repeats",
        str(args.repeats),
        *extra,
    ]
    if args.dir is not None and "--dir" not in extra:
        command += ["--dir", args.dir]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in proc.stderr.splitlines():
        print(f"  [{phase} stderr] {line}", file=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"child {phase} failed with exit status {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"child {phase} printed no result:\n{proc.stdout}")
    result: Result = json.loads(lines[-1])
    return result


# --- the parent: orchestrates the children and prints the table


def versions() -> str:
    names = ("nbcellar", "numpy", "pandas", "pyarrow", "dill", "cloudpickle")
    found = []
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{name} {importlib.metadata.version(name)}")
    return ", ".join(found)


def median(runs: list[Result], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def same_checks(got: Result, expected: Result) -> bool:
    """The restored values add up to what was saved (floats to rounding)."""
    return got.keys() == expected.keys() and all(
        math.isclose(got[k], expected[k], rel_tol=1e-9) for k in expected
    )


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def print_table(rows: list[tuple[str, str, str, str, str, str, str]]) -> None:
    header = ("measurement", "nbcellar", "dill", "raw write", "ratio", "target", "met")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for k, row in enumerate([header, *rows]):
        cells = [
            cell.ljust(width) if i in (0, 4, 5) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if k == 0:
            print("  ".join("-" * width for width in widths))


def parent(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"python: {platform.python_implementation()} {platform.python_version()}")
    print(f"packages: {versions()}")
    per_array = int(args.gib * (1 << 30)) // 8 // len(ARRAYS) * 8
    print(
        f"namespace: {len(ARRAYS)} float64 arrays of {per_array / MIB:,.1f} MiB "
        f"({len(ARRAYS) * per_array / MIB:,.0f} MiB in all), DataFrame of {args.rows:,} rows "
        f"(float, int, str), a function, a class and an instance, {SMALL_OBJECTS:,} small "
        f"dict/list/tuple variables, `small`"
    )
    where = args.dir or tempfile.gettempdir()
    print(f"repeats: {args.repeats} (medians below); temporary folders under {where}")
    print(
        "MB/s = bytes written / seconds, MB = 10^6 bytes; each ratio is the first over the second"
    )
    print()

    print("1, 2, 4. saving (one child: nbcellar, dill and raw writes in rotating order) ...")
    saved = run_child(args, "save")
    nbc, dill_runs, raw = (saved["runs"][k] for k in ("nbcellar", "dill", "raw"))
    if nbc[0]["unserializable"]:
        print(f"  nbcellar could not store: {nbc[0]['unserializable']}")
    for name, runs in (("nbcellar", nbc), ("dill", dill_runs), ("raw write", raw)):
        each = ", ".join(f"{run['full_s']:.3f}" for run in runs)
        print(f"  full save {name:<9}: {each} s; {runs[0]['full_bytes'] / MIB:,.1f} MiB written")
    each = ", ".join(f"{run['incr_hint_s'] * 1e3:.1f}" for run in nbc)
    print(f"  incremental save with changed=['small']: {each} ms")
    each = ", ".join(f"{run['incr_no_hint_s'] * 1e3:.1f}" for run in nbc)
    print(f"  incremental save without a hint: {each} ms")
    each = ", ".join(f"{run['identical_s'] * 1e3:.1f}" for run in nbc)
    print(f"  second identical save (no hint): {each} ms")

    print("3. restore, each in a fresh child process (page cache warm, libraries pre-imported) ...")
    restores: dict[str, list[Result]] = {"nbcellar": [], "dill": []}
    with scratch(args.dir) as folder:
        prepared = run_child(args, "prepare", "--dir", str(folder))
        snapshot = ["--snapshot", prepared["snapshot"], "--dir", str(folder)]
        for _ in range(args.repeats):
            for tool, runs in restores.items():
                runs.append(run_child(args, f"restore-{tool}", *snapshot))
    for tool, runs in restores.items():
        each = ", ".join(f"{r['usable_s'] * 1e3:.1f}/{r['touched_s'] * 1e3:.1f}" for r in runs)
        print(f"  {tool:<8} usable/touched: {each} ms")
        for run in runs:
            if not same_checks(run["checks"], prepared["expected"]):
                print(f"  WARNING: {tool} restored {run['checks']}, saved {prepared['expected']}")
    print()

    full = {k: median(r, "full_s") for k, r in (("nbc", nbc), ("dill", dill_runs), ("raw", raw))}
    rate = {
        k: median(r, "full_bytes") / MB / full[k]
        for k, r in (("nbc", nbc), ("dill", dill_runs), ("raw", raw))
    }
    speedup = full["dill"] / full["nbc"]
    of_raw = rate["nbc"] / rate["raw"]
    hint_ms = median(nbc, "incr_hint_s") * 1e3
    no_hint_ms = median(nbc, "incr_no_hint_s") * 1e3
    usable = {k: median(r, "usable_s") * 1e3 for k, r in restores.items()}
    touched = {k: median(r, "touched_s") * 1e3 for k, r in restores.items()}
    first = median(nbc, "size_first") / MIB
    second = median(nbc, "size_second") / MIB
    growth = median([{"d": r["size_second"] - r["size_first"]} for r in nbc], "d") / MIB

    print(f"results (medians of {args.repeats}; restore with a warm page cache):")
    print_table(
        [
            (
                "full save [s]",
                fmt(full["nbc"], 3),
                fmt(full["dill"], 3),
                fmt(full["raw"], 3),
                f"dill/nbcellar {speedup:.2f}x",
                ">= 3x faster than dill",
                verdict(speedup >= 3),
            ),
            (
                "full save throughput [MB/s]",
                fmt(rate["nbc"]),
                fmt(rate["dill"]),
                fmt(rate["raw"]),
                f"nbcellar/raw {of_raw:.0%}",
                ">= 70% of raw write",
                verdict(of_raw >= 0.7),
            ),
            (
                "incremental save, no hint [ms]",
                fmt(no_hint_ms, 1),
                "-",
                "-",
                "-",
                "none (pickles + hashes all)",
                verdict(None),
            ),
            (
                "incremental save, changed=['small'] [ms]",
                fmt(hint_ms, 1),
                "-",
                "-",
                "-",
                "<= 50 ms",
                verdict(hint_ms <= 50),
            ),
            (
                "restore until usable [ms]",
                fmt(usable["nbcellar"], 1),
                fmt(usable["dill"], 1),
                "-",
                f"dill/nbcellar {usable['dill'] / usable['nbcellar']:.1f}x",
                "<= 50 ms",
                verdict(usable["nbcellar"] <= 50),
            ),
            (
                "restore until every byte touched [ms]",
                fmt(touched["nbcellar"], 1),
                fmt(touched["dill"], 1),
                "-",
                f"dill/nbcellar {touched['dill'] / touched['nbcellar']:.2f}x",
                "none",
                verdict(None),
            ),
            ("store after 1st save [MiB]", fmt(first, 2), "-", "-", "-", "none", verdict(None)),
            ("store after 2nd identical save [MiB]", fmt(second, 2), "-", "-", "-", "none", "-"),
            (
                "added by 2nd identical save [MiB]",
                fmt(growth, 3),
                "-",
                "-",
                "-",
                "< 1 MiB",
                verdict(growth < 1),
            ),
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB of arrays, 10,000 rows")
    parser.add_argument("--gib", type=float, default=None, help="GiB of arrays (default 2.0)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--dir", default=None, help="folder for temporary stores (default /tmp)")
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gib is None:
        args.gib = QUICK_GIB if args.quick else 2.0
    if args.rows is None:
        args.rows = QUICK_ROWS if args.quick else FULL_ROWS
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    if args.child is None:
        parent(args)
        return
    if args.child == "save":
        result = child_save(args)
    elif args.child == "prepare":
        result = child_prepare(args)
    elif args.child.startswith("restore-"):
        result = child_restore(args, args.child.removeprefix("restore-"))
    else:
        raise SystemExit(f"unknown child phase {args.child!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
