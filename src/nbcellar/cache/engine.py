"""The cell cache's decisions, for any executor: plan a cell, then restore it or record its run.

``CellCache`` follows one namespace (a kernel's user namespace, or a plain dict in tests). For
each cell it computes the key from the cell's normalised code and the versions of what it reads,
then either restores the entry for that key (load values, replay outputs) or lets the cell run
and records what changed: names rebound, created or deleted (seen by comparing bindings before
and after) and names changed in place (candidates from the analysis whose fingerprint changed).
"""

from __future__ import annotations

import re
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbcellar.analysis import CellAnalysis, FunctionInfo, analyze_cell
from nbcellar.analysis.graph import reads_through_calls
from nbcellar.cache.entries import KIND, CacheEntry
from nbcellar.cache.fingerprint import fingerprint, fingerprint_holding, identity_version
from nbcellar.cache.keys import ABSENT, CellKey, KeyInputs
from nbcellar.cache.purity import leaves_unchanged
from nbcellar.cache.sources import file_version, is_project_module, module_version
from nbcellar.logbook import BOOK, RESERVED, expand, rest, summarize
from nbcellar.runfiles import RESERVED_FILES
from nbcellar.store.functions import bind_functions
from nbcellar.store.pickling import held_objects, identity_free, no_cycle_collection, root_array
from nbcellar.store.records import Snapshot, VariableRecord

Action = Literal["restore", "replay", "run"]

# Magics that only read or time code; any other magic or shell command may change the kernel or
# the disk in ways a restore would not reproduce, so its cell always runs.
PURE_MAGICS = frozenset(
    {"time", "timeit", "prun", "capture", "pinfo", "pinfo2", "pdef", "pdoc", "psource", "pfile",
     "who", "whos", "who_ls"}
)  # fmt: skip

# Names IPython keeps for itself: never saved, never versioned; reading them disables caching.
_IPYTHON_NAME = re.compile(r"^(_+|_i+|_i?\d+|_[ido]h|In|Out|exit|quit|get_ipython|_exit_code)$")


def is_ipython_name(name: str) -> bool:
    return bool(_IPYTHON_NAME.match(name)) or (name.startswith("__") and name.endswith("__"))


_DIRECTIVE = re.compile(r"^\s*#\s*nbcellar:\s*(.+?)\s*$", re.MULTILINE)


def directives_in(source: str) -> list[str]:
    """Tags written as ``# nbcellar: nocache depends:data.csv`` comments in the cell."""
    return [tag for line in _DIRECTIVE.findall(source) for tag in re.split(r"[\s,]+", line) if tag]


class CacheEntryWarning(UserWarning):
    """A cache entry could not be used (damaged values); the cell runs instead."""


class UnusableEntry(Exception):
    """An entry's values cannot be loaded; the caller runs the cell instead."""


@dataclass(frozen=True)
class Directives:
    """Per-cell options, from cell tags (``nocache``, ``refresh``, ``depends:PATH``)."""

    nocache: bool = False
    refresh: bool = False
    depends: tuple[str, ...] = ()
    depends_content: tuple[str, ...] = ()

    @classmethod
    def from_tags(cls, tags: Iterable[str]) -> Directives:
        tags = list(tags)
        return cls(
            nocache="nocache" in tags,
            refresh="refresh" in tags,
            depends=tuple(t[len("depends:") :] for t in tags if t.startswith("depends:")),
            depends_content=tuple(
                t[len("depends-content:") :] for t in tags if t.startswith("depends-content:")
            ),
        )


@dataclass
class Plan:
    """What to do with one cell, and what is needed afterwards to record it."""

    action: Action
    analysis: CellAnalysis
    reason: str
    key: CellKey | None = None
    inputs: KeyInputs | None = None
    entry: CacheEntry | None = None
    record: bool = False
    bindings: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, str | None] = field(default_factory=dict)
    holding: dict[str, frozenset[str]] = field(default_factory=dict)  # variables inside each
    started: float = 0.0
    locked: bool = False  # this process holds the right to compute the key


@dataclass(frozen=True)
class Outcome:
    """What a cell did, as the cache saw it."""

    status: Literal["restored", "ran", "error"]
    key: CellKey | None
    seconds: float
    saved_seconds: float = 0.0
    written: tuple[str, ...] = ()
    mutated: tuple[str, ...] = ()
    recorded: bool = False


class CellCache:
    """Keys, lookups and records for the cells run in one namespace."""

    def __init__(self, store: Any, project: Path) -> None:
        self.store = store
        self.project = project
        self.versions: dict[str, str] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self.last_outcome: Outcome | None = None
        # The last fingerprint taken of each mutation candidate, with the object's id: the next
        # cell that may mutate it need not hash it again before it runs.
        self._fingerprints: dict[str, tuple[int, str | None]] = {}
        # What each variable's value holds (ids), with the value's id: see _changed_with.
        self._held: dict[str, tuple[int, frozenset[int]]] = {}
        # Versions the running cell's code announced for what it binds (nbcellar.inherit: the
        # stored content's hash), with the object's id: used instead of hashing it again.
        self.announced: dict[str, tuple[int, str]] = {}
        self.announced_functions: dict[str, FunctionInfo] = {}  # and the functions it binds

    # -- planning ----------------------------------------------------------------------------

    def input_names(self, analysis: CellAnalysis) -> set[str]:
        called, _, called_mutated = reads_through_calls(analysis, self.functions)
        names = set(analysis.reads | analysis.mutated | called | called_mutated)
        return {n for n in names if not is_ipython_name(n)}

    def version_of(self, name: str, namespace: Mapping[str, Any]) -> str:
        if name not in namespace:
            return ABSENT
        known = self.versions.get(name)
        if known is not None:
            return known
        value = namespace[name]
        version = fingerprint(value) or identity_version(value)
        self.versions[name] = version
        return version

    def key_inputs(
        self, analysis: CellAnalysis, directives: Directives, namespace: Mapping[str, Any]
    ) -> KeyInputs:
        names = {n: self.version_of(n, namespace) for n in sorted(self.input_names(analysis))}
        # Changing an object in place changes it under every name bound to it: which names
        # those are is part of what the cell does.
        for name in sorted(self._mutation_candidates(analysis, namespace)):
            others = aliases_of(name, namespace)
            if others:
                names[name] = f"{names.get(name) or self.version_of(name, namespace)}"
                names[name] += "|same object as " + ",".join(others)
        modules = {m: module_version(m, self.project) for m in sorted(analysis.imports)}
        # Paths are relative to the working directory, as the cell's own open() calls are.
        here = Path.cwd()
        files = {p: file_version(p, here) for p in directives.depends}
        files |= {
            f"content:{p}": file_version(p, here, content=True) for p in directives.depends_content
        }
        return KeyInputs(analysis.code_hash, analysis.silent, names, modules, files)

    def plan(
        self, source: str, tags: Iterable[str], namespace: Mapping[str, Any], wait: bool = True
    ) -> Plan:
        """Decide whether the cell is restored or run; call before it would execute."""
        analysis = analyze_cell(source)
        directives = Directives.from_tags(tags)
        uncacheable = self.uncacheable(analysis, directives, source)
        if uncacheable:
            return self.run_plan(analysis, uncacheable, namespace, None, None, record=False)
        inputs = self.key_inputs(analysis, directives, namespace)
        key = inputs.key()
        if directives.refresh:
            return self.run_plan(analysis, "tagged refresh", namespace, key, inputs, record=True)
        entry = self.lookup(key)
        if entry is not None and not self.fits(entry, namespace):
            reason = "what it changed in place is held by other variables than when it was stored"
            return self.run_plan(analysis, reason, namespace, key, inputs, record=True)
        if entry is None and wait:
            entry = self._claim(key)
        if entry is not None:
            action: Action = "replay" if entry.unserializable else "restore"
            return Plan(action, analysis, "unchanged", key, inputs, entry)
        plan = self.run_plan(analysis, self.why_missed(inputs), namespace, key, inputs, record=True)
        plan.locked = wait
        return plan

    @staticmethod
    def uncacheable(analysis: CellAnalysis, directives: Directives, source: str) -> str:
        """Why the cell must always run (empty when it may be cached)."""
        if not source.strip():
            return "empty"
        if analysis.syntax_error:
            return "syntax error"
        if directives.nocache:
            return "tagged nocache"
        if analysis.reads_unknown:
            return "reads names nbcellar cannot see (eval, exec, globals(), %run -i)"
        volatile = sorted(n for n in analysis.reads if is_ipython_name(n))
        if volatile:
            return f"reads IPython's {', '.join(volatile)}"
        effects = sorted(analysis.magics - PURE_MAGICS)
        if effects:
            shown = ", ".join("shell command" if m == "!" else f"%{m}" for m in effects)
            return f"uses {shown}, whose effects a restore would not repeat"
        return ""

    def run_plan(
        self,
        analysis: CellAnalysis,
        reason: str,
        namespace: Mapping[str, Any],
        key: CellKey | None,
        inputs: KeyInputs | None,
        record: bool,
    ) -> Plan:
        """A plan to run the cell: the bindings and fingerprints to compare with afterwards."""
        candidates = self._mutation_candidates(analysis, namespace)
        fingerprints = self._fingerprints_of(candidates, namespace)
        return Plan(
            "run",
            analysis,
            reason,
            key,
            inputs,
            record=record,
            bindings={n: id(v) for n, v in namespace.items() if not is_ipython_name(n)},
            candidates=fingerprints,
            holding={
                n: self._held_names(n, namespace)
                for n, fp in fingerprints.items()
                if fp is not None
            },
            started=time.perf_counter(),
        )

    def _mutation_candidates(
        self, analysis: CellAnalysis, namespace: Mapping[str, Any]
    ) -> set[str]:
        _, _, called_mutated = reads_through_calls(analysis, self.functions)
        names = set(analysis.mutated | called_mutated)
        if analysis.writes_unknown or analysis.reads_unknown:
            return {n for n in namespace if not is_ipython_name(n)}
        # Calls known not to change what they are given, seen already (their callee is bound
        # before the cell and the cell does not bind it): no fingerprints needed.
        names -= {
            n for n in names & analysis.call_mutations.keys()
            if n not in called_mutated and all(
                site.callee.split(".")[0] not in analysis.writes
                and leaves_unchanged(site, namespace)
                for site in analysis.call_mutations[n]
            )
        }  # fmt: skip
        # (A module is stored by name: a change made to it is neither seen nor restored.)
        return {
            n for n in names
            if n in namespace and not is_ipython_name(n)
            and not isinstance(namespace[n], types.ModuleType)
        }  # fmt: skip

    def _unchanged_by_calls(self, plan: Plan, name: str, namespace: Mapping[str, Any]) -> bool:
        """Whether ``name`` was a candidate only through calls known to leave it as it was,
        now that the cell has bound what it calls."""
        sites = plan.analysis.call_mutations.get(name)
        if not sites or plan.analysis.writes_unknown or plan.analysis.reads_unknown:
            return False
        _, _, called_mutated = reads_through_calls(plan.analysis, self.functions)
        return name not in called_mutated and all(
            leaves_unchanged(site, namespace) for site in sites
        )

    def _fingerprints_of(
        self, names: Iterable[str], namespace: Mapping[str, Any]
    ) -> dict[str, str | None]:
        with no_cycle_collection():
            return {n: self._fingerprint(n, namespace) for n in names}

    def _fingerprint(self, name: str, namespace: Mapping[str, Any]) -> str | None:
        value = namespace[name]
        known = self._fingerprints.get(name)
        if known is not None and known[0] == id(value):
            return known[1]
        return fingerprint(value, name)

    def lookup(self, key: CellKey) -> CacheEntry | None:
        record = self.store.get_record(KIND, key)
        if record is None:
            return None
        return CacheEntry.from_bytes(key, record.snapshot_id, record.payload)

    def fits(self, entry: CacheEntry, namespace: Mapping[str, Any]) -> bool:
        """Whether the objects the entry's cell changed in place are bound and held here as
        they were when it ran: the names bound to each are the same, and no variable the entry
        leaves alone holds one (it would keep the object as it was before the change)."""
        if not entry.mutated:
            return True
        if any(n not in namespace for n in entry.mutated):
            return False
        if identity_groups(entry.mutated, namespace) != entry.same:
            return False
        if any(
            version == UNKNOWN or self.version_of(name, namespace) != version
            for name, version in entry.before.items()
        ):
            return False
        changed = {id(namespace[n]) for n in entry.mutated}
        rebound = {*entry.written, *entry.mutated, *entry.deleted}
        for name, value in namespace.items():
            if name in rebound or is_ipython_name(name):
                continue
            if isinstance(value, types.ModuleType) or identity_free(value):
                continue
            if id(value) in changed or self._holds(name, namespace, changed):
                return False
        return True

    def _claim(self, key: CellKey) -> CacheEntry | None:
        """Take the right to compute ``key``; if another process is computing it, wait for it
        and return its entry (a process that died meanwhile leaves the right to us)."""
        from nbcellar.store.records_table import try_lock

        name = f"cell:{key}"
        while not try_lock(self.store.index, name):
            time.sleep(0.05)
            entry = self.lookup(key)
            if entry is not None:
                return entry
        entry = self.lookup(key)  # finished between our lookup and our lock
        if entry is not None:
            self._release(key)
        return entry

    def _release(self, key: CellKey | None) -> None:
        from nbcellar.store.records_table import unlock

        if key is not None:
            unlock(self.store.index, f"cell:{key}")

    def why_missed(self, inputs: KeyInputs) -> str:
        """Which input changed since the last recorded run of the same code, in words."""
        latest = self.store.get_record("cell-latest", inputs.code_hash)
        if latest is None:
            return "new or edited code (never run as it is now)"
        earlier = self.lookup(CellKey(latest.payload.decode()))
        if earlier is None:
            return "new or edited code (never run as it is now)"
        differences = inputs.differences(earlier.inputs)
        return "; ".join(differences) if differences else "not cached"

    # -- after the cell ----------------------------------------------------------------------

    def restore(self, plan: Plan, namespace: MutableMapping[str, Any]) -> Sequence[Any]:
        """Load the entry's values into the namespace; return the outputs to replay.

        Raises :class:`UnusableEntry` when a value cannot be loaded (nothing is changed then), so
        the caller runs the cell instead.
        """
        entry = plan.entry
        assert entry is not None
        assert plan.key is not None
        values: dict[str, Any] = {}
        names = entry.stored_names
        if names:
            restored = self.store.restore(
                entry.snapshot_id, names, external=namespace, namespace=namespace
            )  # (namespace: functions inside the values read it as their globals)
            if restored.missing:
                name, reason = next(iter(restored.missing.items()))
                raise UnusableEntry(f"cache entry for this cell is unusable: {name}: {reason}")
            values = restored.values
        logged = self._logged_of(entry, namespace)
        self._write_files(entry, namespace)
        for name in entry.deleted:
            namespace.pop(name, None)
        namespace.update(bind_functions(values, namespace))
        BOOK.replay(logged)
        for name in (*entry.written, *entry.mutated, *entry.deleted):
            self._fingerprints.pop(name, None)
            self._held.pop(name, None)
        # A value stored alone, with nothing referred to by name: its version is its fingerprint.
        shared = Counter(entry.versions.values())
        for name, version in entry.versions.items():
            if name in values and shared[version] == 1 and "+" not in version:
                self._fingerprints[name] = (id(namespace[name]), "fp:" + version[2:])
        self._settle(plan, entry.written, entry.mutated, entry.deleted, entry.version)
        self.last_outcome = Outcome(
            "restored", plan.key, 0.0, entry.seconds, entry.written, entry.mutated
        )
        return entry.outputs

    def _logged_of(self, entry: CacheEntry, namespace: Mapping[str, Any]) -> list[Any]:
        """What the entry's cell logged when it ran, to log again."""
        rows = [list(row) for row in entry.logged]
        kept: list[Any] = []
        if any("index" in row[1] for row in rows) and entry.snapshot_id is not None:
            restored = self.store.restore(entry.snapshot_id, [RESERVED], external=namespace)
            if restored.missing:
                raise UnusableEntry(f"cache entry for this cell is unusable: the values it logged: "
                                    f"{next(iter(restored.missing.values()))}")  # fmt: skip
            kept = list(restored.values[RESERVED])
        return expand(rows, kept)

    def _write_files(self, entry: CacheEntry, namespace: Mapping[str, Any]) -> None:
        """Write the files the entry's cell wrote in the artifact folder again."""
        if not entry.files or entry.snapshot_id is None:
            return
        from nbcellar.runfiles import artifact_folder, write_files

        restored = self.store.restore(entry.snapshot_id, [RESERVED_FILES], external=namespace)
        if restored.missing:
            raise UnusableEntry(f"cache entry for this cell is unusable: the files it wrote: "
                                f"{next(iter(restored.missing.values()))}")  # fmt: skip
        write_files(artifact_folder(), restored.values[RESERVED_FILES])

    def finish_replay(
        self, plan: Plan, namespace: MutableMapping[str, Any], seconds: float
    ) -> None:
        """After re-running a cell whose entry has unserializable values: use the stored rest."""
        entry = plan.entry
        assert entry is not None
        assert plan.key is not None
        if entry.stored_names:
            restored = self.store.restore(
                entry.snapshot_id, entry.stored_names, namespace, namespace=namespace
            )  # (namespace: functions inside the values read it as their globals)
            namespace.update(bind_functions(restored.values, namespace))
        self._settle(plan, entry.written, entry.mutated, entry.deleted, entry.version)
        self.last_outcome = Outcome(
            "restored", plan.key, seconds, max(entry.seconds - seconds, 0.0),
            entry.written, entry.mutated,
        )  # fmt: skip

    def finish_run(
        self,
        plan: Plan,
        namespace: Mapping[str, Any],
        outputs: Sequence[Mapping[str, Any]],
        succeeded: bool,
        logged: Sequence[tuple[str, Any]] = (),
        files: Mapping[str, bytes] | None = None,
    ) -> Outcome:
        """Record what a cell that ran did; store an entry if it succeeded and may be cached.
        ``logged`` is what it logged with nbcellar.log, in order; ``files`` the files it wrote
        in the artifact folder (relative path -> bytes)."""
        try:
            with no_cycle_collection():
                return self._observe_run(
                    plan, namespace, outputs, succeeded, list(logged), dict(files or {})
                )
        finally:  # a recorded entry hands the lock to the writing thread (plan.locked is False)
            if plan.locked:
                self._release(plan.key)

    def _observe_run(
        self,
        plan: Plan,
        namespace: Mapping[str, Any],
        outputs: Sequence[Mapping[str, Any]],
        succeeded: bool,
        logged: list[tuple[str, Any]] | None = None,
        files: dict[str, bytes] | None = None,
    ) -> Outcome:
        """What changed in the namespace, recorded as an entry or as measured versions."""
        seconds = time.perf_counter() - plan.started
        current = {n: id(v) for n, v in namespace.items() if not is_ipython_name(n)}
        deleted = tuple(sorted(set(plan.bindings) - set(current)))
        # Rebound, created, or assigned by the code even when to the very same object (a second
        # ``import math`` binds math all the same).
        bound = {n for n, ident in current.items() if plan.bindings.get(n) != ident}
        bound |= {n for n in plan.analysis.writes if n in current}
        written = tuple(sorted(bound)) + deleted
        for name in written:
            self._fingerprints.pop(name, None)
            self._held.pop(name, None)
        after: dict[str, str | None] = {}
        changed: set[str] = set()
        for name, before in plan.candidates.items():
            if before is None or name not in current or current[name] != plan.bindings.get(name):
                continue
            if self._unchanged_by_calls(plan, name, namespace):
                after[name] = before
                continue
            # The content, and which variables it holds (a swap of equal objects is a change).
            after[name], held = fingerprint_holding(namespace[name], name)
            self._held[name] = (current[name], held)
            if after[name] != before or self._held_names(name, namespace) != plan.holding.get(name):
                changed.add(name)
        self._fingerprints.update({n: (current[n], fp) for n, fp in after.items()})
        mutated = self._changed_with(
            changed, namespace, current, set(written), self._holding_bound(plan, namespace)
        )
        recorded = False
        if succeeded and plan.record and plan.key is not None and plan.inputs is not None:
            entry, snapshot = self._record(
                plan, namespace, written, mutated, deleted, outputs, seconds, logged or [],
                files or {},
            )  # fmt: skip
            recorded = True
            # A variable saved alone was just fingerprinted by its save.
            groups = Counter(v.value_key for v in snapshot.variables)
            for variable in snapshot.variables:
                if (
                    variable.value_key
                    and groups[variable.value_key] == 1
                    and not variable.refers_to
                    and variable.name in namespace  # not the values the cell logged
                ):
                    ident = id(namespace[variable.name])
                    self._fingerprints[variable.name] = (ident, "fp:" + variable.value_key)
            self._settle(plan, written, mutated, deleted, entry.version)
        else:
            announced = self.announced

            def measured(name: str) -> str:
                value = namespace[name]
                known = announced.get(name)
                if known is not None and known[0] == id(value):
                    self._fingerprints[name] = known
                    return known[1]
                return fingerprint(value) or identity_version(value)

            self._settle(plan, written, mutated, deleted, measured)
        self.functions.update({n: f for n, f in self.announced_functions.items() if n in namespace})
        self.announced, self.announced_functions = {}, {}
        status: Literal["ran", "error"] = "ran" if succeeded else "error"
        self.last_outcome = Outcome(status, plan.key, seconds, 0.0, written, mutated, recorded)
        return self.last_outcome

    def _changed_with(
        self,
        changed: set[str],
        namespace: Mapping[str, Any],
        current: Mapping[str, int],
        written: set[str],
        holding_bound: set[str],
    ) -> tuple[str, ...]:
        """Every name changed along with the objects of ``changed``: those bound to the same
        objects, to objects inside them (a pipeline's fitted step), or to values holding any
        of those (a dict holding a changed array); and ``holding_bound``, whose values hold
        what a name the cell bound now names. All are stored together, so a restore rebinds
        them to objects that hold each other as they did."""
        if not changed and not holding_bound:
            return ()
        objects = {current[n] for n in changed}
        objects |= set().union(*(self._held_by(n, namespace) for n in changed))
        # (Not functions and classes: changing an instance does not change them, and a value
        # holding one refers to it by name.)
        others = [
            n for n in current
            if n not in written and not isinstance(namespace[n], _NOT_STATE)
            and not identity_free(namespace[n])
        ]  # fmt: skip
        touched = {n for n in others if current[n] in objects} | holding_bound
        # Holders of a variable changed (the memory of an array included).
        marked: set[int] = set()
        for name in (*changed, *touched):
            marked |= {current[name], *array_root(namespace[name])}
        touched |= {n for n in others if n not in touched and self._holds(n, namespace, marked)}
        for name in touched:
            self._held.pop(name, None)
        return tuple(sorted(touched))

    def _holding_bound(self, plan: Plan, namespace: Mapping[str, Any]) -> set[str]:
        """Variables the cell left bound as they were whose values hold an object that a name
        the cell bound now names (``x = d['key']``): stored with it, or after a restore ``x``
        would be a copy, no longer the object inside ``d``."""
        holding: set[str] = set()
        for name, roots in plan.analysis.alias_roots.items():
            if name not in namespace or identity_free(namespace[name]):
                continue
            target = id(namespace[name])
            for root in roots:
                if (
                    root in namespace and root not in plan.analysis.writes
                    and plan.bindings.get(root) == id(namespace[root]) != target
                    and not isinstance(namespace[root], types.ModuleType)
                    and self._holds(root, namespace, {target})
                ):  # fmt: skip
                    holding.add(root)
        return holding

    def _held_names(self, name: str, namespace: Mapping[str, Any]) -> frozenset[str]:
        """The other variables whose objects ``name``'s value holds."""
        for fresh in (False, True):  # a match in a kept set is checked afresh (see _holds)
            if fresh:
                self._held.pop(name, None)
            held = self._held_by(name, namespace)
            names = frozenset(
                n for n, v in namespace.items()
                if n != name and id(v) in held and not is_ipython_name(n)
                and not identity_free(v) and not isinstance(v, types.ModuleType)
            )  # fmt: skip
            if not names:
                break
        return names

    def _holds(self, name: str, namespace: Mapping[str, Any], objects: set[int]) -> bool:
        """Whether ``name``'s value holds one of ``objects`` (live objects' ids). A kept set of
        ids may name objects gone since, their ids reused: a match is checked afresh."""
        if not self._held_by(name, namespace) & objects:
            return False
        self._held.pop(name, None)
        return bool(self._held_by(name, namespace) & objects)

    def _held_by(self, name: str, namespace: Mapping[str, Any]) -> frozenset[int]:
        """Ids of what ``name``'s value holds (see held_objects), kept while it is the same
        object and no cell changes it."""
        value = namespace[name]
        known = self._held.get(name)
        if known is not None and known[0] == id(value):
            return known[1]
        held = frozenset(held_objects(value))
        self._held[name] = (id(value), held)
        return held

    def _record(
        self,
        plan: Plan,
        namespace: Mapping[str, Any],
        written: tuple[str, ...],
        mutated: tuple[str, ...],
        deleted: tuple[str, ...],
        outputs: Sequence[Mapping[str, Any]],
        seconds: float,
        logged: list[tuple[str, Any]],
        files: dict[str, bytes],
    ) -> tuple[CacheEntry, Snapshot]:
        assert plan.key is not None
        assert plan.inputs is not None
        names = [n for n in (*written, *mutated) if n not in deleted]
        # Inputs the cell left as they were (same object, same content) are referred to by
        # name, so a value holding one of them comes back holding whatever that name holds
        # then: the same object, with its aliases, as in a run.
        # (Not numbers, strings, modules or importable functions and classes: they come back
        # as good as themselves, and a value referring to none is its own fingerprint.)
        external = {
            n: namespace[n]
            for n in plan.inputs.names
            if n in namespace
            and n not in mutated
            and plan.bindings.get(n) == id(namespace[n])
            and not identity_free(namespace[n])
        }
        # Any other variable a value holds is referred to by name too: it is not saved here,
        # and a copy inside the value would no longer be that variable after a restore.
        others = {
            n: v for n, v in namespace.items()
            if n not in external and n not in names and not is_ipython_name(n)
            and not identity_free(v) and not isinstance(v, types.ModuleType)
        }  # fmt: skip
        key, code_hash, release = plan.key, plan.inputs.code_hash, plan.locked
        built: list[CacheEntry] = []
        ready = threading.Event()

        def commit(index: Any, ok: bool) -> None:
            """In the writing thread: index the entry once its values are stored."""
            from nbcellar.store.records_table import put_record, unlock

            ready.wait()
            try:
                if ok and built:
                    put_record(index, KIND, key, built[0].to_bytes(), built[0].snapshot_id)
                    put_record(index, "cell-latest", code_hash, key.encode(), None)
            finally:
                if release:
                    unlock(index, f"cell:{key}")

        # The values are pickled and hashed now; they are written while the next cells run.
        plan.locked = False  # the writing thread releases the lock once the entry is indexed
        try:
            kept = rest(logged)
            snapshot = self.store.save_namespace(
                {n: namespace[n] for n in names}
                | ({RESERVED: kept} if kept else {})
                | ({RESERVED_FILES: files} if files else {}),
                label=f"cell {plan.key}",
                external=external,
                others=others,
                background=True,
                then=commit,
            )
        except BaseException:
            plan.locked = release
            ready.set()
            raise
        try:
            entry = CacheEntry(
                key=plan.key,
                inputs=plan.inputs,
                snapshot_id=snapshot.id,
                written=tuple(n for n in written if n not in deleted),
                mutated=mutated,
                deleted=deleted,
                unserializable=snapshot.unserializable,
                outputs=tuple(outputs),
                seconds=seconds,
                versions={
                    v.name: self._content_version(v, plan.inputs)
                    for v in snapshot.variables
                    if v.value_key is not None and v.name not in (RESERVED, RESERVED_FILES)
                },
                logged=tuple(summarize(logged)),
                files=tuple(sorted(files)),
                same=identity_groups(mutated, namespace),
                before={
                    n: self.versions.get(n, UNKNOWN) for n in mutated if n not in plan.inputs.names
                },
            )
            built.append(entry)
        finally:
            ready.set()  # the writing thread waits for the entry, or for nothing
        return entry, snapshot

    def _content_version(self, variable: VariableRecord, inputs: KeyInputs) -> str:
        """A stored value's content hash, with what it refers to instead of containing: the
        source of project code, and the versions of other variables it holds by name."""
        parts = [f"v:{variable.value_key}"]
        for module in variable.references:
            if not is_project_module(module):
                continue
            version = module_version(module, self.project)
            if version.startswith("src:"):
                parts.append(f"{module}={version}")
        parts += [
            f"{n}@{inputs.names.get(n) or self.versions.get(n, ABSENT)}" for n in variable.refers_to
        ]
        return "+".join(parts)

    def _settle(
        self,
        plan: Plan,
        written: Iterable[str],
        mutated: Iterable[str],
        deleted: Iterable[str],
        version: Callable[[str], str],
    ) -> None:
        """New versions for what the cell changed, and the functions it (re)defined."""
        for name in deleted:
            self.versions.pop(name, None)
            self.functions.pop(name, None)
        gone = set(deleted)
        for name in (*written, *mutated):
            if name not in gone:
                self.versions[name] = version(name)
        for name in written:
            if name in plan.analysis.functions:
                self.functions[name] = plan.analysis.functions[name]
            else:
                self.functions.pop(name, None)


UNKNOWN = "unknown"  # a version nbcellar did not know: never the same as any

_NOT_STATE = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)


def array_root(value: Any) -> tuple[int, ...]:
    """The id of the array owning an array's memory (nothing for other values)."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(value, numpy.ndarray):
        return ()
    return (id(root_array(value)),)


def identity_groups(
    names: Iterable[str], namespace: Mapping[str, Any]
) -> tuple[tuple[str, ...], ...]:
    """The names bound to one object, in sorted groups of two or more."""
    groups: dict[int, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(id(namespace[name]), []).append(name)
    return tuple(sorted(tuple(g) for g in groups.values() if len(g) > 1))


def aliases_of(name: str, namespace: Mapping[str, Any]) -> list[str]:
    """Other variables bound to the very object ``name`` is bound to."""
    target = namespace[name]
    return sorted(
        n for n, v in namespace.items() if v is target and n != name and not is_ipython_name(n)
    )
