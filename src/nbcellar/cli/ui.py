"""``nbcellar ui``: the local dashboard over the store (see nbcellar.ui)."""

from __future__ import annotations

import click

from nbcellar.cli.context import context_store_root, store_option


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but the loopback one needs the token.")  # fmt: skip
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free one).")  # fmt: skip
@click.option("--token", default=None, help="The token to ask for (default: a new one, "
              "when bound to another address than the loopback one).")  # fmt: skip
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--allow-cancel", is_flag=True,
              help="Let the jobs page cancel launches (otherwise it only reads).")  # fmt: skip
@store_option
@click.pass_context
def ui(
    ctx: click.Context,
    host: str,
    port: int,
    token: str | None,
    no_browser: bool,
    allow_cancel: bool,
) -> None:
    """Serve the dashboard of the runs in the store (read-only) and open it in a browser."""
    from nbcellar.errors import NbcellarError
    from nbcellar.ui import serve

    root = context_store_root(ctx)
    if not root.exists():
        raise NbcellarError(f"no store at {root}: run a notebook first ('nbcellar run NB'), "
                            "or give one with --store")  # fmt: skip
    serve(root, host=host, port=port, token=token, browser=not no_browser,
          allow_cancel=allow_cancel)  # fmt: skip
