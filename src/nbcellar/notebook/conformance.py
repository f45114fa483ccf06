"""Whether a notebook's JSON can be read at all, and where it strays from nbformat's schema.

Jupyter and nbclient open notebooks that do not validate (a kernelspec without a name, cell ids
in a 4.4 file, an output without metadata): nbformat logs the schema error and goes on. nbcellar
does the same. What nbformat's reader and nbclient can read is read, with one
:class:`NotebookFormatWarning` line naming the first problem; what they cannot read is refused.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nbcellar.errors import NbcellarWarning

MAX_MESSAGE = 120  # characters of one schema problem in the warning line


class NotebookFormatWarning(NbcellarWarning):
    """A notebook that Jupyter opens but that does not follow the nbformat schema."""


def _where(path: Sequence[object]) -> str:
    return "/".join(str(p) for p in path) or "the top level"


def _text_source(source: object) -> bool:
    return isinstance(source, str) or (
        isinstance(source, list) and all(isinstance(s, str) for s in source)
    )


def _cell_problem(cell: object, at: str) -> str | None:
    if not isinstance(cell, Mapping):
        return f"{at} is not a cell (a JSON object)"
    if not isinstance(cell.get("cell_type"), str):
        return f"{at} has no 'cell_type'"
    if not isinstance(cell.get("metadata"), Mapping):
        return f"{at} has no 'metadata' object"
    attachments = cell.get("attachments", {})
    if not isinstance(attachments, Mapping) or not all(
        isinstance(a, Mapping) for a in attachments.values()
    ):
        return f"{at}/attachments is not an object of attachments"
    if cell["cell_type"] != "code":
        return None
    if not _text_source(cell.get("source")):
        return f"{at} is a code cell without text in 'source'"
    outputs = cell.get("outputs", [])
    if not isinstance(outputs, list):
        return f"{at}/outputs is not a list"
    for number, output in enumerate(outputs):
        if not isinstance(output, Mapping) or not isinstance(output.get("output_type"), str):
            return f"{at}/outputs/{number} has no 'output_type'"
        if not isinstance(output.get("data", {}), Mapping):
            return f"{at}/outputs/{number}/data is not an object"
    return None


def unreadable(data: Mapping[str, Any]) -> str | None:
    """The first thing in a v4 notebook's JSON that nbformat's reader, nbclient or nbformat's
    writer trips over (so Jupyter cannot open, run or save it either), or None."""
    minor = data.get("nbformat_minor", 0)
    if not isinstance(minor, int):
        return f"'nbformat_minor' is {minor!r}, not a number"
    if not isinstance(data.get("metadata"), Mapping):
        return "it has no 'metadata' object"
    cells = data.get("cells")
    if not isinstance(cells, list):
        return "it has no 'cells' list"
    for index, cell in enumerate(cells):
        problem = _cell_problem(cell, f"cells/{index}")
        if problem is not None:
            return problem
    return None


def _shorten(message: str, instance: object) -> str:
    """One line of a schema message, without the repr of a whole cell or output in it."""
    message = message.splitlines()[0] if message else "invalid"
    shown = repr(instance)
    if isinstance(instance, Mapping | list) and message.startswith(shown):
        kind = ""
        if isinstance(instance, Mapping):
            for key in ("cell_type", "output_type"):
                if key in instance:
                    kind = f"{key} {instance[key]!r}"
        message = (kind or "it") + message[len(shown) :]
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return message


def _duplicate_ids(data: Mapping[str, Any]) -> Iterator[str]:
    seen: dict[object, int] = {}
    for index, cell in enumerate(data.get("cells", [])):
        if not isinstance(cell, Mapping) or not isinstance(cell.get("id"), str):
            continue
        first = seen.setdefault(cell["id"], index)
        if first != index:
            yield f"cells/{index}/id: {cell['id']!r} is also the id of cells/{first}"


def schema_problems(data: Mapping[str, Any]) -> list[str]:
    """Where and how a readable notebook breaks the schema of its own nbformat version, in the
    order nbformat's validator reports them, then cell ids used twice (which nbformat would
    replace by random ones: nbcellar keeps them)."""
    from nbformat.reader import get_version
    from nbformat.validator import iter_validate

    major, minor = get_version(data)
    problems = [  # (iter_validate neither repairs nor warns, unlike nbformat.validate)
        f"{_where(list(error.absolute_path))}: {_shorten(error.message, error.instance)}"
        for error in iter_validate(data, version=major, version_minor=minor)
    ]
    problems.extend(_duplicate_ids(data))
    return problems


def warn_if_invalid(data: Mapping[str, Any], where: str) -> None:
    """One NotebookFormatWarning for the whole notebook if it breaks the schema."""
    problems = schema_problems(data)
    if not problems:
        return
    version = f"{data.get('nbformat')}.{data.get('nbformat_minor', 0)}"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    warnings.warn(
        f"{where}: does not follow the nbformat {version} schema at {problems[0]}{more}; "
        "read as Jupyter reads it, every field kept",
        NotebookFormatWarning,
        stacklevel=2,
    )
