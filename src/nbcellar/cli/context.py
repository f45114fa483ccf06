"""What commands share through click's context: the store location (``--store``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

STORE_HELP = "Store folder (default: $NBCELLAR_STORE, else the nearest .nbcellar/ above here)."


def _remember_store(ctx: click.Context, _: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        ctx.ensure_object(dict)["store"] = value
    return value


def store_option(command: F) -> F:
    """``--store PATH`` on a command or group; the innermost one given wins."""
    return click.option(
        "--store",
        "store_path",
        type=click.Path(file_okay=False, path_type=Path),
        callback=_remember_store,
        expose_value=False,
        is_eager=True,
        help=STORE_HELP,
    )(command)


def store_path(ctx: click.Context) -> Path | None:
    """The ``--store`` given on this command or any group above it (they share ``ctx.obj``)."""
    if isinstance(ctx.obj, dict) and "store" in ctx.obj:
        return Path(ctx.obj["store"])
    return None


def open_context_store(ctx: click.Context) -> Any:
    from nbcellar.store import open_store

    return open_store(store_path(ctx))
