"""Run records: every ``nbcellar run`` kept in the store, with nothing to set up.

A record says which notebook ran with which parameters, how it went (queued, running, ok,
failed, cancelled; died: its nbcellar process stopped before it ended), when and how long, how
many cells ran or were restored, the first error, the kernel, the environment (Python,
platform, key package versions) and the source state (git commit, and whether the work tree
had changes, whose diff is kept beside the record). The executed notebook is copied to
``runs/<id>/executed.ipynb`` in the store. Records are JSON under the ``run`` kind in the
store's index; ids sort by time.
"""

from __future__ import annotations

import json
import platform
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from nbcellar.errors import NbcellarError

KIND = "run"
LOG_KIND = "run-log"
Status = Literal["queued", "running", "ok", "failed", "cancelled", "died"]
KEY_PACKAGES = ("nbcellar", "ipykernel", "numpy", "pandas", "scikit-learn", "torch", "matplotlib")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class RunRecord:
    id: str
    notebook: str
    params: Mapping[str, Any]
    status: Status
    created: float
    grid: str | None = None
    started: float | None = None
    ended: float | None = None
    seconds: float | None = None
    kernel: str | None = None
    cells: Mapping[str, int] = field(default_factory=dict)  # total, ran, restored, error
    error: str | None = None
    output: str | None = None  # where the executed notebook was written for the user
    environment: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)  # logged values (nbcellar.log)
    outputs: Mapping[str, Any] = field(default_factory=dict)  # tag -> what the cell showed
    artifacts: list[str] = field(default_factory=list)  # files in runs/<id>/artifacts/
    owner: str | None = None  # the nbcellar process running it (see nbcellar.owners)
    worker: str | None = None  # on a cluster: the worker running it (its last attempt)
    attempts: int = 0  # times it started: more than one means its worker was lost (retried)
    cell: int | None = None  # on a cluster: the code cell running (0-based), while it runs
    resumed_from: str | None = None  # the run whose checkpoints it went on from (--resume)
    smoke: bool = False  # a smoke test's run (nbcellar test, pytest --nbcellar, smoke=True)
    # The distributions its cells imported, {name: version}; None: not known (served from the
    # store without a kernel, or run without the cache).
    requirements: Mapping[str, str] | None = None
    # Per code cell: [its cache key (None: not keyed), ran / restored / error, seconds it
    # took, seconds its restore saved] (the dashboard's cache page counts hits from these).
    cache: list[list[Any]] = field(default_factory=list)

    @property
    def retried(self) -> bool:
        return self.attempts > 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def pinned(record: RunRecord) -> str:
    """The requirements of what ``record``'s cells imported, a ``name==version`` line each
    (a requirements.txt); one clear error when the run does not know them."""
    if record.requirements is None:
        why = ("every cell was restored from the store, no kernel started" if
               record.cells.get("ran", 0) == 0 and record.status == "ok" else
               "it ran without the cache, or before nbcellar recorded imports")  # fmt: skip
        raise NbcellarError(f"run {record.id} does not know what it imported ({why}); ask "
                            "the run that executed its cells (see 'nbcellar runs')")  # fmt: skip
    if not record.requirements:
        return "# the run imported nothing beyond Python's standard library\n"
    lines = []
    for name, version in record.requirements.items():
        number, _, local = version.partition(" @ ")
        lines.append(f"{name} @ {local}  # {number}, installed from this folder\n" if local
                     else f"{name}=={number}\n")  # fmt: skip
    return "".join(lines)


def environment() -> dict[str, Any]:
    """Python, platform and the versions of the key packages installed here (found again
    when what is installed changed: see nbcellar.kernel.requirements.installed)."""
    import copy

    from nbcellar.kernel.requirements import installed

    now = tuple(installed())
    if _ENVIRONMENT.get("installed") != now:
        _ENVIRONMENT.clear()
        _ENVIRONMENT.update(installed=now, environment=_environment())
    return copy.deepcopy(_ENVIRONMENT["environment"])


_ENVIRONMENT: dict[str, Any] = {}


def _environment() -> dict[str, Any]:
    import importlib.metadata

    packages: dict[str, str] = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": packages,
    }


def project_modules(notebook: Path, project: Path) -> dict[str, Path]:
    """The modules of the project (files under ``project`` or beside the notebook) that the
    notebook imports, and the ones they import in turn: module name -> source file."""
    from nbcellar.analysis import analyze_cell
    from nbcellar.cache.sources import project_sources
    from nbcellar.notebook import read_notebook

    try:
        nb = read_notebook(notebook)
    except Exception:  # the run itself reports an unreadable notebook
        return {}
    names = sorted({m for c in nb.code_cells for m in analyze_cell(c.source).imports})
    roots = list(dict.fromkeys([notebook.resolve().parent, project.resolve()]))
    return {module: Path(path) for module, path in project_sources(names, roots).items()}


SOURCES = ".sources"
"""The folder under ``runs/`` holding each distinct source file once, by content; the run
folders' copies are hard links to it (a run whose modules did not change adds no bytes)."""


def keep_source(runs: Path, data: bytes, copy: Path) -> None:
    """Put ``data`` at ``copy``: a hard link to its one copy in ``runs/.sources`` (a plain
    copy where the file system has no hard links)."""
    import os
    import tempfile

    import xxhash

    digest = xxhash.xxh3_128_hexdigest(data)
    kept = runs / SOURCES / digest[:2] / digest[2:]
    if not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=kept.parent, prefix=".")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, kept)
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(kept, copy)
    except OSError:
        copy.write_bytes(data)


def unused_sources(runs: Path) -> list[Path]:
    """The kept source files no run folder links to any more (its run was deleted)."""
    folder = runs / SOURCES
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("*/*") if p.is_file() and p.stat().st_nlink == 1]


def git_state(folder: Path) -> tuple[dict[str, Any], str]:
    """The commit of the repository holding ``folder`` and whether its work tree has changes,
    plus the uncommitted diff (empty outside a repository or without git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None}, ""
    diff = git("diff", "HEAD") or ""
    return {"git_commit": commit.strip(), "git_dirty": bool(diff.strip())}, diff


class RunBook:
    """The run records of one store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        # What the runs of one grid share, looked up once: the project's modules each notebook
        # imports, the git state of each folder, the environment.
        self._modules: dict[Path, dict[str, Path]] = {}
        self._git: dict[Path, tuple[dict[str, Any], str]] = {}
        self._environment: dict[str, Any] | None = None

    def folder(self, run_id: str) -> Path:
        return Path(self.store.root) / "runs" / run_id

    def save(self, record: RunRecord) -> RunRecord:
        payload = json.dumps(record.to_json(), default=repr, separators=(",", ":"))
        self.store.put_record(KIND, record.id, payload.encode("utf-8"))
        return record

    def create(
        self,
        notebook: Path,
        params: Mapping[str, Any],
        grid: str | None,
        kernel: str,
        owned: bool = True,
        resumed_from: str | None = None,
        smoke: bool = False,
    ) -> RunRecord:
        """A queued run; ``owned``: it lives and dies with this process (not so for runs on a
        cluster's scheduler, which go on when their client is gone)."""
        folder = notebook.resolve().parent
        if folder not in self._git:
            self._git[folder] = git_state(folder)
        state, diff = self._git[folder]
        source = dict(state)
        if self._environment is None:
            self._environment = environment()
        if notebook not in self._modules:
            self._modules[notebook] = project_modules(notebook, Path(self.store.root).parent)
        modules = self._modules[notebook]
        if modules:
            source["modules"] = {name: str(path) for name, path in modules.items()}
        from nbcellar.owners import me

        record = RunRecord(
            id=new_run_id(),
            owner=me() if owned else None,
            notebook=str(notebook.resolve()),
            params=dict(params),
            status="queued",
            created=time.time(),
            grid=grid,
            kernel=kernel,
            resumed_from=resumed_from,
            smoke=smoke,
            environment=self._environment,
            source=source,
        )
        folder = self.folder(record.id)
        if diff:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "uncommitted.diff").write_text(diff, encoding="utf-8")
        for name, path in modules.items():  # the code as it was when the run started
            copy = folder / "source" / (name.replace(".", "/") + path.suffix)
            if path.name == "__init__.py":
                copy = copy.with_suffix("") / "__init__.py"
            keep_source(Path(self.store.root) / "runs", path.read_bytes(), copy)
        return self.save(record)

    def start(self, record: RunRecord) -> RunRecord:
        return self.save(
            replace(record, status="running", started=time.time(), attempts=record.attempts + 1)
        )

    def claim(self, run_id: str, worker: str, retries: int) -> RunRecord | None:
        """A cluster worker starting the run ``run_id``: the record says running on
        ``worker``, one attempt more. An earlier attempt that started and never ended lost its
        worker; past ``retries`` such losses the run fails here instead. None: the run is not
        to start (cancelled, or ended already)."""
        record = self.get(run_id)
        if record is None or record.status not in ("queued", "running", "died"):
            return None
        if record.attempts > retries:
            lost = record.attempts
            self.save(replace(
                record, status="failed", ended=time.time(), worker=worker,
                error=f"its worker was lost {lost} time{'s' * (lost > 1)} (retries: {retries})",
            ))  # fmt: skip
            return None
        now = time.time()
        return self.save(replace(
            record, status="running", started=record.started or now, worker=worker,
            attempts=record.attempts + 1, cell=None, ended=None, error=None,
        ))  # fmt: skip

    def at_cell(self, record: RunRecord, index: int) -> RunRecord:
        """The cell a cluster run has reached (for ``nbcellar jobs``)."""
        return self.save(replace(record, cell=index))

    def finish(self, record: RunRecord, result: Any, output: Path) -> RunRecord:
        """Record how an execution went, and keep a copy of its executed notebook."""
        from nbcellar.notebook import write_notebook
        from nbcellar.runs.outputs import summary, tagged_outputs

        folder = self.folder(record.id)
        folder.mkdir(parents=True, exist_ok=True)
        write_notebook(result.notebook, folder / "executed.ipynb")
        artifacts = folder / "artifacts"
        files = sorted(
            path.relative_to(artifacts).as_posix()
            for path in artifacts.rglob("*")
            if path.is_file() and not path.name.endswith(".nbcellar-tmp")
        )
        statuses = [c.status for c in result.cells]
        failed = result.failed
        ended = time.time()
        return self.save(
            replace(
                record,
                values=last_values(self.store, record.id),
                outputs={t: summary(o) for t, o in tagged_outputs(result.notebook).items()},
                artifacts=files,
                status="failed" if failed is not None else "ok",
                ended=ended,
                seconds=round(result.seconds, 3),
                cells={
                    "total": len(statuses),
                    "ran": statuses.count("ran"),
                    "restored": statuses.count("restored"),
                    "error": statuses.count("error"),
                },
                error=None if failed is None else f"cell [{failed.index + 1}] {failed.error}",
                output=str(output.resolve()),
                cell=None,
                requirements=getattr(result, "requirements", None),
                cache=[
                    [c.key, c.status, round(c.seconds, 3), round(c.saved_seconds, 3)]
                    for c in result.cells
                ],
            )
        )

    def cancel(self, records: Iterable[RunRecord]) -> None:
        """Runs that had not finished when the user stopped everything."""
        for record in records:
            current = self.get(record.id)
            if current is not None and current.status in ("queued", "running"):
                self.save(replace(current, status="cancelled", ended=time.time()))

    def get(self, run_id: str) -> RunRecord | None:
        found = self.store.get_record(KIND, run_id)
        if found is None:
            return None
        return self._settled(RunRecord.from_json(json.loads(found.payload)))

    def all(self) -> list[RunRecord]:
        records = [
            self._settled(RunRecord.from_json(json.loads(r.payload)))
            for r in self.store.list_records(KIND)
        ]
        return sorted(records, key=lambda r: (r.created, r.id))

    def _settled(self, record: RunRecord) -> RunRecord:
        """A run still queued or running whose nbcellar process is gone (SIGKILL, a machine
        lost) is marked ``died``, once, by whoever reads it first."""
        from nbcellar.owners import alive, describe

        if record.status not in ("queued", "running") or not record.owner:
            return record
        if alive(record.owner):
            return record
        died = replace(
            record, status="died", ended=time.time(),
            error=f"its nbcellar process ({describe(record.owner)}) stopped before it ended",
        )  # fmt: skip
        self.save(died)
        return died


def save_log(store: Any, run_id: str, entries: list[tuple[str, Any]]) -> None:
    """What a run logged: JSON rows (see nbcellar.logbook.summarize), the values JSON cannot
    hold saved as one snapshot the rows point into."""
    from nbcellar.logbook import rest, summarize

    kept = rest(entries)
    snapshot = store.save_namespace({"logged": kept}, label=f"run {run_id} log") if kept else None
    rows = summarize(entries)
    for _, cell in rows:
        if "index" in cell and snapshot is not None:
            cell.update(snapshot=snapshot.id, name="logged")
    save_log_rows(store, run_id, rows, None if snapshot is None else snapshot.id)


def save_log_rows(store: Any, run_id: str, rows: list[Any], snapshot_id: str | None = None) -> None:
    """A run log: rows ``[name, {"value": v}]``, or ``[name, {"type": T, "snapshot": S,
    "name": N, "index": i}]`` for the i-th item of variable N of snapshot S (the record holds
    S: a shared store sends it along)."""
    payload = json.dumps({"rows": rows}).encode("utf-8")
    store.put_record(LOG_KIND, run_id, payload, snapshot_id)


def last_values(store: Any, run_id: str) -> dict[str, Any]:
    """The last value logged under each name: plain values as they are, numbers JSON cannot
    hold (numpy's) as floats, others as their type."""
    found = store.get_record(LOG_KIND, run_id)
    if found is None:
        return {}
    values: dict[str, Any] = {}
    for name, cell in json.loads(found.payload)["rows"]:
        shown = cell.get("shown")
        if "value" in cell:
            values[name] = cell["value"]
        elif isinstance(shown, dict) and isinstance(shown.get("number"), int | float):
            values[name] = shown["number"]
        else:
            values[name] = {"type": cell["type"]}
    return values


def shown_log(store: Any, run_id: str) -> list[tuple[str, Any]]:
    """Everything a run logged, in order, with the values kept in the store as they were shown
    when logged (see nbcellar.runs.outputs.from_display_form): nothing is unpickled, so reading
    a store another hand wrote runs none of its code."""
    from nbcellar.runs.outputs import Shown, from_display_form

    found = store.get_record(LOG_KIND, run_id)
    if found is None:
        return []
    entries: list[tuple[str, Any]] = []
    for name, cell in json.loads(found.payload)["rows"]:
        if "value" in cell:
            entries.append((name, cell["value"]))
        elif isinstance(cell.get("shown"), dict):
            entries.append((name, from_display_form(cell["shown"])))
        else:  # logged by a version that kept no display form
            entries.append((name, Shown(f"<{cell.get('type', 'value')}: load it in Python, "
                                        "with nbcellar.runs()>")))  # fmt: skip
    return entries


def load_log(store: Any, run_id: str) -> list[tuple[str, Any]]:
    """Everything a run logged, in order, with the values kept in the store loaded."""
    found = store.get_record(LOG_KIND, run_id)
    if found is None:
        return []
    rows = json.loads(found.payload)["rows"]
    lists: dict[tuple[str, str], list[Any]] = {}
    entries: list[tuple[str, Any]] = []
    for name, cell in rows:
        if "value" in cell:
            entries.append((name, cell["value"]))
            continue
        where = (cell["snapshot"], cell["name"])
        if where not in lists:
            lists[where] = list(store.load_namespace(where[0], [where[1]])[where[1]])
        entries.append((name, lists[where][cell["index"]]))
    return entries
