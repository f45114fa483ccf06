"""``nbcellar diff RUN_A RUN_B``: what differs between two runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from nbcellar.cli.context import read_context_store, store_option

if TYPE_CHECKING:
    from nbcellar.runs.diff import Change


@click.command()
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@store_option
@click.pass_context
def diff(ctx: click.Context, run_a: str, run_b: str) -> None:
    """Show what differs between two runs: parameters, logged values, source, outputs.

    Runs are ids from 'nbcellar runs', or unique starts or ends of ids."""
    from nbcellar.cli.render import console
    from nbcellar.runs.diff import diff_runs

    store = read_context_store(ctx)
    try:
        found = diff_runs(store, run_a, run_b)
    finally:
        store.close()
    out = console()
    out.print(f"--- run {found.a}\n+++ run {found.b}", highlight=False)

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.print(f"[bold]{title}[/]")
            for line in lines:
                out.print(line, highlight=False, markup=False, soft_wrap=True)

    def changes(listed: Iterable[Change | None]) -> list[str]:
        return [f"  {c.name}: {_shown(c.before)} -> {_shown(c.after)}" for c in listed if c]

    section("params", changes(found.params))
    section("status", [f"  {found.status.before} -> {found.status.after}"] if found.status else [])
    section("logged values", changes(found.values))
    for title, change in (("notebook", found.notebook), ("git", found.git)):
        section(title, [f"  {change.before} -> {change.after}"] if change else [])
    section("source", [f"  {line}" for line in found.source])
    section("outputs", [f"  {line}" for line in found.outputs])
    if found.same:
        out.print("no differences")


def _shown(value: Any) -> str:
    return "(none)" if value is None else repr(value)
