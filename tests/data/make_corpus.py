"""Generate the executed-notebook test corpus in ``tests/data/notebooks/``.

Every notebook is built with ``nbformat``, executed with ``nbclient`` (errors allowed) in a
throw-away working directory and written next to this script.  All data is generated inside
the notebooks from seeded random generators; nothing is downloaded.  The script also writes
``legacy_v44.ipynb`` (nbformat 4.4, no cell ids) and ``percent_script.py`` (jupytext percent
format, not executed), then validates the corpus and prints a summary of the outputs.

Re-run from the repository root with::

    /work/venv-dev/bin/python tests/data/make_corpus.py
"""

from __future__ import annotations

import base64
import json
import os
import struct
import tempfile
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

OUT_DIR = Path(__file__).resolve().parent / "notebooks"
MAX_BYTES = 150_000
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


# --------------------------------------------------------------------------- helpers


def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def code(text: str, *tags: str) -> Any:
    metadata = {"tags": list(tags)} if tags else {}
    return new_code_cell(_src(text), metadata=metadata)


def md(text: str, **kwargs: Any) -> Any:
    return new_markdown_cell(_src(text), **kwargs)


def notebook(stem: str, cells: list[Any]) -> Any:
    nb = new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC)})
    for index, cell in enumerate(nb.cells):
        cell.id = f"{stem.replace('_', '-')}-{index:02d}"  # deterministic ids
    return nb


def execute(nb: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="nbcellar-corpus-") as workdir:
        client = NotebookClient(
            nb,
            kernel_name="python3",
            allow_errors=True,
            timeout=120,
            record_timing=False,
            resources={"metadata": {"path": workdir}},
        )
        client.execute()
    return nb


def tiny_png(size: int = 4) -> str:
    """Return a base64 encoded ``size`` x ``size`` RGB PNG (a red/blue checkerboard)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    red, blue = b"\xd0\x20\x20", b"\x20\x40\xd0"
    rows = b"".join(
        b"\x00" + b"".join(red if (x + y) % 2 else blue for x in range(size)) for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- notebooks


def basics() -> Any:
    return notebook(
        "basics",
        [
            md("# Basics\n\nImports, assignments, functions and simple outputs."),
            code("import math\nimport random\nimport sys"),
            code(
                '''
                def describe(n):
                    """Use GREETING, a global that is only defined in a later cell."""
                    return f"{GREETING}, {n} squared is {n * n}"
                '''
            ),
            code(
                """
                GREETING = "Hello"
                radius = 2.5
                area = math.pi * radius**2
                print(f"area = {area:.3f}")
                """
            ),
            code('print(describe(7))\nprint("a note on stderr", file=sys.stderr)'),
            code(
                """
                random.seed(1)
                values = [random.randint(0, 9) for _ in range(5)]
                values
                """
            ),
            code("total = sum(values)\ncounter = 0\ncounter += 1"),
            code("a, b = 3, 4\nc = math.hypot(a, b)\nc"),
            code('print("total:", total, "counter:", counter)\ntotal * 2'),
        ],
    )


def pandas_display() -> Any:
    return notebook(
        "pandas_display",
        [
            md("# pandas display\n\nA generated DataFrame, grouping and in-place mutation."),
            code(
                """
                import warnings

                import numpy as np
                import pandas as pd

                # keep the outputs free of version-specific deprecation noise
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                """
            ),
            code(
                """
                rng = np.random.default_rng(42)
                n = 40
                df = pd.DataFrame(
                    {
                        "group": rng.choice(["a", "b", "c"], size=n),
                        "x": rng.normal(size=n).round(3),
                        "y": rng.integers(0, 100, size=n),
                    }
                )
                df.head()
                """
            ),
            code(
                """
                summary = df.groupby("group").agg(x_mean=("x", "mean"), y_sum=("y", "sum"))
                summary
                """
            ),
            code(
                """
                df["c"] = df["x"] * 2 + df["y"]
                df.loc[df["x"] < 0, "c"] = 0
                df.drop(columns=["y"], inplace=True)
                df.shape
                """
            ),
            code("df.describe()"),
            code("print(df.dtypes)"),
        ],
    )


def plots() -> Any:
    return notebook(
        "plots",
        [
            md("# Plots\n\nSmall matplotlib figures rendered inline."),
            code(
                """
                %matplotlib inline
                import matplotlib.pyplot as plt
                import numpy as np
                """
            ),
            code(
                """
                plt.rcParams["figure.figsize"] = (3, 2)
                plt.rcParams["figure.dpi"] = 60
                rng = np.random.default_rng(0)
                x = np.linspace(0, 2 * np.pi, 50)
                """
            ),
            code(
                """
                fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
                ax.plot(x, np.sin(x), label="sin")
                ax.plot(x, np.cos(x), label="cos")
                ax.legend()
                ax.set_title("line")
                """
            ),
            code(
                """
                samples = rng.normal(size=300)
                plt.figure(figsize=(3, 2), dpi=60)
                plt.hist(samples, bins=15, color="tab:orange");
                """
            ),
            code(
                """
                fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
                ax.scatter(samples[:-1], samples[1:], s=4)
                ax.set_xlabel("x[t]")
                plt.show()
                """
            ),
            code('print(f"mean={samples.mean():.3f} std={samples.std():.3f}")'),
        ],
    )


def magics() -> Any:
    return notebook(
        "magics",
        [
            md("# IPython magics\n\nLine magics, cell magics and shell escapes."),
            code("data = list(range(1000, 0, -1))"),
            code("%time x = sum(range(10**5))"),
            code("%timeit -n 1 -r 1 y = sorted(data)"),
            code(
                """
                %%capture captured
                print("inside capture")
                z = 42
                """
            ),
            code("print(captured.stdout.strip(), z)\ncaptured.stdout"),
            code("!echo hello"),
            code(
                """
                with open("sample.txt", "w", encoding="utf-8") as fh:
                    fh.write("sample\\n")
                files = !ls
                files
                """
            ),
            code("%who"),
            code("%env MY_VAR=1"),
            code('import os\nos.environ["MY_VAR"]'),
            code(
                """
                %%time
                total = 0
                for i in range(10_000):
                    total += i
                """
            ),
            code("print(x, total)"),
        ],
    )


def errors() -> Any:
    return notebook(
        "errors",
        [
            md("# Errors\n\nCells that raise; later cells still run (`allow_errors`)."),
            code(
                '''
                class ValidationError(Exception):
                    """Raised when a value is out of range."""


                def check(value):
                    if value < 0:
                        raise ValidationError(f"negative value: {value}")
                    return value
                '''
            ),
            code('before = "ran before the errors"\nprint(before)'),
            code("ratio = 1 / 0"),
            code("check(-5)"),
            code("print(undefined_name)"),
            code('print("partial output before failing")\nint("not a number")'),
            code('after = check(3) * 2\nprint("still running:", after)'),
            code(
                """
                try:
                    1 / 0
                except ZeroDivisionError as e:
                    caught = repr(e)
                caught
                """
            ),
        ],
    )


def comprehensions_scopes() -> Any:
    return notebook(
        "comprehensions_scopes",
        [
            md("# Comprehensions and scopes"),
            code('words = ["apple", "banana", "cherry", "date", "elderberry", "fig"]'),
            code(
                """
                lengths = [len(w) for w in words]
                by_initial = {w[0]: w for w in words}
                vowels = {ch for w in words for ch in w if ch in "aeiou"}
                lengths, by_initial, sorted(vowels)
                """
            ),
            code(
                """
                total_len = sum(len(w) for w in words)
                pairs = list((w, i) for i, w in enumerate(words) if i % 2 == 0)
                total_len, pairs
                """
            ),
            code(
                """
                long_lengths = [size for w in words if (size := len(w)) > 5]
                long_lengths, size  # the walrus target leaks into the enclosing scope
                """
            ),
            code(
                """
                adders = [lambda v, k=k: v + k for k in range(3)]
                [f(10) for f in adders]
                """
            ),
            code(
                """
                def make_counter():
                    count = 0

                    def increment(step=1):
                        nonlocal count
                        count += step
                        return count

                    return increment


                tick = make_counter()
                tick(), tick(5)
                """
            ),
            code(
                """
                SCALE = 3


                class Scaler:
                    def __init__(self, offset):
                        self.offset = offset

                    def apply(self, value):
                        return value * SCALE + self.offset

                    @classmethod
                    def default(cls):
                        return cls(DEFAULT_OFFSET)
                """
            ),
            code("DEFAULT_OFFSET = 1\nScaler.default().apply(4)"),
            code(
                """
                import functools

                CALLS = []


                def logged(func):
                    @functools.wraps(func)
                    def wrapper(*args, **kwargs):
                        CALLS.append(func.__name__)
                        return func(*args, **kwargs)

                    return wrapper


                def repeat(times):
                    def decorator(func):
                        @functools.wraps(func)
                        def wrapper(*args, **kwargs):
                            return [func(*args, **kwargs) for _ in range(times)]

                        return wrapper

                    return decorator


                @logged
                def area(w, h):
                    return w * h


                @repeat(2)
                def shout(word):
                    return word.upper()
                """
            ),
            code('area(2, 3), area(4, 5), shout("hi"), CALLS'),
        ],
    )


def mutation() -> Any:
    return notebook(
        "mutation",
        [
            md("# Mutation\n\nIn-place changes, aliasing and deletion."),
            code(
                """
                a = [3, 1, 2]
                b = a
                b.append(4)
                a.sort()
                a, b, a is b
                """
            ),
            code(
                """
                config = {"lr": 0.1}
                config.update({"epochs": 5})
                config["batch"] = 32
                config["lr"] *= 2
                config
                """
            ),
            code(
                """
                matrix = [[0] * 3 for _ in range(3)]
                matrix[1][2] = 7
                matrix[0] += [9]
                counts = {"a": 1}
                counts["a"] += 1
                counts.setdefault("b", 0)
                counts["b"] += 5
                matrix, counts
                """
            ),
            code(
                """
                temp = "scratch"
                del temp
                del config["batch"]
                del a[0]
                a, b, config
                """
            ),
            code(
                """
                import numpy as np

                arr = np.arange(5, dtype=float)
                view = arr[1:3]
                arr *= 2
                arr[0] = 5
                arr, view
                """
            ),
            code(
                """
                seen = set()
                seen.add(1)
                seen |= {2, 3}


                class Box:
                    pass


                box = Box()
                box.items = []
                box.items.append("x")
                setattr(box, "size", 3)
                print(sorted(seen), box.items, box.size)
                """
            ),
        ],
    )


def control_flow() -> Any:
    return notebook(
        "control_flow",
        [
            md("# Control flow"),
            code(
                """
                threshold = 5
                value = 7
                if value > threshold:
                    label = "high"
                elif value == threshold:
                    label = "equal"
                else:
                    label = "low"
                label
                """
            ),
            code(
                """
                squares = []
                for i in range(6):
                    if i % 2:
                        continue
                    squares.append(i * i)
                else:
                    loop_done = True

                n = 10
                steps = 0
                while n != 1:
                    n = n // 2 if n % 2 == 0 else 3 * n + 1
                    steps += 1
                squares, loop_done, steps
                """
            ),
            code(
                """
                def parse(text):
                    log = []
                    try:
                        number = int(text)
                    except ValueError as e:
                        log.append(f"error: {e}")
                        number = None
                    else:
                        log.append("ok")
                    finally:
                        log.append("done")
                    return number, log


                parse("12"), parse("x")
                """
            ),
            code(
                """
                with open("notes.txt", "w", encoding="utf-8") as fh:
                    fh.write("line one\\nline two\\n")

                with open("notes.txt", encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
                print(lines)
                """
            ),
            code(
                """
                from dataclasses import dataclass


                @dataclass
                class Point:
                    x: int
                    y: int


                def classify(obj):
                    match obj:
                        case Point(x=0, y=0):
                            return "origin"
                        case Point(x=0, y=y_pos):
                            return f"on the y axis at {y_pos}"
                        case Point():
                            return "point"
                        case [first, *rest]:
                            return f"sequence starting {first!r} with {len(rest)} more"
                        case {"kind": "circle", "r": radius}:
                            return f"circle r={radius}"
                        case {"kind": kind, **others}:
                            return f"{kind} with {sorted(others)}"
                        case str() | bytes():
                            return "text"
                        case _:
                            return "unknown"
                """
            ),
            code(
                """
                samples = [
                    Point(0, 0),
                    Point(0, 3),
                    Point(1, 2),
                    [1, 2, 3],
                    {"kind": "circle", "r": 2},
                    {"kind": "square", "side": 1},
                    "hi",
                    3.5,
                ]
                for sample in samples:
                    print(classify(sample))
                """
            ),
        ],
    )


def ml_pipeline() -> Any:
    return notebook(
        "ml_pipeline",
        [
            md("# A tiny ML pipeline\n\nParameters, data, a least-squares fit and metrics."),
            code("seed = 0\nn = 200\nalpha = 0.1", "parameters"),
            code(
                """
                %matplotlib inline
                import matplotlib.pyplot as plt
                import numpy as np
                """
            ),
            code(
                """
                rng = np.random.default_rng(seed)
                X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
                true_w = np.array([1.0, 2.0, -0.5])
                y = X @ true_w + 0.3 * rng.normal(size=n)
                X.shape, y.shape
                """
            ),
            code(
                """
                w, *_ = np.linalg.lstsq(X, y, rcond=None)
                w_ridge = np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ y)
                np.round(w, 3), np.round(w_ridge, 3)
                """
            ),
            code(
                """
                pred = X @ w
                resid = y - pred
                metrics = {
                    "mse": round(float(np.mean(resid**2)), 4),
                    "r2": round(float(1 - resid.var() / y.var()), 4),
                    "max_abs_resid": round(float(np.abs(resid).max()), 4),
                }
                """
            ),
            code("metrics", "metric"),
            code(
                """
                fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
                ax.scatter(pred, resid, s=4)
                ax.axhline(0, color="grey", linewidth=1)
                ax.set_xlabel("prediction")
                ax.set_ylabel("residual")
                plt.show()
                """
            ),
        ],
    )


def imports_star() -> Any:
    return notebook(
        "imports_star",
        [
            md("# Import styles"),
            code(
                """
                from math import *
                import os.path
                import numpy as np
                from collections import Counter as C
                """
            ),
            code("sqrt(16) + floor(pi) + cos(0)"),
            code('os.path.join("data", "file.csv"), os.path.splitext("report.tar.gz")'),
            code("np.array([1, 2, 3]).mean()"),
            code('letters = C("mississippi")\nprint(letters.most_common(2))'),
        ],
    )


def markdown_heavy() -> Any:
    return notebook(
        "markdown_heavy",
        [
            md(
                """
                # Report

                A notebook that is mostly prose, with **bold**, *italic* and `code`.
                """
            ),
            md(
                """
                ## Contents

                1. Introduction
                2. Method
                   - data generation
                   - evaluation
                3. Results

                > Note: all numbers are synthetic.
                """
            ),
            md(
                """
                ## Method

                | step | description |
                |------|-------------|
                | 1    | generate    |
                | 2    | summarise   |

                The estimate is $\\hat\\mu = \\frac{1}{n}\\sum_i x_i$.

                ```python
                mean = sum(xs) / len(xs)
                ```
                """
            ),
            md(
                "### Legend\n\nThe tiny image below is stored as a cell attachment:\n\n"
                "![checkerboard](attachment:checkerboard.png)",
                attachments={"checkerboard.png": {"image/png": tiny_png()}},
            ),
            new_raw_cell(
                "This raw cell is passed through untouched.\n.. note:: reStructuredText",
                metadata={"raw_mimetype": "text/restructuredtext"},
            ),
            code(
                """
                import numpy as np

                xs = np.random.default_rng(7).normal(loc=10, size=20)
                mean = xs.mean()
                """
            ),
            code('print(f"mean = {mean:.2f}")'),
            md("## Results\n\n- the mean is close to 10\n- nothing else to report"),
        ],
    )


def sqlite_db() -> Any:
    return notebook(
        "sqlite_db",
        [
            md("# SQLite\n\nAn in-memory database queried into pandas."),
            code("import sqlite3\n\nimport numpy as np\nimport pandas as pd"),
            code(
                """
                conn = sqlite3.connect(":memory:")
                cursor = conn.cursor()
                cursor.execute(
                    "CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount REAL)"
                )
                cursor.close()
                """
            ),
            code(
                """
                rng = np.random.default_rng(3)
                regions = rng.choice(["north", "south", "east", "west"], size=30)
                amounts = rng.gamma(2.0, 50.0, size=30).round(2)
                pairs = zip(regions, amounts, strict=True)
                rows = [(i, str(region), float(amount)) for i, (region, amount) in enumerate(pairs)]
                conn.executemany("INSERT INTO sales VALUES (?, ?, ?)", rows)
                conn.commit()
                print(len(rows), "rows inserted")
                """
            ),
            code(
                """
                query = '''
                    SELECT region, COUNT(*) AS n, ROUND(SUM(amount), 2) AS total
                    FROM sales GROUP BY region ORDER BY region
                '''
                totals = pd.read_sql_query(query, conn)
                totals
                """
            ),
            code('conn.execute("SELECT COUNT(*) FROM sales").fetchone()[0]'),
            code("conn.close()"),
        ],
    )


def legacy_v44() -> Any:
    return notebook(
        "legacy_v44",
        [
            md("# Legacy notebook\n\nWritten as nbformat 4.4, without cell ids."),
            code("import numpy as np\n\nvalues = np.arange(6).reshape(2, 3)\nvalues"),
            code("print(values.sum())"),
            code("doubled = values * 2\ndoubled.tolist()"),
        ],
    )


def percent_source() -> Any:
    """The (unexecuted) notebook that becomes ``percent_script.py``."""
    nb = notebook(
        "percent_script",
        [
            md("# Percent script\n\nA jupytext percent-format script."),
            code("import numpy as np"),
            code("seed = 1\nsize = 10", "parameters"),
            code("rng = np.random.default_rng(seed)\ndata = rng.normal(size=size)"),
            code('print(f"mean = {data.mean():.3f}")'),
        ],
    )
    nb.metadata["jupytext"] = {"cell_metadata_filter": "tags,-all"}
    return nb


# --------------------------------------------------------------------------- driver

EXECUTED: dict[str, Callable[[], Any]] = {
    "basics": basics,
    "pandas_display": pandas_display,
    "plots": plots,
    "magics": magics,
    "errors": errors,
    "comprehensions_scopes": comprehensions_scopes,
    "mutation": mutation,
    "control_flow": control_flow,
    "ml_pipeline": ml_pipeline,
    "imports_star": imports_star,
    "markdown_heavy": markdown_heavy,
    "sqlite_db": sqlite_db,
}

# Output types / mime types each notebook must contain after execution.
EXPECTED: dict[str, set[str]] = {
    "basics": {"stream:stdout", "stream:stderr", "execute_result"},
    "pandas_display": {"execute_result", "text/html", "stream"},
    "plots": {"display_data", "image/png", "execute_result", "stream"},
    "magics": {"stream", "execute_result"},
    "errors": {"error", "stream", "execute_result"},
    "comprehensions_scopes": {"execute_result"},
    "mutation": {"execute_result", "stream"},
    "control_flow": {"execute_result", "stream"},
    "ml_pipeline": {"execute_result", "display_data", "image/png"},
    "imports_star": {"execute_result", "stream"},
    "markdown_heavy": {"stream"},
    "sqlite_db": {"execute_result", "text/html", "stream"},
    "legacy_v44": {"execute_result", "stream"},
}


def write_legacy(path: Path) -> None:
    nb = execute(legacy_v44())
    data = json.loads(nbformat.writes(nb))
    data["nbformat_minor"] = 4
    for cell in data["cells"]:
        cell.pop("id", None)
    with path.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def output_kinds(nb: Any) -> tuple[set[str], set[str]]:
    kinds: set[str] = set()
    mimes: set[str] = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            kinds.add(output.output_type)
            if output.output_type == "stream":
                mimes.add(f"stream:{output.name}")
            mimes.update(output.get("data", {}))
    return kinds, mimes


def check(paths: list[Path]) -> None:
    print(f"\n{'file':28} {'bytes':>7} {'cells':>5}  outputs")
    for path in paths:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SystemExit(f"{path.name} is too large: {size} bytes")
        if path.suffix == ".py":
            nb = jupytext.read(path)
            print(f"{path.name:28} {size:>7} {len(nb.cells):>5}  (percent script, not executed)")
            continue
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        kinds, mimes = output_kinds(nb)
        missing = EXPECTED[path.stem] - kinds - mimes
        if missing:
            raise SystemExit(f"{path.name} lacks expected outputs: {sorted(missing)}")
        summary = ", ".join(sorted(kinds)) + " | " + ", ".join(sorted(mimes))
        print(f"{path.name:28} {size:>7} {len(nb.cells):>5}  {summary}")


def main() -> None:
    # Stable hashing (set ordering) in the kernels, which inherit this environment.
    os.environ["PYTHONHASHSEED"] = "0"
    os.environ.pop("MY_VAR", None)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    for stem, build in EXECUTED.items():
        path = OUT_DIR / f"{stem}.ipynb"
        print(f"executing {path.name}")
        nbformat.write(execute(build()), path)
        written.append(path)

    legacy = OUT_DIR / "legacy_v44.ipynb"
    print(f"executing {legacy.name}")
    write_legacy(legacy)
    written.append(legacy)

    script = OUT_DIR / "percent_script.py"
    script.write_text(jupytext.writes(percent_source(), fmt="py:percent"), encoding="utf-8")
    written.append(script)

    check(written)


if __name__ == "__main__":
    main()
