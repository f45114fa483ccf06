"""Reading and writing notebooks on disk: Jupyter ``.ipynb`` and percent-format scripts.

Formats are declared as data (:data:`FORMATS`), looked up by file suffix. Every failure is turned
into one :class:`~nbcellar.errors.NotebookError` naming the file and the problem, never a traceback
from inside nbformat or jupytext. A notebook that Jupyter opens is read even where it breaks
nbformat's schema, with one :class:`~nbcellar.notebook.conformance.NotebookFormatWarning`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from nbcellar.errors import NotebookError
from nbcellar.notebook.conformance import unreadable, warn_if_invalid
from nbcellar.notebook.model import (
    CellId,
    Notebook,
    fill_missing_ids,
    from_nbformat,
    to_nbformat,
)

SUPPORTED_MAJORS = (3, 4)


def skip_iri_grammars() -> None:
    """Keep ``rfc3987_syntax`` from being imported in this process (nbcellar's own: the
    command, a pytest session with --nbcellar, a cluster's workers nbcellar started).

    nbformat validates notebooks with jsonschema, which imports ``rfc3987_syntax`` when it is
    installed (Jupyter servers pull it in) and so compiles 38 grammars: 0.8 to 2.7 s in every
    process that reads a notebook. Its one check, the ``iri`` format, is not in the notebook
    schema; without the module jsonschema simply leaves that format unchecked.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Format:
    """A notebook file format: its name, the suffixes it owns, and how to read and write text."""

    name: str
    suffixes: tuple[str, ...]
    reads: Callable[[str, str], Notebook]
    writes: Callable[[Notebook], str]


def _read_ipynb_text(text: str, where: str) -> Notebook:
    import nbformat

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            where,
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "the file is damaged or is not a notebook; restore it from version control",
        ) from None
    except RecursionError:
        raise NotebookError(
            where,
            "nested deeper than JSON readers go (no notebook is)",
            "the file is damaged or is not a notebook; restore it from version control",
        ) from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError(
            where,
            "not a Jupyter notebook (JSON without an 'nbformat' field)",
            "pass an .ipynb notebook or a percent-format .py script",
        )
    major = data.get("nbformat")
    if not isinstance(major, int) or major not in SUPPORTED_MAJORS:
        raise NotebookError(
            where,
            f"nbformat version {major!r} is not supported (nbcellar reads versions 3 and 4)",
            "open and save it with a current Jupyter",
        )
    try:
        if major == 3:
            data = nbformat.convert(nbformat.from_dict(data), 4)
    except Exception as exc:  # nbformat's v3 upgrade raises many kinds on damaged input
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise NotebookError(
            where,
            f"cannot read this nbformat 3 notebook: {first_line}",
            "open and save it with a current Jupyter",
        ) from None
    problem = unreadable(data)
    if problem is not None:
        raise NotebookError(
            where,
            f"not a readable notebook: {problem}",
            "Jupyter cannot open it either; repair it or restore it from version control",
        )
    warn_if_invalid(data, where)
    fill_missing_ids(data)
    return from_nbformat(data)


def _write_ipynb_text(nb: Notebook) -> str:
    import nbformat

    # nbformat.writes would validate first and log a notebook that strays from the schema as a
    # multi-line error; the reader has said so once already, and the notebook is kept as read.
    return str(nbformat.v4.writes_json(to_nbformat(nb))) + "\n"


def _read_percent_text(text: str, where: str) -> Notebook:
    import jupytext

    try:
        node = jupytext.reads(text, fmt="py:percent")
    except Exception as exc:  # jupytext raises many kinds; the user needs one line
        raise NotebookError(where, f"cannot parse percent script: {exc}") from None
    nb = from_nbformat(node)
    # jupytext draws random ids on every read; a script's cells get stable ones instead.
    cells = tuple(replace(c, id=CellId(f"cell-{i}")) for i, c in enumerate(nb.cells))
    return replace(nb, cells=cells)


def _write_percent_text(nb: Notebook) -> str:
    import jupytext

    return str(jupytext.writes(to_nbformat(nb), fmt="py:percent"))


FORMATS: tuple[Format, ...] = (
    Format("ipynb", (".ipynb",), _read_ipynb_text, _write_ipynb_text),
    Format("percent", (".py",), _read_percent_text, _write_percent_text),
)


def format_for(path: str | os.PathLike[str]) -> Format:
    """The format owning ``path``'s suffix, or a NotebookError listing the known suffixes."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS:
        if suffix in fmt.suffixes:
            return fmt
    known = ", ".join(s for f in FORMATS for s in f.suffixes)
    raise NotebookError(
        str(path), f"unknown notebook format {suffix or '(no suffix)'!r}", f"use one of {known}"
    )


def reads(text: str, fmt: str = "ipynb", where: str = "<string>") -> Notebook:
    """Parse notebook text in the named format (``"ipynb"`` or ``"percent"``)."""
    for candidate in FORMATS:
        if candidate.name == fmt:
            return candidate.reads(text, where)
    raise ValueError(f"unknown format {fmt!r}")


def writes(nb: Notebook, fmt: str = "ipynb") -> str:
    """Serialise a notebook to text in the named format."""
    for candidate in FORMATS:
        if candidate.name == fmt:
            return candidate.writes(nb)
    raise ValueError(f"unknown format {fmt!r}")


def read_notebook(path: str | os.PathLike[str]) -> Notebook:
    """Read an ``.ipynb`` notebook or a percent-format ``.py`` script from disk."""
    where = str(path)
    fmt = format_for(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotebookError(where, "no such file", "check the path") from None
    except IsADirectoryError:
        raise NotebookError(where, "is a directory, not a notebook") from None
    except OSError as exc:
        raise NotebookError(where, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(
            where, f"not UTF-8 text (byte {exc.start})", "notebooks and scripts are UTF-8 text"
        ) from None
    return fmt.reads(text, where)


def write_notebook(nb: Notebook, path: str | os.PathLike[str]) -> Path:
    """Write ``nb`` in the format its suffix names, atomically (temp file, then rename)."""
    target = Path(path)
    text = format_for(target).writes(nb)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
