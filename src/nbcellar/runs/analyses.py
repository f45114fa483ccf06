"""Analyses over a run's checkpoints: ``nbcellar.runs()[RUN].analyze(evaluate)``.

``evaluate`` is called once per checkpoint with the checkpoint's variables it names as
parameters (``def evaluate(w): ...`` gets each checkpoint's ``w``), anything else it reads from
its own globals (validation data defined in the notebook); it returns a number or a dict of
numbers. The answers make a DataFrame indexed by step. Each answer is kept in the store under
(the checkpoint, the function's code, the values of the globals it reads), so analysing again
after more checkpoints computes only the new ones, and editing the function or its data
computes all again. With ``executor="dask"`` (or ``dask://HOST:PORT``) the checkpoints are
analysed side by side on a cluster (the function goes by value, with cloudpickle, as Dask
sends any function; the workers read the checkpoints from the store).
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError

KIND = "analysis"


def function_digest(fn: Callable[..., Any], seen: frozenset[int] = frozenset()) -> str:
    """The function's code and the values of the globals it reads (modules by name and
    version), as one digest: what an answer depends on besides the checkpoint. A function
    reached again (a recursive one, or one named like an attribute it reads: ``norm`` calling
    ``np.linalg.norm``) counts by its name alone the second time."""
    import cloudpickle
    import xxhash

    code = getattr(fn, "__code__", None)
    if code is None:
        raise NbcellarError(f"analyze: {fn!r} is not a Python function")
    hasher = xxhash.xxh3_128()
    try:
        hasher.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):  # (no source: its compiled code)
        _hash_code(hasher, code)
    names = sorted(_global_names(code))
    scope = getattr(fn, "__globals__", {})
    for name in names:
        if name not in scope:
            continue
        value = scope[name]
        hasher.update(name.encode())
        if isinstance(value, types.ModuleType):
            hasher.update(f"{value.__name__} {getattr(value, '__version__', '')}".encode())
        elif isinstance(value, types.FunctionType):
            if value is fn or id(value) in seen:
                continue
            hasher.update(function_digest(value, seen | {id(fn)}).encode())
        else:
            try:
                hasher.update(cloudpickle.dumps(value))
            except Exception:  # (not picklable: its text)
                hasher.update(repr(value).encode())
    return str(hasher.hexdigest())


def _hash_code(hasher: Any, code: types.CodeType) -> None:
    """Compiled code as its bytes, the names it uses and its constants (nested code walked,
    not shown by a repr holding its address)."""
    hasher.update(code.co_code)
    hasher.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(hasher, const)
        else:
            hasher.update(repr(const).encode())


def _global_names(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _global_names(const)
    return found


def _parameters(fn: Callable[..., Any]) -> list[str]:
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def answer_columns(answer: Any, name: str) -> dict[str, Any]:
    """An answer as columns: a dict's items, else one column named after the function."""
    if isinstance(answer, Mapping):
        return {str(k): _plain(v) for k, v in answer.items()}
    return {name: _plain(answer)}


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # (numpy numbers as numbers)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def evaluate_checkpoint(
    store_root: str, snapshot: str, fn: Callable[..., Any], wanted: Sequence[str]
) -> dict[str, Any]:
    """``fn`` called with the checkpoint's variables it names (where a worker runs it too)."""
    from nbcellar.store import open_store

    store = open_store(Path(store_root))
    try:
        restored = store.restore(snapshot, names=list(wanted))
    finally:
        store.close()
    if restored.missing:
        name, why = next(iter(restored.missing.items()))
        raise NbcellarError(f"analyze: the checkpoint's {name!r} cannot be loaded: {why}")
    return answer_columns(fn(**dict(restored.values)), getattr(fn, "__name__", "value"))


def analyze(
    run: str,
    store_root: Path,
    fn: Callable[..., Any],
    executor: str | None = None,
    jobs: int | None = None,
) -> Any:
    """The DataFrame of ``fn`` over the checkpoints of ``run`` (see the module)."""
    import pandas as pd

    from nbcellar.checkpointing import checkpoints_of, segments
    from nbcellar.store import open_store

    digest = function_digest(fn)
    wanted = _parameters(fn)
    store = open_store(store_root)
    try:
        found = [c for part in segments(store, run) for c in checkpoints_of(store, part)]
        if not found:
            raise NbcellarError(f"analyze: run {run} took no checkpoint (nbcellar.checkpoint)")
        strangers = [n for n in wanted if n not in found[-1].names]
        if strangers:
            kept = ", ".join(found[-1].names) or "nothing"
            raise NbcellarError(f"analyze: {fn.__name__}() takes {strangers[0]!r}, which the "
                                f"checkpoints do not keep (they keep: {kept})")  # fmt: skip
        keys = [f"{c.snapshot}/{digest}" for c in found]
        known = {r.key: json.loads(r.payload) for r in store.list_records(KIND)
                 if r.key in set(keys)}  # fmt: skip
    finally:
        store.close()
    todo = [(c, k) for c, k in zip(found, keys, strict=True) if k not in known]
    answers = _compute(store_root, [c.snapshot for c, _ in todo], fn, wanted, executor, jobs)
    store = open_store(store_root)
    try:
        for (_, key), answer in zip(todo, answers, strict=True):
            store.put_record(KIND, key, json.dumps(answer, default=repr).encode("utf-8"))
            known[key] = answer
    finally:
        store.close()
    rows = [{"step": c.step, **known[k]} for c, k in zip(found, keys, strict=True)]
    return pd.DataFrame(rows).set_index("step")


def _compute(
    store_root: Path,
    snapshots: list[str],
    fn: Callable[..., Any],
    wanted: Sequence[str],
    executor: str | None,
    jobs: int | None,
) -> list[dict[str, Any]]:
    if not snapshots:
        return []
    if executor in (None, "local"):
        return [evaluate_checkpoint(str(store_root), s, fn, wanted) for s in snapshots]
    if not str(executor).startswith("dask"):
        raise NbcellarError(f"analyze: executor {executor!r}: 'local', 'dask' or "
                            "dask://HOST:PORT")  # fmt: skip
    from nbcellar.runs.on_dask import DaskExecutor

    chosen = DaskExecutor.at(str(executor))
    client = chosen.connect(jobs or 2)
    try:
        futures = client.map(evaluate_checkpoint, [str(store_root)] * len(snapshots), snapshots,
                             [fn] * len(snapshots), [list(wanted)] * len(snapshots),
                             pure=False)  # fmt: skip
        return list(client.gather(futures))
    finally:
        chosen.release()
