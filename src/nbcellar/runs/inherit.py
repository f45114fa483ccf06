"""``nbcellar.inherit("base.ipynb")``: start a notebook from another notebook's state.

(What runs inside the kernels is in :mod:`nbcellar.kernel.inherit`.)

Where the state comes from, in order:

1. the base notebook's kernel, if it is open in a running Jupyter server (see
   :mod:`nbcellar.kernel.servers`): the kernel is asked, through jupyter_client, to save its
   namespace into the store (nbcellar need not be loaded there; only values not already stored
   are written), and the caller loads that snapshot;
2. else the cached state of the base's last ``nbcellar run``, if its code is unchanged: each
   cell's stored effect, loaded in order, no kernel started;
3. else the base is run headless with caching (fast when most cells are cached) and its final
   namespace saved; a base never executed at all is an error naming the command to run.

Values come back memory-mapped copy-on-write from the store: a change in the child (rebinding,
or mutating an array, list or frame in place) never reaches the base or the store, and a later
change in the base never reaches a child that already inherited. Values that cannot be pickled
(a database connection) are rebuilt by replaying the cell that produced them, once the other
values are in place; what cannot be rebuilt is listed. IPython's own variables (``In``, ``Out``,
``_``, ``_i1``, ``exit``, ``get_ipython``…) are never copied.

In a kernel with ``%load_ext nbcellar``, the cell calling ``inherit`` always runs (the base may
have changed), and the names it brings in are versioned by their stored content: the cells
below are restored from the cache as long as the base's values stay the same.
"""

from __future__ import annotations

import ast
import json
import queue
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError
from nbcellar.kernel.inherit import (
    copyable,
    current_shell,
    note_versions,
    replay,
    snapshot_versions,
)
from nbcellar.store.functions import bind_functions


class InheritError(NbcellarError):
    """The base notebook's state cannot be had."""


@dataclass
class Inherited:
    """What :func:`inherit` brought in, and from where."""

    notebook: Path
    source: str  # where the state came from, in words
    names: list[str]
    snapshot: str | None
    seconds: float
    rebuilt: dict[str, str] = field(default_factory=dict)  # name -> how it was rebuilt
    missing: dict[str, str] = field(default_factory=dict)  # name -> why it is not here

    def __repr__(self) -> str:
        shown = ", ".join(self.names[:12]) + (" …" if len(self.names) > 12 else "")
        lines = [
            f"inherited {len(self.names)} names from {self.notebook.name} ({self.source}) "
            f"in {self.seconds:.2f} s: {shown}"
        ]
        lines += [f"  {name}: {how}" for name, how in self.rebuilt.items()]
        lines += [f"  {name} not inherited: {why}" for name, why in self.missing.items()]
        return "\n".join(lines)


# -- in the child --------------------------------------------------------------------------


def _target_namespace(depth: int) -> MutableMapping[str, Any]:
    shell = current_shell()
    if shell is not None:
        return shell.user_ns  # type: ignore[no-any-return]
    return sys._getframe(depth).f_globals


def _from_running(
    running: Any, store: Any, names: list[str] | None, exclude: list[str], timeout: float
) -> dict[str, Any]:
    """Ask the base kernel for a snapshot; its JSON answer (see :func:`base_snapshot`)."""
    from jupyter_client.blocking.client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(running.connection_file))
    client.load_connection_file()
    client.start_channels()
    expression = (
        "__import__('nbcellar.kernel.inherit', fromlist=['base_snapshot']).base_snapshot("
        f"{str(store.root)!r}, {names!r}, {exclude!r})"
    )
    try:
        msg_id = client.execute(
            "", silent=True, store_history=False, user_expressions={"nbcellar": expression}
        )
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise InheritError(
                    f"the kernel of {running.path.name} stayed busy for more than {timeout:g} s "
                    "(a cell is running there); try again when it is idle, or pass a longer "
                    "timeout="
                )
            try:
                reply = client.get_shell_msg(timeout=min(left, 1.0))
            except queue.Empty:  # nothing yet
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    finally:
        client.stop_channels()
    content = reply["content"]
    answer = content.get("user_expressions", {}).get("nbcellar", {})
    if content.get("status") != "ok" or answer.get("status") != "ok":
        failed = answer if answer.get("status") == "error" else content
        raise InheritError(
            f"the kernel of {running.path.name} could not save its state: "
            f"{failed.get('ename')}: {failed.get('evalue')} (is nbcellar installed in that "
            "kernel's environment?)"
        )
    data: dict[str, Any] = json.loads(ast.literal_eval(answer["data"]["text/plain"]))
    return data


def inherit(
    notebook: str | Path,
    names: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    *,
    timeout: float = 60.0,
    run: bool | None = None,
    store: str | Path | None = None,
    into: MutableMapping[str, Any] | None = None,
) -> Inherited:
    """Bring the variables of ``notebook`` into this namespace (see the module's docstring).

    ``names``: only these; ``exclude``: not these. ``timeout``: seconds to wait for a busy base
    kernel. ``run``: True runs the base headless even if it was never executed; False never
    runs it. ``store``: the store to go through (default: the usual one). ``into``: the
    namespace to fill (default: the IPython user namespace, else the caller's globals).
    """
    from nbcellar.kernel.servers import find_running
    from nbcellar.store import open_store

    began = time.perf_counter()
    path = Path(notebook).expanduser()
    wanted = None if names is None else list(dict.fromkeys(names))
    skip = list(dict.fromkeys(exclude))
    target = into if into is not None else _target_namespace(3)
    opened = open_store(store)
    try:
        running = find_running(path)
        if running is not None:
            answer = _from_running(running, opened, wanted, skip, timeout)
            source = f"its running kernel {running.kernel_id[:8]} on {running.server_url}"
            result = _load(
                opened, answer["snapshot"], None, answer["producers"], answer["unserializable"],
                target,
            )  # fmt: skip
            result.missing.update(dict.fromkeys(answer["missing"], "not defined in the base"))
        else:
            if not path.exists():
                raise InheritError(f"no notebook {path} (and none open under that name)")
            result = _from_stored(opened, path, wanted, skip, run, target)
            source = result.source
        result.notebook = path
        result.source = source
        result.seconds = time.perf_counter() - began
        return result
    finally:
        opened.close()


def _load(
    store: Any,
    snapshot_id: str,
    chosen: set[str] | None,
    producers: Mapping[str, str],
    unserializable: Mapping[str, str],
    target: MutableMapping[str, Any],
) -> Inherited:
    """Load a snapshot (the ``chosen`` names, default all) into ``target``, rebuilding what
    the producers' cells can rebuild."""
    snapshot = store.snapshot(snapshot_id)
    names = [v.name for v in snapshot.variables if chosen is None or v.name in chosen]
    restored = store.restore(snapshot_id, names, namespace=target)
    values = bind_functions(restored.values, target)  # functions read the child's globals
    target.update(values)
    rebuilt, failed = replay(producers, target, values) if producers else ({}, {})
    missing = {n: why for n, why in restored.missing.items() if n not in rebuilt}
    for name, reason in unserializable.items():
        if name not in rebuilt:
            missing[name] = failed.get(name, f"cannot be pickled ({reason}) and no cell made it")
    versions = snapshot_versions(snapshot)
    note_versions(target, {n: v for n, v in versions.items() if n in values}, values)
    return Inherited(Path(), "", sorted([*values, *rebuilt]), snapshot_id, 0.0, rebuilt, missing)


def _from_stored(
    store: Any,
    path: Path,
    names: list[str] | None,
    exclude: list[str],
    run: bool | None,
    target: MutableMapping[str, Any],
) -> Inherited:
    """The state of a notebook that is not running: its cached final state, or a headless
    run's."""
    from nbcellar.notebook import read_notebook
    from nbcellar.runs.execute import final_state

    nb = read_notebook(path)
    state = None if run else _cached_state(store, nb, path, target)
    if state is not None:
        namespace, producers, unserializable, versions = state
        how = "the cached state of its last run; no kernel started"
    else:
        if run is False:
            raise InheritError(
                f"{path.name} is not running and its code changed since it last ran; "
                f"run it (nbcellar run {path}) or pass run=True"
            )
        if run is None and not _ever_executed(store, nb):
            raise InheritError(
                f"{path.name} is not open in any running Jupyter server and was never run with "
                f"nbcellar; run it first: nbcellar run {path} (or inherit(..., run=True))"
            )
        answer, ran, total = final_state(nb, path, Path(store.root))
        how = f"ran it headless: {ran} of {total} cells ran, the others came from the cache"
        snapshot_id = answer["snapshot"]
        kept = {
            v.name
            for v in store.snapshot(snapshot_id).variables
            if copyable(v.name, names, exclude)
        }
        unserializable = {
            n: r for n, r in answer["unserializable"].items() if copyable(n, names, exclude)
        }
        producers = {n: s for n, s in answer["producers"].items() if n in unserializable}
        result = _load(store, snapshot_id, kept, producers, unserializable, target)
        result.source = how
        return result
    chosen = {k: v for k, v in namespace.items() if copyable(k, names, exclude)}
    chosen = bind_functions(chosen, target)  # functions read the child's globals
    target.update(chosen)
    wanted_producers = {n: s for n, s in producers.items() if copyable(n, names, exclude)}
    rebuilt, failed = replay(wanted_producers, target, chosen)
    note_versions(target, {n: v for n, v in versions.items() if n in chosen}, chosen)
    missing = {
        n: failed.get(n, f"cannot be pickled ({r})")
        for n, r in unserializable.items()
        if n not in rebuilt and copyable(n, names, exclude)
    }
    return Inherited(path, how, sorted([*chosen, *rebuilt]), None, 0.0, rebuilt, missing)


def _ever_executed(store: Any, nb: Any) -> bool:
    from nbcellar.analysis import analyze_cell

    hashes = [str(analyze_cell(c.source).code_hash) for c in nb.code_cells if c.source.strip()]
    return bool(store.has_records("cell-latest", hashes))


def _cached_state(
    store: Any, nb: Any, path: Path, target: MutableMapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str], dict[str, str], dict[str, str]] | None:
    """The namespace a fresh kernel would end with, from the notebook's remembered run: each
    cell's stored effect applied in order (None if the code changed since, or an entry is
    gone). Also the cells to replay for unserializable values (name -> source), why those
    could not be stored, and the content version of each value stored alone."""
    from nbcellar.cache.entries import KIND, CacheEntry
    from nbcellar.cache.notebooks import find_run
    from nbcellar.runs.execute import sources_of

    folder = path.resolve().parent
    found = find_run(
        store, sources_of(nb), nb.kernel_name or "python3", Path(store.root).parent, folder,
        replayable=True,
    )  # fmt: skip
    if found is None:
        return None
    namespace: dict[str, Any] = {}
    producers: dict[str, str] = {}
    unserializable: dict[str, str] = {}
    versions: dict[str, str] = {}
    for cell, done in zip(nb.code_cells, found.cells, strict=True):
        if done.key is None:
            continue
        record = store.get_record(KIND, done.key)
        if record is None:
            return None
        entry = CacheEntry.from_bytes(done.key, record.snapshot_id, record.payload)
        if entry.stored_names and entry.snapshot_id is not None:
            restored = store.restore(
                entry.snapshot_id, entry.stored_names, external=namespace, namespace=target
            )  # functions read the child's globals
            if restored.missing:
                return None
            namespace.update(restored.values)
            shared = Counter(entry.versions.values())
            for name in restored.values:  # as a kernel restoring the cell versions them
                version = entry.versions.get(name)
                if version is not None and shared[version] == 1 and version.fingerprint:
                    versions[name] = version.fingerprint
                else:
                    versions.pop(name, None)
        for name in entry.deleted:
            namespace.pop(name, None)
            versions.pop(name, None)
        for name, reason in entry.unserializable.items():
            unserializable[name] = reason
            producers[name] = cell.source
    return namespace, producers, unserializable, versions
