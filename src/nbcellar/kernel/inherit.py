"""What ``nbcellar.inherit`` does inside kernels (see :mod:`nbcellar.runs.inherit`).

In the base kernel, :func:`base_snapshot` (asked for through jupyter_client; nbcellar need not
be loaded there) saves the namespace into the store and says which values could not be pickled
and which cell made each. In the child, :func:`replay` rebuilds those values by running their
cells again, and :func:`note_versions` tells a caching kernel that the calling cell must always
run and how the names it brought in are versioned.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from nbcellar.analysis.names import FunctionInfo

# -- in the base kernel ----------------------------------------------------------------------

_STORES: dict[str, Any] = {}


def current_shell() -> Any:
    """The running IPython shell, or None (without importing IPython where it is not)."""
    module = sys.modules.get("IPython")
    return None if module is None else module.get_ipython()


def copyable(name: str, names: list[str] | None, exclude: list[str]) -> bool:
    from nbcellar.cache.engine import is_ipython_name

    if is_ipython_name(name) or name in exclude:
        return False
    return name in names if names is not None else not name.startswith("_")


def producers(history: Iterable[str], wanted: Iterable[str]) -> dict[str, str]:
    """For each wanted name, the source of the last cell in ``history`` that assigned it."""
    from nbcellar.analysis import analyze_cell

    cells = [c for c in history if c.strip()]
    found: dict[str, str] = {}
    for name in wanted:
        for source in reversed(cells):
            if name in analyze_cell(source).writes:
                found[name] = source
                break
    return found


def _caching_store(shell: Any, store_root: str) -> Any:
    """The store of the kernel's own ``%load_ext nbcellar`` when it is the one asked for, with
    its background writes finished: what its cells stored is then only hashed, not written."""
    extension = getattr(shell, "nbcellar", None)
    store = getattr(getattr(extension, "cache", None), "store", None)
    if store is None or os.path.realpath(store.root) != os.path.realpath(store_root):
        return None
    store.flush()
    return store


def base_snapshot(store_root: str, names: list[str] | None, exclude: list[str]) -> str:
    """Run in the base kernel (asked through jupyter_client): save its namespace into the store
    at ``store_root``; return JSON with the snapshot id, the names that could not be saved
    (and why), and the source of the cell that produced each of those."""
    from IPython import get_ipython

    from nbcellar.store import open_store

    shell = get_ipython()
    namespace = shell.user_ns
    hidden = shell.user_ns_hidden  # what IPython put there itself (open, exit, In, ...)
    chosen = {
        k: v
        for k, v in namespace.items()
        if copyable(k, names, exclude) and not (k in hidden and hidden[k] is v)
    }
    store = _caching_store(shell, store_root) or _STORES.get(store_root)
    if store is None:  # kept, so the next snapshot re-pickles only what was rebound
        store = _STORES[store_root] = open_store(store_root)
    snapshot = store.save_namespace(chosen, label=f"inherited from process {os.getpid()}")
    unserializable = dict(snapshot.unserializable)
    history = [str(c) for c in namespace.get("In", [])]
    return json.dumps(
        {
            "snapshot": snapshot.id,
            "unserializable": unserializable,
            "producers": producers(history, unserializable),
            "missing": sorted(set(names or ()) - set(chosen)),
        }
    )


def replay(
    producers: Mapping[str, str], namespace: MutableMapping[str, Any], keep: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """Rebuild unserializable values by running the cells that produced them, then put back
    the inherited values those cells also rebound. Returns (rebuilt, failed) by name."""
    rebuilt: dict[str, str] = {}
    failed: dict[str, str] = {}
    done: dict[str, str] = {}
    for name, source in producers.items():
        if source in done:
            rebuilt[name] = done[source]
            continue
        code = source
        try:
            shell = current_shell()
            if shell is not None:
                code = shell.transform_cell(source)
            exec(compile(code, "<inherited cell>", "exec"), namespace)  # type: ignore[arg-type]
        except Exception as exc:
            failed[name] = f"replaying the cell that made it raised {type(exc).__name__}: {exc}"
            continue
        first_line = source.strip().splitlines()[0][:60]
        done[source] = rebuilt[name] = f"rebuilt by running its cell again ({first_line})"
    namespace.update(keep)  # the base's values, not the replay's, for everything else
    return rebuilt, failed


def snapshot_versions(snapshot: Any) -> dict[str, str]:
    """The content version of each variable a snapshot stored alone (its fingerprint)."""
    groups: dict[str, int] = {}
    for variable in snapshot.variables:
        if variable.value_key:
            groups[variable.value_key] = groups.get(variable.value_key, 0) + 1
    return {
        v.name: v.value_key
        for v in snapshot.variables
        if v.value_key and groups[v.value_key] == 1 and not v.refers_to
    }


def function_info(name: str, value: Any) -> FunctionInfo | None:
    """The globals a function (or the methods of a class) reads and writes when called, from
    its byte code: what the cache needs to key the cells that call an inherited function."""
    import dis
    import types

    codes: list[types.CodeType] = []
    if isinstance(value, types.FunctionType):
        codes.append(value.__code__)
    elif isinstance(value, type):
        codes += [v.__code__ for v in vars(value).values() if isinstance(v, types.FunctionType)]
    else:
        return None
    reads: set[str] = set()
    writes: set[str] = set()
    while codes:
        code = codes.pop()
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                reads.add(str(instruction.argval))
            elif instruction.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                writes.add(str(instruction.argval))
    return FunctionInfo(name, frozenset(reads), frozenset(writes))


def note_versions(
    namespace: Mapping[str, Any], versions: Mapping[str, str], loaded: Iterable[str]
) -> None:
    """In a caching kernel: the running cell always runs (the base may change), what it
    brought in is versioned by its stored content (``versions``: no second hashing), and the
    functions it brought in are known by the globals they read."""
    shell = current_shell()
    extension = getattr(shell, "nbcellar", None) if shell is not None else None
    if extension is None or not hasattr(extension, "volatile"):
        return
    known = {n: (id(namespace[n]), v) for n, v in versions.items() if n in namespace}
    functions = {
        name: info
        for name in loaded
        if name in namespace and (info := function_info(name, namespace[name])) is not None
    }
    extension.volatile("inherits another notebook's state", known, functions)
