"""What differs between two recorded runs: parameters, status, logged values, notebook, git
commit, and cell by cell the source and what the cells showed (``nbcellar diff A B``, the
dashboard's compare page). Read from the records and the executed notebooks: nothing is
unpickled."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError


@dataclass(frozen=True)
class Change:
    """``name`` was ``before`` in the first run and is ``after`` in the second (``None``
    where a run has none)."""

    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class RunDiff:
    a: str  # the runs' ids
    b: str
    params: tuple[Change, ...]
    status: Change | None
    values: tuple[Change, ...]  # logged values (their last)
    notebook: Change | None
    git: Change | None
    source: tuple[str, ...]  # unified-diff lines, cell by cell
    outputs: tuple[str, ...]

    @property
    def same(self) -> bool:
        return not (self.params or self.status or self.values or self.notebook or self.git
                    or self.source or self.outputs)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["same"] = self.same
        return found


def find_run(book: Any, wanted: str) -> Any:
    """The run whose id is ``wanted``, or the only one starting or ending with it."""
    exact = book.get(wanted)
    if exact is not None:
        return exact
    matches = [r for r in book.all() if r.id.startswith(wanted) or r.id.endswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NbcellarError(f"no run {wanted!r} in {book.store.root} (see 'nbcellar runs')")
    shown = ", ".join(r.id for r in matches[:5])
    raise NbcellarError(f"{wanted!r} names {len(matches)} runs ({shown}…); give more of the id")


def diff_runs(store: Any, run_a: str, run_b: str) -> RunDiff:
    """The differences between two runs of ``store`` (ids, or unique starts or ends of ids)."""
    from nbcellar.runs.records import RunBook

    book = RunBook(store)
    a, b = find_run(book, run_a), find_run(book, run_b)
    cells_a = code_cells(book.folder(a.id) / "executed.ipynb")
    cells_b = code_cells(book.folder(b.id) / "executed.ipynb")
    source: list[str] = []
    shown: list[str] = []
    for number in range(max(len(cells_a), len(cells_b))):
        left = cells_a[number] if number < len(cells_a) else ("", "")
        right = cells_b[number] if number < len(cells_b) else ("", "")
        for kept, index in ((source, 0), (shown, 1)):
            if left[index] != right[index]:
                kept.extend(difflib.unified_diff(
                    left[index].splitlines(), right[index].splitlines(),
                    f"cell [{number + 1}] (a)", f"cell [{number + 1}] (b)", lineterm="",
                ))  # fmt: skip
    commit_a, commit_b = a.source.get("git_commit"), b.source.get("git_commit")
    return RunDiff(
        a.id, b.id, _changes(a.params, b.params),
        Change("status", a.status, b.status) if a.status != b.status else None,
        _changes(a.values, b.values),
        Change("notebook", a.notebook, b.notebook) if a.notebook != b.notebook else None,
        Change("git", commit_a, commit_b) if commit_a != commit_b else None,
        tuple(source), tuple(shown),
    )  # fmt: skip


def _changes(left: Mapping[str, Any], right: Mapping[str, Any]) -> tuple[Change, ...]:
    names = list(dict.fromkeys([*left, *right]))
    return tuple(Change(n, left.get(n), right.get(n)) for n in names if left.get(n) != right.get(n))


def text_of(outputs: list[Any]) -> str:
    """What a cell showed, as text: streams, plain-text results, and a line per rich output."""
    parts: list[str] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            text = output.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else str(text))
        elif kind == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}\n")
        else:
            data = output.get("data", {})
            if "text/plain" in data:
                text = data["text/plain"]
                parts.append(("".join(text) if isinstance(text, list) else str(text)) + "\n")
            rich = sorted(k for k in data if k != "text/plain")
            if rich:
                import xxhash

                content = json.dumps({k: data[k] for k in rich}, sort_keys=True)
                digest = xxhash.xxh3_64_hexdigest(content.encode("utf-8"))[:8]
                parts.append(f"[{', '.join(rich)}: {len(content)} characters, {digest}]\n")
    return "".join(parts)


def code_cells(path: Path) -> list[tuple[str, str]]:
    """(source, shown text) of each code cell of an executed notebook."""
    from nbcellar.notebook import read_notebook

    if not path.exists():
        return []
    return [(c.source, text_of(list(c.outputs))) for c in read_notebook(path).code_cells]
