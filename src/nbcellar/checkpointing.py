"""``nbcellar.checkpoint(step, **metrics)`` and ``nbcellar.resumable(steps)``: long loops that
survive the loss of their kernel.

A checkpoint is an incremental snapshot, in the store, of the variables the loop changes (the
names the running cell uses, or ``state=[...]``), with the global random generators' states
(``random``, numpy's, torch's when imported) and the step's metrics. The store is
content-addressed, so only what changed since the last checkpoint is written (a model whose
weights moved is; the dataset is not). The snapshot is written before its record: a kernel
killed in between leaves no checkpoint pointing at missing values.

Checkpoints belong to a *series*: during ``nbcellar run`` the run's record id (so a run started
again on another worker after its worker was lost, or resumed with ``--resume RUN``, finds the
checkpoints of the attempt before), in a notebook the kernel's session. ``resumable(steps)``
yields the steps of a loop; when the series has a checkpoint of that loop it first puts back
its variables and random generators and skips the steps done, so the loop ends with exactly
the state an uninterrupted loop ends with.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.kernel.protocol import RESUME_VARIABLE, RUN_VARIABLE

KIND = "checkpoint"
RNG = "nbcellar:rng"  # the snapshot variable holding the random generators' states
SHOWN = "nbcellar:shown"  # a metric JSON cannot hold, as it was shown (logbook.display_form)


class CheckpointError(NbcellarError):
    """A checkpoint that cannot be taken or put back."""


@dataclass(frozen=True)
class Checkpoint:
    series: str  # a run's id, or a notebook kernel's session
    loop: str  # which loop of the series (see resumable)
    position: int  # 0, 1, ...: how many steps of the loop came before
    step: Any
    time: float
    snapshot: str
    names: tuple[str, ...]
    metrics: Mapping[str, Any]

    @property
    def key(self) -> str:
        return record_key(self.series, self.loop, self.position)

    def to_json(self) -> dict[str, Any]:
        return {"series": self.series, "loop": self.loop, "position": self.position,
                "step": self.step, "time": self.time, "snapshot": self.snapshot,
                "names": list(self.names), "metrics": dict(self.metrics)}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        return cls(
            str(data["series"]), str(data["loop"]), int(data["position"]), data["step"],
            float(data["time"]), str(data["snapshot"]), tuple(data["names"]),
            dict(data.get("metrics") or {}),
        )  # fmt: skip


def metric_value(kept: Any) -> Any:
    """A checkpoint metric as kept, to show or compare (numpy numbers as numbers, figures as
    images: see nbcellar.runs.outputs.from_display_form); nothing is unpickled."""
    if isinstance(kept, dict) and set(kept) == {SHOWN}:
        from nbcellar.runs.outputs import from_display_form

        return from_display_form(kept[SHOWN])
    return kept


def record_key(series: str, loop: str, position: int) -> str:
    return f"{series}/{loop}/{position:010d}"


# -- where a checkpoint goes --------------------------------------------------------------


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _extension() -> Any:
    """This kernel's cell cache (``nbcellar run``, ``%load_ext nbcellar``): its store keeps
    the checkpoints."""
    from nbcellar.kernel.extension import ATTRIBUTE

    extension = getattr(_shell(), ATTRIBUTE, None)
    if extension is None:
        raise CheckpointError(
            "nbcellar.checkpoint() keeps checkpoints in the notebook's store, and this kernel "
            "has none: run the notebook with 'nbcellar run', or '%load_ext nbcellar' in it first"
        )
    return extension


def _store() -> Any:
    return _extension().cache.store


def series() -> str:
    """This kernel's series: the run being recorded, else the kernel's session."""
    return os.environ.get(RUN_VARIABLE) or str(_extension().session)


def _cell_names(shell: Any) -> list[str]:
    """The names the running cell uses (what a loop in it may change)."""
    history = shell.user_ns.get("In") or [""]
    try:
        tree = ast.parse(str(history[-1]))
    except SyntaxError:
        return []
    hidden = getattr(shell, "user_ns_hidden", None) or {}
    namespace = shell.user_ns
    return sorted(
        name
        for name in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        # (not what the kernel itself put there: get_ipython, In, exit...)
        if not (name in hidden and name in namespace and hidden[name] is namespace[name])
    )


_MAY_CHANGE: dict[tuple[int, str], frozenset[str] | None] = {}


def _may_change(shell: Any, values: Mapping[str, Any]) -> list[str] | None:
    """The names the running cell may bind or change in place (its analysis, as the cache
    reads it: what it assigns, mutates, or hands to a call not known to leave it unchanged),
    plus the generators' states. The others, still the objects the last checkpoint kept, are
    not pickled (nor hashed) again: 500 MB of data the loop only reads costs nothing per step.
    None (everything pickled) when the cell cannot be analysed."""
    from nbcellar.analysis import analyze_cell

    source = str((shell.user_ns.get("In") or [""])[-1])
    key = (int(getattr(shell, "execution_count", 0) or 0), source)
    if key not in _MAY_CHANGE:
        _MAY_CHANGE.clear()  # (one cell runs at a time)
        try:
            analysis = analyze_cell(source)
            engine = _extension().cache
            may = engine.watch.candidates(analysis, engine.functions, shell.user_ns)
            _MAY_CHANGE[key] = frozenset(analysis.writes) | frozenset(may)
        except Exception:  # (not analysable: every value is taken as changed)
            _MAY_CHANGE[key] = None
    found = _MAY_CHANGE[key]
    return None if found is None else sorted(found | {RNG} | (set(values) - set(shell.user_ns)))


def _kept(value: Any) -> bool:
    """Whether a variable is state a checkpoint keeps (not a module, function, method or
    class: the cell's code makes those again)."""
    import types

    made = (types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType, type)
    return not isinstance(value, made)


def generator_states() -> dict[str, Any]:
    """The global random generators' states: ``random``'s, numpy's and torch's (if imported)."""
    import random

    states: dict[str, Any] = {"random": random.getstate()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        states["numpy"] = numpy.random.get_state()
    torch = sys.modules.get("torch")
    if torch is not None:
        states["torch"] = torch.get_rng_state()
    return states


def set_generator_states(states: Mapping[str, Any]) -> None:
    import random

    if "random" in states:
        random.setstate(states["random"])
    if "numpy" in states:
        import numpy

        numpy.random.set_state(states["numpy"])
    torch = sys.modules.get("torch")
    if "torch" in states and torch is not None:  # (a checkpoint with it: imported before)
        torch.set_rng_state(states["torch"])


# -- taking one ----------------------------------------------------------------------------


class _Loops:
    """The resumable loops of this kernel: the one running and where it is."""

    def __init__(self) -> None:
        self.loop = "-"  # outside resumable(): one series of steps per kernel
        self.position: int | None = None
        self.counts: dict[str, int] = {}  # resumable loops started by the running cell
        self.cell: Any = None  # the execution count of that cell
        self.loose = 0  # checkpoints taken outside a resumable loop
        self.in_place = False  # a loop that changes its state in place: saved synchronously


LOOPS = _Loops()


def checkpoint(step: Any, state: Sequence[str] | None = None, **metrics: Any) -> Checkpoint:
    """Keep the loop's state at ``step`` (see the module): the variables the running cell
    uses, or those named in ``state``, the random generators, and the metrics."""
    from nbcellar.logbook import display_form, plain

    store = _store()
    shell = _shell()
    namespace = shell.user_ns
    names = list(state) if state is not None else _cell_names(shell)
    missing = [n for n in names if n not in namespace]
    if state is not None and missing:
        raise CheckpointError(f"nbcellar.checkpoint(state=...): no variable {missing[0]!r} "
                              "in the notebook")  # fmt: skip
    values = {n: namespace[n] for n in names if n in namespace and (state or _kept(namespace[n]))}
    values = {n: v for n, v in values.items() if not n.startswith("_") and n not in ("In", "Out")}
    values[RNG] = generator_states()
    position = LOOPS.position
    if position is None:
        position = LOOPS.loose
        LOOPS.loose += 1
    shown = {k: v if plain(v) else {SHOWN: display_form(v)} for k, v in metrics.items()}
    store.flush()  # (the checkpoint before: written, or dropped)
    background = not LOOPS.in_place
    ready = threading.Event()
    made: list[Checkpoint] = []

    def commit(records: Any, ok: bool) -> None:
        """The record after its values (the commit); a save dropped because a value changed
        in memory while it was written (an in-place update) makes the loop's next ones
        synchronous."""
        if not ok:
            LOOPS.in_place = True
            return
        ready.wait()
        payload = json.dumps(made[0].to_json(), default=repr).encode("utf-8")
        records.put_record(KIND, made[0].key, payload, made[0].snapshot)

    snapshot = store.save_namespace(values, label=f"checkpoint {series()} {step!r}",
                                    changed=_may_change(shell, values),
                                    background=background,
                                    then=commit if background else None)  # fmt: skip
    taken = Checkpoint(series(), LOOPS.loop, position, step if plain(step) else repr(step),
                       time.time(), snapshot.id, tuple(sorted(set(values) - {RNG})),
                       shown)  # fmt: skip
    made.append(taken)
    ready.set()
    if not background:
        payload = json.dumps(taken.to_json(), default=repr).encode("utf-8")
        store.put_record(KIND, taken.key, payload, snapshot.id)  # (after its values)
    return taken


# -- resuming ------------------------------------------------------------------------------


def checkpoints_of(store: Any, series_id: str, loop: str | None = None) -> list[Checkpoint]:
    """The series' checkpoints (of one loop), in order."""
    prefix = f"{series_id}/" if loop is None else f"{series_id}/{loop}/"
    found = [Checkpoint.from_json(json.loads(r.payload)) for r in store.list_records(KIND)
             if r.key.startswith(prefix)]  # fmt: skip
    return sorted(found, key=lambda c: (c.loop, c.position))


def _loop_id(shell: Any) -> str:
    """Which loop of the series this is: the running cell's code and how many resumable loops
    it started before (the same in every attempt of a run)."""
    import xxhash

    source = str((shell.user_ns.get("In") or [""])[-1])
    base = xxhash.xxh3_64_hexdigest(source.encode())[:12]
    running = getattr(shell, "execution_count", 0)
    if LOOPS.cell != running:  # (counted again in each cell run: running it again resumes)
        LOOPS.cell, LOOPS.counts = running, {}
    count = LOOPS.counts.get(base, 0)
    LOOPS.counts[base] = count + 1
    return f"{base}.{count}"


def resumable(steps: Iterable[Any]) -> Iterator[Any]:
    """The steps of a loop; on a run started again (its worker lost, ``--resume``), the last
    checkpoint this loop took is put back first and the steps done are skipped."""
    shell = _shell()
    store = _store()
    store.flush()  # (this kernel's checkpoints still being written)
    loop = _loop_id(shell)
    last = None
    resumed = os.environ.get(RESUME_VARIABLE)
    sources = [series(), *(reversed(segments(store, resumed)) if resumed else ())]
    for source in sources:  # (its own first: an attempt before it in this run)
        found = checkpoints_of(store, source, loop)
        if found:
            last = found[-1]
            break
    start = 0
    if last is not None:
        restored = store.restore(last.snapshot, namespace=shell.user_ns)
        if restored.missing:
            name, why = next(iter(restored.missing.items()))
            raise CheckpointError(f"the checkpoint at step {last.step!r} cannot be put back: "
                                  f"{name}: {why}")  # fmt: skip
        values = dict(restored.values)
        set_generator_states(values.pop(RNG, {}))
        shell.user_ns.update(values)
        start = last.position + 1
    previous = (LOOPS.loop, LOOPS.position)
    LOOPS.loop = loop
    try:
        for position, step in enumerate(steps):
            if position < start:
                continue
            LOOPS.position = position
            yield step
    finally:
        LOOPS.loop, LOOPS.position = previous


def segments(store: Any, run: str) -> list[str]:
    """The series a run's checkpoints are in, first to last: the runs it was resumed from
    (``--resume``), then its own."""
    from nbcellar.runs.records import RunBook

    book = RunBook(store)
    chain = [run]
    while len(chain) < 100:
        record = book.get(chain[0])
        if record is None or not record.resumed_from or record.resumed_from in chain:
            break
        chain.insert(0, str(record.resumed_from))
    return chain


def checkpoints(run: str | None = None, store: Any = None) -> Any:
    """The checkpoints of ``run`` (default: this kernel's series), those of the runs it was
    resumed from first, as a DataFrame: run, step, time, then one column per metric."""
    import pandas as pd

    if store is None:
        store = _store()
        store.flush()
    chain = segments(store, run or series())
    rows = [{"run": c.series, "step": c.step, "time": c.time,
             **{k: metric_value(v) for k, v in c.metrics.items()}}
            for part in chain for c in checkpoints_of(store, part)]  # fmt: skip
    return pd.DataFrame(rows)


def resume_point(store: Any, run: str, notebook: Any) -> Any:
    """The record of the run ``--resume RUN`` goes on from (or the one line saying why not:
    unknown, another notebook's, no checkpoint to go on from)."""
    from pathlib import Path

    from nbcellar.runs.records import RunBook

    book = RunBook(store)
    record = book.get(run)
    if record is None:
        starting = [r for r in book.all() if r.id.startswith(run)]
        if len(starting) != 1:
            raise CheckpointError(f"--resume {run}: no such run in {store.root} (see "
                                  "'nbcellar runs')")  # fmt: skip
        record = starting[0]
    if Path(record.notebook) != Path(notebook).resolve():
        raise CheckpointError(f"--resume {record.id}: that run is of {record.notebook}, not "
                              f"{notebook}")  # fmt: skip
    if not any(checkpoints_of(store, part) for part in segments(store, record.id)):
        raise CheckpointError(f"--resume {record.id}: that run took no checkpoint "
                              "(nbcellar.checkpoint) to go on from; run the notebook afresh "
                              "instead")  # fmt: skip
    return record


__all__ = ["Checkpoint", "CheckpointError", "checkpoint", "checkpoints", "resumable"]
