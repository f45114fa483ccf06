"""``nbcellar diff RUN_A RUN_B``: what differs between two runs."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click

from nbcellar.cli.context import read_context_store, store_option


def _text_of(outputs: list[Any]) -> str:
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


def _code_cells(path: Path) -> list[tuple[str, str]]:
    """(source, shown text) of each code cell of an executed notebook."""
    from nbcellar.notebook import read_notebook

    if not path.exists():
        return []
    return [(c.source, _text_of(list(c.outputs))) for c in read_notebook(path).code_cells]


@click.command()
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@store_option
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str) -> None:
    """Show what differs between two runs: parameters, logged values, source, outputs.

    Runs are ids from 'nbcellar runs', or unique starts or ends of ids."""
    from nbcellar.cli.render import console
    from nbcellar.cli.show import find_run
    from nbcellar.runs.records import RunBook

    store = read_context_store(ctx)
    try:
        book = RunBook(store)
        a, b = find_run(book, run_a), find_run(book, run_b)
        cells_a = _code_cells(book.folder(a.id) / "executed.ipynb")
        cells_b = _code_cells(book.folder(b.id) / "executed.ipynb")
    finally:
        store.close()
    out = console()
    out.print(f"--- run {a.id}\n+++ run {b.id}", highlight=False)
    same = True

    def section(title: str, lines: list[str]) -> None:
        nonlocal same
        if lines:
            same = False
            out.print(f"[bold]{title}[/]")
            for line in lines:
                out.print(line, highlight=False, markup=False, soft_wrap=True)

    def changes(left: Any, right: Any) -> list[str]:
        names = list(dict.fromkeys([*left, *right]))
        return [
            f"  {n}: {left.get(n, '(none)')!r} -> {right.get(n, '(none)')!r}"
            for n in names
            if left.get(n) != right.get(n)
        ]

    section("params", changes(a.params, b.params))
    section("status", [f"  {a.status} -> {b.status}"] if a.status != b.status else [])
    section("logged values", changes(a.values, b.values))
    if a.notebook != b.notebook:
        section("notebook", [f"  {a.notebook} -> {b.notebook}"])
    commit_a, commit_b = a.source.get("git_commit"), b.source.get("git_commit")
    if commit_a != commit_b:
        section("git", [f"  {commit_a} -> {commit_b}"])
    source: list[str] = []
    shown: list[str] = []
    for number in range(max(len(cells_a), len(cells_b))):
        left = cells_a[number] if number < len(cells_a) else ("", "")
        right = cells_b[number] if number < len(cells_b) else ("", "")
        for kept, index in ((source, 0), (shown, 1)):
            if left[index] != right[index]:
                lines = difflib.unified_diff(
                    left[index].splitlines(), right[index].splitlines(),
                    f"cell [{number + 1}] (a)", f"cell [{number + 1}] (b)", lineterm="",
                )  # fmt: skip
                kept.extend(f"  {line}" for line in lines)
    section("source", source)
    section("outputs", shown)
    if same:
        out.print("no differences")
