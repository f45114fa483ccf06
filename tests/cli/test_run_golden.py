"""nbclient's own golden notebooks through ``nbcellar run``: the first run and the cached re-runs
give the outputs nbclient's tests expect of a plain run.

The notebooks ship in the sdist of the installed nbclient (tests/files); a fixture fetches it
into pytest's cache folder with pip (whose own cache serves it after the first time). Outputs
are compared as nbclient's tests compare them: without output metadata, with memory addresses,
base64 line breaks and SVG attribute order made alike, and tracebacks by their exception.
"""

from __future__ import annotations

import base64
import binascii
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import canonicalize

import nbformat
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow

# Notebook, options of `nbcellar run` (as nbclient's tests run it).
GOLDEN = [
    ("Clear Output.ipynb", []),
    ("Empty Cell.ipynb", []),
    ("Error.ipynb", ["--allow-errors"]),
    ("Factorials.ipynb", []),
    ("HelloWorld.ipynb", []),
    ("Inline Image.ipynb", []),
    ("Other Comms.ipynb", []),
    ("Skip Exceptions with Cell Tags.ipynb", []),
    ("Skip Exceptions.ipynb", ["--allow-errors"]),
    ("Skip Execution with Cell Tag.ipynb", []),
    ("SVG.ipynb", []),
    ("Unicode.ipynb", []),
    ("UnicodePy3.ipynb", []),
    ("update-display-id.ipynb", []),
    ("Check History in Memory.ipynb", []),
]
# Left out: JupyterWidgets.ipynb and Output.ipynb need ipywidgets, which nbcellar does not
# depend on; Disable Stdin.ipynb asks for input; Interrupt.ipynb, Autokill.ipynb, Sleep1s.ipynb
# and Parallel Execute *.ipynb test nbclient's own handling of timeouts, dying kernels and
# parallel runs, not what cells show.

NOTHING_TO_RESTORE = {"Error.ipynb"}  # (its one cell raises)

_UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish|Network is unreachable|Name or service not known|"
    r"Temporary failure in name resolution|ConnectTimeout|ReadTimeout|ProxyError|"
    r"Connection refused|No route to host",
    re.IGNORECASE,
)


@pytest.fixture(scope="session")
def nbclient_files(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/files of the installed nbclient's sdist, fetched once into pytest's cache (a
    temporary folder when pytest runs without its cache)."""
    version = importlib.metadata.version("nbclient")
    cache = getattr(pytestconfig, "cache", None)
    name = f"nbclient-{version}-sdist"
    folder = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
    files = folder / f"nbclient-{version}" / "tests" / "files"
    if files.is_dir():
        return files
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--retries", "1", "--timeout", "20", "-d", str(folder), f"nbclient=={version}"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if download.returncode != 0:
        message = (download.stderr.strip().splitlines() or ["pip failed"])[-1]
        if _UNREACHABLE.search(download.stderr + download.stdout):
            pytest.skip(f"the package registry cannot be reached for nbclient {version}'s sdist")
        pytest.fail(f"pip could not download nbclient {version}'s sdist: {message}")
    archive = next(folder.glob(f"nbclient-{version}.tar.gz"))
    prefix = f"nbclient-{version}/tests/files/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(folder, members=members, filter="data")
    return files


_ADDRESS = re.compile(r"0x[0-9a-f]{7,16}")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _normal_data(mime: str, value: Any) -> Any:
    text = _text(value)
    if mime == "image/svg+xml":  # (the same drawing, attributes in any order)
        return canonicalize(text, strip_text=True)
    if mime == "text/plain":
        return _ADDRESS.sub("<ADDRESS>", text)
    if mime.startswith("image/"):
        try:
            return base64.b64encode(base64.b64decode(text)).decode("ascii")
        except (binascii.Error, ValueError):
            return text
    return value


def normal_output(output: Any) -> dict[str, Any]:
    shown = {k: v for k, v in dict(output).items() if k != "metadata"}
    if "text" in shown:
        shown["text"] = _ADDRESS.sub("<ADDRESS>", _text(shown["text"]))
    if "data" in shown:
        shown["data"] = {m: _normal_data(m, v) for m, v in shown["data"].items()}
    if "traceback" in shown:
        # The lines of source around the one that raised, and how a cell is named, change with
        # IPython's version (the golden files were made with older ones): the exception's name
        # and message are compared, with the traceback's header and last line.
        lines = [_ANSI.sub("", line) for line in shown["traceback"]]
        shown["traceback"] = [*lines[:2], lines[-1]] if len(lines) > 2 else lines
    return shown


def streams_in_order(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """stdout before stderr where the two follow each other: a kernel flushes its two streams
    on their own, so which comes first in a cell that ran is a race (nbclient orders them so
    when it coalesces streams). A restored cell's order is tested message by message in
    tests/kernel/test_iopub_replay.py."""
    ordered = list(outputs)
    for i in range(len(ordered) - 1):
        here, after = ordered[i], ordered[i + 1]
        if here.get("name") == "stderr" and after.get("name") == "stdout":
            ordered[i], ordered[i + 1] = after, here
    return ordered


def shown_by(path: Path) -> list[tuple[Any, list[dict[str, Any]]]]:
    nb = nbformat.read(path, as_version=4)
    return [
        (
            cell.get("execution_count"),
            streams_in_order([normal_output(o) for o in cell.get("outputs", [])]),
        )
        for cell in nb.cells
        if cell.cell_type == "code"
    ]


def run_in_a_kernel(source: Path, out: Path, store: Path, options: list[str]) -> list[str]:
    """What ``nbcellar run`` does when some cell needs a kernel: every cell goes through one
    (the cached ones restored there, their outputs replayed); the cells' statuses."""
    from nbcellar.notebook import read_notebook, write_notebook
    from nbcellar.runs.execute import execute_notebook

    result = execute_notebook(
        read_notebook(source),
        cwd=source.parent,
        store_root=store,
        allow_errors="--allow-errors" in options,
        without_kernel=False,
    )
    write_notebook(result.notebook, out)
    return [c.status for c in result.cells]


@pytest.mark.parametrize(("name", "options"), GOLDEN, ids=[n for n, _ in GOLDEN])
def test_golden_notebook_first_run_and_cached_reruns_give_the_golden_outputs(
    name: str,
    options: list[str],
    nbclient_files: Path,
    tmp_path: Path,
    private_store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # (as nbclient's tests: tracebacks cut alike)
    monkeypatch.setenv("LINES", "24")
    for extra in nbclient_files.iterdir():
        if extra.suffix != ".ipynb":  # (python.png, which Inline Image.ipynb shows)
            shutil.copy(extra, tmp_path / extra.name)
    golden = nbclient_files / name
    blank = nbformat.read(golden, as_version=4)
    for cell in blank.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    source = tmp_path / "notebook.ipynb"
    nbformat.write(blank, source)
    expected = shown_by(golden)

    first = CliRunner().invoke(cli, ["run", str(source), "-o", str(tmp_path / "1.ipynb"), *options])
    assert first.exit_code == 0, first.output
    assert shown_by(tmp_path / "1.ipynb") == expected

    statuses = run_in_a_kernel(source, tmp_path / "2.ipynb", private_store, options)
    assert shown_by(tmp_path / "2.ipynb") == expected
    assert "restored" in statuses or name in NOTHING_TO_RESTORE, statuses

    again = CliRunner().invoke(cli, ["run", str(source), "-o", str(tmp_path / "3.ipynb"), *options])
    assert again.exit_code == 0, again.output
    assert shown_by(tmp_path / "3.ipynb") == expected
