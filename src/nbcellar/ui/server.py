"""``nbcellar ui``'s web application: pages and the JSON under ``/api/`` they read.

A starlette application over one store. It reads the store and never writes it; it unpickles
nothing (a page shows what records keep as JSON, and executed notebooks rendered to HTML in a
sandboxed frame). Bound to anything but the loopback address, every request needs the token
(``?token=`` once, then a cookie; or an ``Authorization: token ...`` header), as Jupyter does.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from html import escape
from pathlib import Path
from typing import Any

STATIC = Path(__file__).with_name("static")
LIMIT = 500  # rows a page of the runs table holds at most
COMPARED = 200  # runs one comparison takes at most


def _page(
    title: str, page: str, body: str, data: dict[str, Any] | None = None, charts: bool = False
) -> str:
    payload = escape(json.dumps(data or {}), quote=True)
    vendored = "<script src='/static/vendor/echarts/echarts.min.js'></script>" if charts else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)} · nbcellar</title>"
        "<link rel='stylesheet' href='/static/style.css'></head>"
        f"<body data-page='{page}' data-init=\"{payload}\"><header><b>nbcellar</b>"
        "<nav><a href='/'>Runs</a><a href='/jobs'>Jobs</a><a href='/pipeline'>Pipeline</a>"
        "<a href='/cache'>Cache</a></nav></header>"
        f"<main>{body}</main>{vendored}"
        "<script type='module' src='/static/app.js'></script></body></html>"
    )


def create_app(store_root: Path | str, token: str | None = None, allow_cancel: bool = False) -> Any:
    """The application over the store at ``store_root``; with ``token``, every request must
    carry it; with ``allow_cancel``, the jobs page can cancel launches (the one thing it
    would change)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        HTMLResponse,
        JSONResponse,
        PlainTextResponse,
        Response,
        StreamingResponse,
    )
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from nbcellar.runs.params import ParameterError
    from nbcellar.runs.where import parse_conditions
    from nbcellar.store import open_store
    from nbcellar.ui.catalog import COLUMNS, Catalog

    root = Path(store_root)
    # The store's connections belong to the thread that opened them: the event loop's, where
    # the handlers run (opened when the server starts, below).
    opened: dict[str, Any] = {}

    def store_now() -> Any:
        return opened["store"]

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def runs_page(request: Request) -> HTMLResponse:
        body = (
            "<section class='filters'><input id='where' size='48' placeholder="
            "'filter: model=svm; accuracy>0.9 (the --where language)'>"
            "<select id='status'><option value=''>any status</option>"
            + "".join(
                f"<option>{s}</option>"
                for s in ("ok", "failed", "running", "queued", "cancelled", "died")
            )
            + "</select><label><input type='checkbox' id='differ'> only params that differ"
            "</label><button id='choose'>columns</button><button id='compare'>compare</button>"
            "<span id='count'></span></section>"
            "<p id='problem' class='problem' hidden></p><div id='chooser' hidden></div>"
            "<table id='runs'><thead></thead><tbody></tbody></table>"
            "<nav class='pages'><button id='prev'>&larr; newer</button><span id='at'></span>"
            "<button id='next'>older &rarr;</button></nav>"
        )
        return HTMLResponse(_page("Runs", "runs", body, {"store": str(root)}))

    async def api_runs(request: Request) -> JSONResponse:
        query = request.query_params
        try:
            conditions = parse_conditions(query.get("where", ""))
            offset = max(0, int(query.get("offset", "0")))
            limit = min(LIMIT, max(1, int(query.get("limit", "50"))))
        except ParameterError as problem:
            return error(str(problem))
        except ValueError:
            return error("offset and limit are whole numbers")
        columns = [c for c in query.get("columns", "").split(",") if c] or None
        sort = query.get("sort", "created")
        page = opened["catalog"].query(
            conditions,
            status=query.get("status") or None,
            notebook=query.get("notebook") or None,
            sort=sort,
            descending=query.get("order", "desc") != "asc",
            offset=offset,
            limit=limit,
            columns=columns,
        )
        return JSONResponse({
            "total": page.total, "offset": offset, "limit": limit, "sort": sort,
            "columns": page.columns, "differ": page.differ, "runs": page.rows,
            "fixed": list(COLUMNS),
        })  # fmt: skip

    async def api_keys(request: Request) -> JSONResponse:
        return JSONResponse({"keys": opened["catalog"].keys()})

    async def api_notebooks(request: Request) -> JSONResponse:
        return JSONResponse({"notebooks": opened["catalog"].notebooks()})

    def record_of(run_id: str) -> Any:
        """The run's record as the store has it (a run whose process is gone is shown as
        died, as 'nbcellar runs' would, without writing that to the store)."""
        from dataclasses import replace

        from nbcellar.owners import alive
        from nbcellar.runs.records import KIND, RunRecord

        found = store_now().get_record(KIND, run_id)
        if found is None and run_id:  # (a unique start or end of an id, as the commands take)
            named = opened["catalog"].ids_named(run_id)
            found = store_now().get_record(KIND, named[0]) if len(named) == 1 else None
        if found is None:
            return None
        record = RunRecord.from_json(json.loads(found.payload))
        if record.status in ("queued", "running") and record.owner and not alive(record.owner):
            record = replace(record, status="died")
        return record

    async def api_run(request: Request) -> JSONResponse:
        from nbcellar.ui.run_page import run_details

        record = record_of(request.path_params["run"])
        if record is None:
            return error(f"no run {request.path_params['run']!r} in {root}", 404)
        answer = {**record.to_json(), **run_details(store_now(), record.id)}
        return JSONResponse(json.loads(json.dumps(answer, default=repr)))

    async def api_compare(request: Request) -> JSONResponse:
        from nbcellar.ui.compare import compare

        wanted = [i for i in request.query_params.get("runs", "").split(",") if i]
        if not wanted:
            return error("name the runs to compare: /api/compare?runs=ID,ID")
        if len(wanted) > COMPARED:
            return error(f"{len(wanted)} runs: compare at most {COMPARED} at a time")
        records = [record_of(i) for i in wanted]
        missing = [i for i, r in zip(wanted, records, strict=True) if r is None]
        if missing:
            return error(f"no run {missing[0]!r} in {root}", 404)
        answer = compare(root, records)
        if len(records) == 2:  # two runs: what differs, cell by cell too
            from nbcellar.runs.diff import diff_runs

            answer["diff"] = diff_runs(store_now(), wanted[0], wanted[1]).to_json()
        return JSONResponse(json.loads(json.dumps(answer, default=repr)))

    async def jobs_page(request: Request) -> HTMLResponse:
        body = ("<h1>Jobs</h1><p class='note' id='live'>connecting…</p>"
                "<p id='problem' class='problem' hidden></p><div id='jobs'></div>")  # fmt: skip
        return HTMLResponse(_page("Jobs", "jobs", body, {"cancel": allow_cancel}))

    async def api_jobs(request: Request) -> JSONResponse:
        from nbcellar.ui.jobs import snapshot

        return JSONResponse({"jobs": snapshot(store_now()), "cancel": allow_cancel})

    async def job_events(request: Request) -> StreamingResponse:
        """Server-sent events: the jobs, each time they change (looked at every second)."""
        import asyncio

        from nbcellar.ui.jobs import snapshot

        async def events() -> AsyncIterator[str]:
            last = None
            quiet = 0.0
            while not await request.is_disconnected():
                now = json.dumps({"jobs": snapshot(store_now())}, default=repr)
                if now != last:
                    yield f"data: {now}\n\n"
                    last, quiet = now, 0.0
                elif quiet > 15:
                    yield ": still here\n\n"  # (keeps proxies from closing it)
                    quiet = 0.0
                await asyncio.sleep(1.0)
                quiet += 1.0

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def cancel_job(request: Request) -> JSONResponse:
        from nbcellar.errors import NbcellarError
        from nbcellar.runs.jobs import cancel

        if not allow_cancel:
            return error("this dashboard is read-only: start it with 'nbcellar ui "
                         "--allow-cancel' to cancel jobs from it", 403)  # fmt: skip
        try:
            job = cancel(request.path_params["launch"], root)
        except NbcellarError as problem:
            return error(str(problem), 409)
        return JSONResponse({"id": job.id, "counts": job.counts()})

    def pipeline_state() -> dict[str, Any]:
        """The project's pipeline (the folder holding the store) and what a build would do
        with each task, explained without running anything."""
        from nbcellar.errors import NbcellarError
        from nbcellar.pipeline.build import build
        from nbcellar.pipeline.plot import dag_svg
        from nbcellar.pipeline.spec import load_pipeline

        project = root.parent
        try:
            pipeline = load_pipeline(project)
            explained = build(pipeline=project, explain=True, store=root)
        except NbcellarError as problem:
            return {"project": str(project), "error": str(problem), "tasks": [], "svg": ""}
        tasks = [
            {"task": name, "status": o.status, "why": o.why,
             "upstream": list(pipeline.needs(name))}
            for name, o in explained.outcomes.items()
        ]  # fmt: skip
        return {"project": str(project), "error": None, "tasks": tasks,
                "svg": dag_svg(pipeline, explained.outcomes)}  # fmt: skip

    async def api_pipeline(request: Request) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(pipeline_state))

    async def pipeline_page(request: Request) -> HTMLResponse:
        body = "<h1>Pipeline</h1><div id='pipeline'><p class='note'>explaining…</p></div>"
        return HTMLResponse(_page("Pipeline", "pipeline", body))

    async def api_cache(request: Request) -> JSONResponse:
        from nbcellar.cache.usage import cache_usage

        return JSONResponse(cache_usage(store_now()).to_json())

    async def cache_page(request: Request) -> HTMLResponse:
        body = "<h1>Cache</h1><div id='cache'><p class='note'>counting…</p></div>"
        return HTMLResponse(_page("Cache", "cache", body))

    async def compare_page(request: Request) -> HTMLResponse:
        wanted = [i for i in request.query_params.get("runs", "").split(",") if i]
        body = ("<h1>Compare</h1><p id='problem' class='problem' hidden></p>"
                "<div id='compare'></div>")  # fmt: skip
        return HTMLResponse(_page("Compare", "compare", body, {"runs": wanted}, charts=True))

    async def run_page(request: Request) -> Response:
        run_id = request.path_params["run"]
        record = record_of(run_id)
        if record is None:
            return HTMLResponse(_page("No such run", "missing",
                                      f"<p class='problem'>no run {escape(run_id)} in "
                                      f"{escape(str(root))}</p>"), 404)  # fmt: skip
        body = (
            f"<h1>run {escape(record.id)} <span class='status {escape(record.status)}'>"
            f"{escape(record.status)}</span></h1><div id='run'></div>"
            "<h2>Executed notebook</h2>"
            f"<iframe class='notebook' sandbox='' src='/runs/{escape(record.id)}/notebook.html'"
            " title='the executed notebook'></iframe>"
        )
        return HTMLResponse(_page(f"run {record.id}", "run", body, {"run": record.id}))

    async def notebook_html(request: Request) -> Response:
        run_id = request.path_params["run"]
        record = record_of(run_id)
        executed = root / "runs" / run_id / "executed.ipynb"
        if record is None or not executed.is_file():
            return PlainTextResponse("no executed notebook kept for this run", 404)
        from nbcellar.ui.render import notebook_as_html

        html = notebook_as_html(executed)
        # The notebook's own HTML and scripts run nowhere: a sandbox with nothing allowed.
        headers = {"Content-Security-Policy": "sandbox; default-src 'none'; "
                   "style-src 'unsafe-inline'; img-src data:"}  # fmt: skip
        return HTMLResponse(html, headers=headers)

    def run_file(request: Request, part: str) -> Response:
        """A file of the run's folder under ``part`` (an artifact, a kept source file)."""
        run_id = request.path_params["run"]
        if record_of(run_id) is None:
            return PlainTextResponse("no such run", 404)
        folder = (root / "runs" / run_id / part).resolve()
        wanted = (folder / request.path_params["path"]).resolve()
        if not wanted.is_relative_to(folder) or not wanted.is_file():
            return PlainTextResponse(f"no such file in the run's {part}", 404)
        return FileResponse(wanted, filename=wanted.name)

    async def artifact(request: Request) -> Response:
        return run_file(request, "artifacts")

    async def source_file(request: Request) -> Response:
        return run_file(request, "source")

    class TokenGate:
        """Every request carries the token: once as ``?token=`` (then a cookie), or as an
        ``Authorization: token ...`` header."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if token is None or scope["type"] != "http":
                await self.app(scope, receive, send)
                return
            request = Request(scope)
            header = request.headers.get("authorization", "").removeprefix("token ").strip()
            given = (request.query_params.get("token")
                     or request.cookies.get("nbcellar-token") or header)  # fmt: skip
            if not given or not hmac.compare_digest(given, token):
                response: Response = PlainTextResponse(
                    "this dashboard needs its token: open the address 'nbcellar ui' printed",
                    403,
                )
                await response(scope, receive, send)
                return

            async def with_cookie(message: Any) -> None:
                if message["type"] == "http.response.start" and "token" in request.query_params:
                    cookie = f"nbcellar-token={token}; HttpOnly; SameSite=Strict; Path=/"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            await self.app(scope, receive, with_cookie)

    routes = [
        Route("/", runs_page),
        Route("/runs/{run}", run_page),
        Route("/compare", compare_page),
        Route("/jobs", jobs_page),
        Route("/pipeline", pipeline_page),
        Route("/cache", cache_page),
        Route("/api/cache", api_cache),
        Route("/api/pipeline", api_pipeline),
        Route("/api/jobs", api_jobs),
        Route("/api/jobs/events", job_events),
        Route("/api/jobs/{launch}/cancel", cancel_job, methods=["POST"]),
        Route("/api/compare", api_compare),
        Route("/runs/{run}/notebook.html", notebook_html),
        Route("/runs/{run}/artifacts/{path:path}", artifact),
        Route("/runs/{run}/source/{path:path}", source_file),
        Route("/api/runs", api_runs),
        Route("/api/keys", api_keys),
        Route("/api/notebooks", api_notebooks),
        Route("/api/runs/{run}", api_run),
        Route("/favicon.ico", lambda _request: Response(status_code=204)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        opened["store"] = store = open_store(root)
        opened["catalog"] = catalog = Catalog(store)
        catalog.sync(every=0)  # (a first look at a large store takes seconds: before serving)
        try:
            yield
        finally:
            catalog.close()
            store.close()

    return Starlette(routes=routes, middleware=[Middleware(TokenGate)], lifespan=lifespan)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
