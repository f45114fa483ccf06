"""The dashboard's catalog of runs: the store's run records laid out for queries.

The store keeps each run as one JSON record; a table of 10,000 runs with 40 values each,
filtered and sorted by any of them, needs them as rows. The catalog is a SQLite file of its own
beside the store (``<store>/ui/catalog.sqlite``, or under the user's cache folder when the store
cannot be written), derived from the records and brought up to date before a query: it asks the
store when each run record was last written (an index read, no payload), and parses only the
records that changed since. Nothing in it is the only copy of anything: deleted, it is made
again.

Tables: ``runs`` (one row per run: the columns every run has), ``vals`` (one row per run and
name: a parameter, or else a logged value or tagged output, with its number or its text),
``keys`` (each name with how many runs have it, as a parameter and as a number: the column
chooser reads it, not 400,000 rows).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbcellar.runs.where import Condition

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, written REAL NOT NULL, created REAL NOT NULL, notebook TEXT NOT NULL,
    status TEXT NOT NULL, started REAL, ended REAL, seconds REAL, grid TEXT, owner TEXT,
    worker TEXT, attempts INTEGER, ran INTEGER, restored INTEGER, total INTEGER, error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created, id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, created);
CREATE TABLE IF NOT EXISTS vals (
    run TEXT NOT NULL, key TEXT NOT NULL, param INTEGER NOT NULL, num REAL, txt TEXT,
    shown TEXT, PRIMARY KEY (run, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (
    key TEXT PRIMARY KEY, runs INTEGER NOT NULL, params INTEGER NOT NULL,
    numbers INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
VALUE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS vals_by_number ON vals(key, num)",
    "CREATE INDEX IF NOT EXISTS vals_by_text ON vals(key, txt)",
)
VERSION = "1"
COLUMNS = ("id", "notebook", "status", "created", "started", "ended", "seconds", "grid")
"""The columns every run has, by which the table also sorts."""
LIVE = ("queued", "running")


def catalog_path(store_root: Path) -> Path:
    """Where the catalog of the store at ``store_root`` lives."""
    import os

    own = store_root / "ui"
    if os.access(store_root, os.W_OK):
        return own / "catalog.sqlite"
    from nbcellar.store.location import cache_folder

    digest = hashlib.sha256(str(store_root.resolve()).encode()).hexdigest()[:16]
    return cache_folder() / "catalogs" / f"{digest}.sqlite"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _cell(
    key: str, value: Any, param: bool
) -> tuple[str, int, float | None, str | None, str | None]:
    """A ``vals`` row's columns after the run's id: the number or text a condition compares,
    and for anything else (a dict, a list, an image) what the table shows."""
    kind = type(value)
    if (kind is float and math.isfinite(value)) or kind is int:  # (most of them: at once)
        return (key, int(param), float(value), None, None)
    if kind is str:
        return (key, int(param), None, value, None)
    number = _number(value)
    text = value if isinstance(value, str) else None
    shown = None
    if isinstance(value, bool):
        shown = str(value)
    elif number is None and text is None and value is not None:
        if isinstance(value, Mapping) and set(value) == {"type"}:
            shown = f"<{value['type']}>"
        else:
            shown = json.dumps(value, default=repr)[:200]
    return (key, int(param), number, text, shown)


@dataclass(frozen=True)
class Page:
    total: int
    rows: list[dict[str, Any]]
    columns: list[str]
    differ: list[str]


class Catalog:
    """The catalog of one store, shared by the server's threads (one connection, a lock)."""

    def __init__(self, store: Any, path: Path | None = None) -> None:
        self.store = store
        self.path = path or catalog_path(Path(store.root))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")  # (derived data: made again if lost)
        self.lock = threading.RLock()
        found = self._meta("version")
        if found not in (None, VERSION):
            for table in ("runs", "vals", "keys", "meta"):  # (made anew below)
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
        self.db.executescript(SCHEMA)
        for statement in VALUE_INDEXES:
            self.db.execute(statement)
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
        self._checked = 0.0

    def close(self) -> None:
        self.db.close()

    def _meta(self, key: str) -> str | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else str(row[0])

    # -- bringing it up to date ------------------------------------------------------------

    def sync(self, every: float = 0.5) -> int:
        """Read the run records written since the last look (at most once every ``every``
        seconds); the number of runs that changed."""
        from nbcellar.runs.records import KIND, RunRecord

        with self.lock:
            if time.monotonic() - self._checked < every:
                return 0
            times = self.store.record_times(KIND)
            known = dict(self.db.execute("SELECT id, written FROM runs"))
            changed = [key for key, when in times.items() if known.get(key) != when]
            gone = [key for key in known if key not in times]
            records = []
            for found in self.store.get_records(KIND, changed):
                try:
                    data = json.loads(found.payload)
                    records.append((found.created, RunRecord.from_json(data)))
                except (ValueError, TypeError):
                    continue  # (a record this version cannot read is left out, not fatal)
            live = [r[0] for r in self.db.execute(
                "SELECT id FROM runs WHERE status IN ('queued', 'running') AND owner IS NOT NULL"
            )]  # fmt: skip
            self._write(records, gone, live)
            self._checked = time.monotonic()
            return len(records) + len(gone)

    def _write(self, records: list[tuple[float, Any]], gone: list[str], live: list[str]) -> None:
        from nbcellar.owners import alive

        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            ids = [r.id for _, r in records] + gone
            empty = db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None
            if not empty:  # (a first look has nothing to take away)
                self._count(ids, -1)
            for start in range(0, 0 if empty else len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM vals WHERE run IN ({marks})", chunk)
                db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
            rows, cells = [], []
            for written, record in records:
                status = record.status
                if status in LIVE and record.owner and not alive(record.owner):
                    status = "died"  # (as RunBook reads it; the store is not written here)
                counts = record.cells or {}
                rows.append((
                    record.id, written, record.created, record.notebook, status,
                    record.started, record.ended, record.seconds, record.grid, record.owner,
                    record.worker, record.attempts, counts.get("ran"), counts.get("restored"),
                    counts.get("total"), record.error,
                ))  # fmt: skip
                for key, value in record.params.items():
                    cells.append((record.id, *_cell(key, value, True)))
                shown = dict(record.outputs) | dict(record.values)
                for key, value in shown.items():
                    if key not in record.params:
                        cells.append((record.id, *_cell(key, value, False)))
            bulk = len(cells) > 20_000  # (indexes made after the rows: several times faster)
            if bulk:
                db.execute("DROP INDEX IF EXISTS vals_by_number")
                db.execute("DROP INDEX IF EXISTS vals_by_text")
            db.executemany(f"INSERT INTO runs VALUES ({','.join('?' * 16)})", rows)
            db.executemany("INSERT INTO vals VALUES (?, ?, ?, ?, ?, ?)", cells)
            if bulk:
                for statement in VALUE_INDEXES:
                    db.execute(statement)
            self._add_keys(cells)
            for run in live:  # a live run's process that stopped since: it died
                row = db.execute("SELECT owner FROM runs WHERE id = ? AND status IN "
                                 "('queued', 'running')", (run,)).fetchone()  # fmt: skip
                if row is not None and not alive(row[0]):
                    db.execute("UPDATE runs SET status = 'died' WHERE id = ?", (run,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _count(self, ids: Sequence[str], sign: int) -> None:
        """Take away (``sign`` -1) or add these runs' names, as the catalog holds them, from
        or to the key catalog."""
        if not ids:
            return
        found: list[tuple[str, int, bool]] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found += self.db.execute(
                f"SELECT key, param, num IS NOT NULL FROM vals WHERE run IN ({marks})", chunk
            ).fetchall()
        self._tally(found, sign)

    def _add_keys(self, cells: Sequence[tuple[Any, ...]]) -> None:
        """Add the names of the rows just written (``vals`` rows) to the key catalog."""
        self._tally([(c[1], c[2], c[3] is not None) for c in cells], +1)

    def _tally(self, found: Sequence[tuple[str, int, bool]], sign: int) -> None:
        totals: dict[str, list[int]] = {}
        for key, params, numbers in found:
            total = totals.setdefault(key, [0, 0, 0])
            total[0] += 1
            total[1] += params
            total[2] += numbers
        self.db.executemany(
            "INSERT INTO keys VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "runs = runs + excluded.runs, params = params + excluded.params, "
            "numbers = numbers + excluded.numbers",
            [(k, sign * t[0], sign * t[1], sign * t[2]) for k, t in totals.items()],
        )
        self.db.execute("DELETE FROM keys WHERE runs <= 0")

    # -- reading ---------------------------------------------------------------------------

    def ids_named(self, part: str) -> list[str]:
        """The ids of the runs starting or ending with ``part`` (at most two: one is an answer,
        two say it names several), as the commands read a shortened id."""
        self.sync()
        pattern = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.lock:
            rows = self.db.execute(
                "SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' LIMIT 2",
                (f"{pattern}%", f"%{pattern}"),
            ).fetchall()
        return [r[0] for r in rows]

    def keys(self) -> list[dict[str, Any]]:
        """Every name: how many runs have it, as a parameter, as a number (most common first)."""
        self.sync()
        with self.lock:
            rows = self.db.execute(
                "SELECT key, runs, params, numbers FROM keys "
                "ORDER BY params > 0 DESC, runs DESC, key"
            ).fetchall()
        return [{"key": k, "runs": n, "params": p, "numbers": x} for k, n, p, x in rows]

    def notebooks(self) -> list[dict[str, Any]]:
        self.sync()
        with self.lock:
            rows = self.db.execute(
                "SELECT notebook, count(*) FROM runs GROUP BY notebook ORDER BY notebook"
            ).fetchall()
        return [{"notebook": n, "runs": c} for n, c in rows]

    def _where(
        self, conditions: Sequence[Condition], status: str | None, notebook: str | None
    ) -> tuple[str, list[Any], list[Condition]]:
        """The SQL of the filters, its arguments, and the conditions SQL cannot say (a list
        or None asked for: tested in Python on what SQL let through)."""
        clauses: list[str] = []
        args: list[Any] = []
        rest: list[Condition] = []
        if status:
            clauses.append("r.status = ?")
            args.append(status)
        if notebook:
            clauses.append("r.notebook = ?")
            args.append(notebook)
        for condition in conditions:
            number = _number(condition.wanted)
            if number is not None:
                column = "v.num"
                wanted: Any = number
            elif isinstance(condition.wanted, str):
                column, wanted = "v.txt", condition.wanted
            else:
                rest.append(condition)
                continue
            if condition.op == "!=":
                test = f"({column} IS NULL OR {column} != ?)"
            else:
                test = f"{column} {'=' if condition.op == '=' else condition.op} ?"
            clauses.append(
                f"EXISTS (SELECT 1 FROM vals v WHERE v.run = r.id AND v.key = ? AND {test})"
            )
            args += [condition.name, wanted]
        return (" AND ".join(clauses) or "1"), args, rest

    def query(
        self,
        conditions: Sequence[Condition] = (),
        *,
        status: str | None = None,
        notebook: str | None = None,
        sort: str = "created",
        descending: bool = True,
        offset: int = 0,
        limit: int = 50,
        columns: Sequence[str] | None = None,
    ) -> Page:
        """One page of the runs that match, sorted by a column or a name, with the values
        of ``columns`` (default: the parameters, then the most common logged names, 12 in
        all), and the parameters whose values differ among all the runs that match."""
        self.sync()
        with self.lock:
            return self._query(conditions, status, notebook, sort, descending, offset, limit,
                               columns)  # fmt: skip

    def _query(
        self,
        conditions: Sequence[Condition],
        status: str | None,
        notebook: str | None,
        sort: str,
        descending: bool,
        offset: int,
        limit: int,
        columns: Sequence[str] | None,
    ) -> Page:
        where, args, rest = self._where(conditions, status, notebook)
        order = "DESC" if descending else "ASC"
        if sort in COLUMNS:
            ordering = f"r.{sort} {order}, r.id {order}"
            join, join_args = "", []
        else:
            join = "LEFT JOIN vals s ON s.run = r.id AND s.key = ?"
            join_args = [sort]
            ordering = (f"(s.num IS NULL AND s.txt IS NULL), s.num {order}, s.txt {order}, "
                        f"r.id {order}")  # fmt: skip
        base = f"FROM runs r {join} WHERE {where}"
        if rest:  # some conditions in Python: the ids that pass all, then the page of them
            ids = [row[0] for row in self.db.execute(
                f"SELECT r.id {base} ORDER BY {ordering}", [*join_args, *args]
            )]  # fmt: skip
            kept = [i for i in ids if self._holds(i, rest)]
            total = len(kept)
            page = kept[offset : offset + limit]
            matching = ("SELECT value FROM json_each(?)", [json.dumps(kept)])
        else:
            total = self.db.execute(f"SELECT count(*) FROM runs r WHERE {where}", args).fetchone()[
                0
            ]
            page = [row[0] for row in self.db.execute(
                f"SELECT r.id {base} ORDER BY {ordering} LIMIT ? OFFSET ?",
                [*join_args, *args, limit, offset],
            )]  # fmt: skip
            matching = (f"SELECT r.id FROM runs r WHERE {where}", args)
        differ = [row[0] for row in self.db.execute(
            f"SELECT v.key FROM vals v WHERE v.param = 1 AND v.run IN ({matching[0]}) "
            "GROUP BY v.key HAVING count(*) < ? OR "
            "count(DISTINCT coalesce(v.num, v.txt, v.shown)) > 1 ORDER BY v.key",
            [*matching[1], total],
        )]  # fmt: skip
        if columns is None:
            columns = self._default_columns()
        return Page(total, self._rows(page, columns), list(columns), differ)

    def _default_columns(self, most: int = 12) -> list[str]:
        rows = self.db.execute(
            "SELECT key FROM keys ORDER BY params > 0 DESC, runs DESC, key LIMIT ?", (most,)
        )
        return [r[0] for r in rows]

    def _holds(self, run: str, conditions: Sequence[Condition]) -> bool:
        params: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for key, param, num, txt, shown in self.db.execute(
            "SELECT key, param, num, txt, shown FROM vals WHERE run = ?", (run,)
        ):
            value = txt if txt is not None else num
            if value is None and shown is not None:
                try:
                    value = json.loads(shown)
                except ValueError:
                    value = shown
            (params if param else values)[key] = value
        return all(c.holds(params, values) for c in conditions)

    def _rows(self, ids: Sequence[str], columns: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        found: dict[str, dict[str, Any]] = {}
        names = ("id", "notebook", "status", "created", "started", "ended", "seconds", "grid",
                 "worker", "attempts", "ran", "restored", "total", "error")  # fmt: skip
        for row in self.db.execute(f"SELECT {', '.join(names)} FROM runs WHERE id IN ({marks})",
                                   list(ids)):  # fmt: skip
            item = dict(zip(names, row, strict=True))
            item["params"], item["values"] = {}, {}
            found[item["id"]] = item
        if columns:
            keys = ",".join("?" * len(columns))
            for run, key, param, num, txt, shown in self.db.execute(
                f"SELECT run, key, param, num, txt, shown FROM vals WHERE run IN ({marks}) "
                f"AND key IN ({keys})",
                [*ids, *columns],
            ):
                value = shown if shown is not None else (txt if txt is not None else num)
                found[run]["params" if param else "values"][key] = value
        return [found[i] for i in ids if i in found]
