"""What commands share through click's context: the store location (``--store``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

STORE_HELP = (
    "Store folder, or a shared store's URL (s3://bucket/prefix, file:///nfs/store) (default: "
    "$NBCELLAR_STORE, else the nearest .nbcellar/ above here)."
)


def _remember_store(ctx: click.Context, _: click.Parameter, value: str | None) -> str | None:
    """Keep ``--store`` as given: a URL is not a path (``Path`` would fold its ``//``)."""
    if value is not None:
        ctx.ensure_object(dict)["store"] = value
    return value


def store_option(command: F) -> F:
    """``--store PATH`` on a command or group; the innermost one given wins."""
    return click.option(
        "--store",
        "store_path",
        metavar="PATH|URL",
        callback=_remember_store,
        expose_value=False,
        is_eager=True,
        help=STORE_HELP,
    )(command)


def store_path(ctx: click.Context) -> str | None:
    """The ``--store`` given on this command or any group above it (they share ``ctx.obj``):
    a folder, or a shared store's URL."""
    if isinstance(ctx.obj, dict) and "store" in ctx.obj:
        return str(ctx.obj["store"])
    return None


def context_store_root(ctx: click.Context, notebook: Path | None = None) -> Path:
    """The store a command uses: ``--store``, ``$NBCELLAR_STORE``, else the nearest
    ``.nbcellar/`` above here, or, for a command given a notebook, above the notebook's folder
    first (as its kernel finds it; see store_for_notebook)."""
    from nbcellar.store.location import find_store_root, store_for_notebook

    if notebook is not None:
        return store_for_notebook(store_path(ctx), notebook)
    return find_store_root(store_path(ctx))


def open_context_store(ctx: click.Context, notebook: Path | None = None) -> Any:
    from nbcellar.store import open_store

    store = open_store(context_store_root(ctx, notebook))
    ctx.call_on_close(store.close)  # (a command run in-process leaves no connection behind)
    return store


def read_context_store(ctx: click.Context, notebook: Path | None = None) -> Any:
    """The store of a command that only reads: one not made yet is read as empty, and
    nothing is created in its place."""
    root = context_store_root(ctx, notebook)
    if root.exists():
        from nbcellar.store import open_store

        store = open_store(root)
    else:
        store = EmptyStore.at(root)
    ctx.call_on_close(store.close)
    return store


class EmptyStore:
    """Stands for a store not made yet at ``root``: a real, empty store in a temporary
    folder (removed on close), known by the folder it stands for."""

    @classmethod
    def at(cls, root: Path) -> Any:
        import shutil
        import tempfile

        from nbcellar.store import Store

        scratch = Path(tempfile.mkdtemp(prefix="nbcellar-empty-"))

        class Empty(Store):
            def close(self) -> None:
                super().close()
                shutil.rmtree(scratch, ignore_errors=True)

        store = Empty(scratch / ".nbcellar")
        store.root = root
        return store
