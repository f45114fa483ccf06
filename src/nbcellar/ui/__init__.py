"""``nbcellar ui``: a local dashboard over a store, with nothing to set up.

The store is the database: :mod:`nbcellar.ui.catalog` lays its run records out for queries,
:mod:`nbcellar.ui.server` serves the pages and the JSON they read (``/api/...``).
"""

from __future__ import annotations

from pathlib import Path


def serve(
    store_root: Path | str,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    browser: bool = True,
    allow_cancel: bool = False,
) -> None:
    """Serve the dashboard of the store at ``store_root`` until interrupted. Bound to another
    address than the loopback one, it asks for a token (``token``, or a new one, printed)."""
    import socket
    import webbrowser

    import uvicorn

    from nbcellar.ui.server import create_app, is_loopback, new_token

    if token is None and not is_loopback(host):
        token = new_token()
    app = create_app(store_root, token=token, allow_cancel=allow_cancel)
    listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as problem:
        from nbcellar.errors import NbcellarError

        listening.close()
        raise NbcellarError(f"cannot listen on {host}:{port} ({problem.strerror}); give "
                            "another with --port (0: any free one)") from None  # fmt: skip
    listening.listen(128)  # (a browser opened now waits while the catalog is made)
    bound = listening.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    print(f"nbcellar ui: the runs of {store_root} at {url} (Ctrl-C stops it)", flush=True)
    if browser:
        webbrowser.open(url)
    # (the jobs page's event streams end with the server: no long wait for them to close)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    server.run(sockets=[listening])
