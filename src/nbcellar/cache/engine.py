"""The cell cache's decisions, for any executor: plan a cell, then restore it or record its run.

``CellCache`` follows one namespace (a kernel's user namespace, or a plain dict in tests). For
each cell it computes the key from the cell's normalised code and the versions of what it reads
(:mod:`.inputs`), then either restores the entry for that key (load values, replay outputs) or
lets the cell run and records what changed: names rebound, created or deleted (seen by comparing
bindings before and after), names changed in place (candidates whose fingerprint changed, see
:mod:`.mutations`) and what holds the objects they changed (:mod:`.holding`). The entry is
saved by :mod:`.recording`; the store is anything that follows :class:`.storage.CacheStore`.
"""

from __future__ import annotations

import builtins
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbcellar.analysis import CellAnalysis, FunctionInfo, analyze_cell
from nbcellar.cache.ambient import Ambient, AmbientChange, Observation
from nbcellar.cache.bound_modules import held_by_module_changes, project_modules_bound
from nbcellar.cache.entries import AMBIENT, INPLACE, KIND, RESULTS, CacheEntry
from nbcellar.cache.files import FileWatch, changed_file
from nbcellar.cache.fingerprint import fingerprint, fingerprint_holding, measured_version
from nbcellar.cache.holding import Holdings, aliases_of
from nbcellar.cache.inplace import CannotApply, apply_state, restorable_in_place
from nbcellar.cache.inputs import (
    Directives,
    directives_in,
    imported_version,
    input_names,
    is_ipython_name,
    key_inputs,
    uncacheable,
)
from nbcellar.cache.keys import HOLDS, CellKey, KeyInputs
from nbcellar.cache.mutations import MutationWatch, is_iterator
from nbcellar.cache.reach import reached
from nbcellar.cache.recording import (
    DRAWN,
    LATEST,
    REPLAYED,
    STATE_AFTER,
    VALUES_AFTER,
    Effect,
    lock_name,
    record_entry,
    unstored_key,
    variant_key,
)
from nbcellar.cache.storage import CacheStore
from nbcellar.cache.versions import ABSENT, Fingerprint, Version
from nbcellar.logbook import BOOK, RESERVED, expand
from nbcellar.runfiles import RESERVED_FILES, artifact_folder
from nbcellar.store.classes import track_made_classes
from nbcellar.store.functions import bind_functions
from nbcellar.store.pickling import no_cycle_collection

__all__ = [
    "Action",
    "CacheEntryWarning",
    "CellCache",
    "Directives",
    "Outcome",
    "Plan",
    "UnusableEntry",
    "directives_in",
    "is_ipython_name",
]

Action = Literal["restore", "replay", "run"]

_BUILTINS = frozenset(dir(builtins))


class CacheEntryWarning(UserWarning):
    """A cache entry could not be used (damaged values); the cell runs instead."""


class UnusableEntry(Exception):
    """An entry's values cannot be loaded; the caller runs the cell instead."""


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
    candidates: dict[str, Fingerprint | None] = field(default_factory=dict)
    holding: dict[str, frozenset[str]] = field(default_factory=dict)  # variables inside each
    started: float = 0.0
    locked: bool = False  # this process holds the right to compute the key
    # The kernel state outside the variables before the cell (see nbcellar.cache.ambient).
    observation: Observation | None = None
    # After a restore: the values the cell's results showed (``_``, ``Out[n]``), in order.
    results: list[Any] = field(default_factory=list)
    # A cell that cannot be keyed: what it is known by in VALUES_AFTER (see recording).
    unstored_key: str = ""


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
    # Why it ran (a miss: which input changed), or why it always runs; empty when restored.
    reason: str = ""


class CellCache:
    """Keys, lookups and records for the cells run in one namespace."""

    def __init__(
        self,
        store: CacheStore,
        project: Path,
        ambient: Ambient | None = None,
        ignored_files: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        self.store = store
        self.project = project
        self.ambient = ambient if ambient is not None else Ambient()
        self.versions: dict[str, Version] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self.last_outcome: Outcome | None = None
        self.watch = MutationWatch()
        self.holdings = Holdings()
        # Versions the running cell's code announced for what it binds (nbcellar.inherit: the
        # stored content's hash), with the object's id: used instead of hashing it again.
        self.announced: dict[str, tuple[int, Fingerprint]] = {}
        self.announced_functions: dict[str, FunctionInfo] = {}  # and the functions it binds
        # Names the kernel itself puts in the namespace (IPython's ``open``, ``exit``), with
        # their values: while they hold those, they are versioned as absent, as a simulated
        # run (nbcellar status) that knows nothing of them sees them.
        self.hidden: Mapping[str, Any] = {}
        # The files the running cell opens (not the store's own, nor those ``ignored_files``).
        root = getattr(store, "root", None)
        self.files = FileWatch([*ignored_files, *([root] if root is not None else [])])

    # -- planning ----------------------------------------------------------------------------

    def version_of(self, name: str, namespace: Mapping[str, Any]) -> Version:
        if name not in namespace:
            return ABSENT
        if name in self.hidden and self.hidden[name] is namespace[name]:
            return ABSENT
        known = self.versions.get(name)
        if known is not None:
            return known
        version = measured_version(namespace[name])
        self.versions[name] = version
        return version

    def key_inputs(
        self, analysis: CellAnalysis, directives: Directives, namespace: Mapping[str, Any]
    ) -> KeyInputs:
        # Changing an object in place changes it under every name bound to it, and a name
        # bound to an object that is already another's (``x = y``, ``x = d['k']``) is bound to
        # that other variable's object: which names share those objects is part of what the
        # cell does.
        shared = self.watch.candidates(analysis, self.functions, namespace)
        shared |= {r for roots in analysis.alias_roots.values() for r in roots if r in namespace}
        # What the notebook's code inside the values it reads reads in turn (a method reading
        # a global, a function in a dict, a partial, an import inside a function).
        read = input_names(analysis, self.functions)
        through, modules = reached(read, namespace)
        modules |= project_modules_bound(read, namespace)
        through = {n for n in through if n in namespace or n not in _BUILTINS}
        return key_inputs(
            analysis,
            directives,
            version_of=lambda name: self.version_of(name, namespace),
            functions=self.functions,
            project=self.project,
            cwd=Path.cwd(),
            aliases={n: self.sharing(n, namespace) for n in sorted(shared)},
            ambient=self.ambient.key_versions(),
            also=through,
            also_modules=modules,
        )

    def sharing(self, name: str, namespace: Mapping[str, Any]) -> tuple[str, ...]:
        """The other variables bound to ``name``'s object, then (``holds NAME``) those whose
        objects it holds: ``d['l'] = a`` or ``d['l'] = b`` leave ``d`` equal, but a cell
        changing ``d`` restored from the other would hand back a ``d`` holding the wrong list."""
        held = sorted(self.holdings.held_names(name, namespace)) if name in namespace else []
        return (*aliases_of(name, namespace), *(f"{HOLDS}{n}" for n in held))

    def plan(
        self, source: str, tags: Iterable[str], namespace: Mapping[str, Any], wait: bool = True
    ) -> Plan:
        """Decide whether the cell is restored or run; call before it would execute."""
        observation = self.ambient.observe(source, namespace)
        analysis = analyze_cell(source)
        directives = Directives.from_tags(tags)
        why_not = uncacheable(analysis, directives, source)
        if why_not:
            plan = self.run_plan(
                analysis, why_not, namespace, None, None, record=False, observation=observation
            )
            reads = {
                n: self.version_of(n, namespace)
                for n in sorted(input_names(analysis, self.functions))
            }
            plan.unstored_key = unstored_key(analysis.code_hash, reads)
            return plan
        inputs = self.key_inputs(analysis, directives, namespace)
        key = inputs.key()

        def run(reason: str) -> Plan:
            return self.run_plan(
                analysis, reason, namespace, key, inputs, record=True, observation=observation
            )

        if directives.refresh:
            return run("tagged refresh")
        entry = self.find(key)
        changed = changed_file(entry.touched, entry.wrote) if entry is not None else ""
        if changed:
            return run(changed)
        if entry is not None and not self.fits(entry, namespace):
            return run(
                "what it changed in place is held by other variables than when it was stored"
            )
        if entry is None and wait:
            entry = self._claim(key)
        if entry is not None:
            action: Action = "replay" if entry.replays else "restore"
            again = entry.rerun or "; ".join(
                f"{n} cannot be stored ({why})" for n, why in entry.unserializable.items()
            )
            reason = f"runs again on restore: {again}" if again else "unchanged"
            if action == "replay":
                self._watch_files()
            return Plan(action, analysis, reason, key, inputs, entry, observation=observation)
        plan = run(self.why_missed(inputs))
        plan.locked = wait
        return plan

    def find(self, key: CellKey, ambient: Mapping[str, str] | None = None) -> CacheEntry | None:
        """The entry for ``key``: a cell that drew from global random generators has one for
        each state they had before it, and the one for their states now (or in the versions
        ``ambient``) is found."""
        drawn = self.store.get_record(DRAWN, key)
        if drawn is None:
            return self.lookup(key)
        # (A cell that drew in some run may not draw in another, its generators seeded alike:
        # whether it does depends on their state, so every entry of it is kept by that state.)
        names = drawn.payload.decode().split()
        return self.lookup(variant_key(key, self.ambient.drawn_versions(names, ambient)))

    @staticmethod
    def uncacheable(analysis: CellAnalysis, directives: Directives, source: str) -> str:
        """Why the cell must always run (empty when it may be cached)."""
        return uncacheable(analysis, directives, source)

    def run_plan(
        self,
        analysis: CellAnalysis,
        reason: str,
        namespace: Mapping[str, Any],
        key: CellKey | None,
        inputs: KeyInputs | None,
        record: bool,
        observation: Observation | None = None,
    ) -> Plan:
        """A plan to run the cell: the bindings and fingerprints to compare with afterwards."""
        if observation is None:
            observation = self.ambient.observe()
        candidates = self.watch.candidates(analysis, self.functions, namespace)
        fingerprints = self.watch.fingerprints_of(candidates, namespace)
        self._watch_files()
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
                n: self.holdings.held_names(n, namespace)
                for n, fp in fingerprints.items()
                if fp is not None
            },
            started=time.perf_counter(),
            observation=observation,
        )

    def _watch_files(self) -> None:
        """Note the files the cell about to run opens (those in the artifact folder are kept
        with its entry: see nbcellar.runfiles)."""
        self.files.start(also_ignored=(artifact_folder(),))

    def lookup(self, key: CellKey) -> CacheEntry | None:
        record = self.store.get_record(KIND, key)
        if record is None:
            return None
        return CacheEntry.from_bytes(key, record.snapshot_id, record.payload)

    def fits(self, entry: CacheEntry, namespace: Mapping[str, Any]) -> bool:
        """Whether the objects the entry's cell changed in place are bound and held here as
        they were when it ran, and what it changed without reading is as it was then."""
        if not entry.mutated:
            return True
        if any(n not in namespace for n in entry.mutated):
            return False
        if any(
            not version.known or self.version_of(name, namespace) != version
            for name, version in entry.before.items()
        ):
            return False
        rebound = {*entry.written, *entry.mutated, *entry.deleted}
        return self.holdings.held_alike(entry.mutated, entry.same, rebound, namespace)

    def _claim(self, key: CellKey) -> CacheEntry | None:
        """Take the right to compute ``key``; if another process is computing it, wait for it
        and return its entry (a process that died meanwhile leaves the right to us)."""
        while not self.store.try_lock(lock_name(key)):
            time.sleep(0.05)
            entry = self.find(key)
            if entry is not None:
                return entry
        entry = self.find(key)  # finished between our lookup and our lock
        if entry is not None:
            self._release(key)
        return entry

    def _release(self, key: CellKey | None) -> None:
        if key is not None:
            self.store.unlock(lock_name(key))

    def why_missed(self, inputs: KeyInputs) -> str:
        """Which input changed since the last recorded run of the same code, in words."""
        latest = self.store.get_record(LATEST, inputs.code_hash)
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
        # The kernel state it changed and its results come with its values (a module's global
        # or a result may hold one).
        names = [
            *entry.stored_names,
            *([AMBIENT] if entry.ambient else []),
            *([RESULTS] if entry.has_results else []),
            *([INPLACE] if entry.inplace else []),
        ]
        if names:
            # (namespace: functions inside the values read it as their globals)
            restored = self.store.restore(
                entry.snapshot_id or "", names, external=namespace, namespace=namespace
            )
            if restored.missing:
                name, reason = next(iter(restored.missing.items()))
                name = {
                    AMBIENT: "the kernel state it changed", RESULTS: "its result",
                    INPLACE: "what it changed of its functions and classes",
                }.get(name, name)  # fmt: skip
                raise UnusableEntry(f"cache entry for this cell is unusable: {name}: {reason}")
            values = dict(restored.values)
        changes: Any = values.pop(AMBIENT, {})
        results: Any = values.pop(RESULTS, ())
        plan.results = list(results)
        states: Any = values.pop(INPLACE, {})
        logged = self._logged_of(entry, namespace)
        try:  # (the kernel state first: a change that cannot be made again changes no value)
            self.ambient.apply(dict(changes))
        except Exception as exc:
            raise UnusableEntry(
                f"cache entry for this cell is unusable: the kernel state it changed: {exc}"
            ) from None
        self._put_back(dict(states), namespace)
        self._write_files(entry, namespace)
        for name in entry.deleted:
            namespace.pop(name, None)
        namespace.update(bind_functions(values, namespace))
        self._settle_ambient(plan)
        BOOK.replay(logged)
        self._forget((*entry.written, *entry.mutated, *entry.deleted))
        # A value stored alone, with nothing referred to by name: its version is its fingerprint.
        shared = Counter(entry.versions.values())
        for name, version in entry.versions.items():
            if name in values and shared[version] == 1 and version.fingerprint is not None:
                self.watch.keep(name, id(namespace[name]), version.fingerprint)
        self._settle(plan.analysis, entry.written, entry.mutated, entry.deleted, entry.version)
        self.last_outcome = Outcome(
            "restored", entry.key, 0.0, entry.seconds, entry.written, entry.mutated
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
            values: Any = restored.values[RESERVED]
            kept = list(values)
        return expand(rows, kept)

    @staticmethod
    def _put_back(states: Mapping[str, Any], namespace: Mapping[str, Any]) -> None:
        """Put the stored state of notebook functions and classes into the live ones (checked
        first, so that a mismatch changes nothing)."""
        for name in states:
            if name not in namespace or not restorable_in_place(namespace[name]):
                raise UnusableEntry(f"cache entry for this cell is unusable: {name} is no "
                                    "longer the function or class it changed")  # fmt: skip
        try:
            for name, state in states.items():
                apply_state(namespace[name], state)
        except CannotApply as exc:
            raise UnusableEntry(f"cache entry for this cell is unusable: {exc}") from None

    def _settle_ambient(self, plan: Plan) -> AmbientChange:
        """The new versions of kernel state outside the variables, after the cell."""
        if plan.observation is None:
            return AmbientChange()
        return self.ambient.settle(plan.observation)

    def _write_files(self, entry: CacheEntry, namespace: Mapping[str, Any]) -> None:
        """Write the files the entry's cell wrote in the artifact folder again."""
        if not entry.files or entry.snapshot_id is None:
            return
        from nbcellar.runfiles import artifact_folder, write_files

        restored = self.store.restore(entry.snapshot_id, [RESERVED_FILES], external=namespace)
        if restored.missing:
            raise UnusableEntry(f"cache entry for this cell is unusable: the files it wrote: "
                                f"{next(iter(restored.missing.values()))}")  # fmt: skip
        files: Any = restored.values[RESERVED_FILES]
        write_files(artifact_folder(), files)

    def finish_replay(
        self, plan: Plan, namespace: MutableMapping[str, Any], seconds: float
    ) -> None:
        """After running again a cell whose entry has values (or state) it could not store.

        What it made now stays: its objects hold each other as the run made them (a weakref
        to a value, a thread appending to a list). A value stored alone that comes out equal
        keeps the stored version, so the cells reading it stay restored; one that differs is
        versioned anew; the others (held with other values) keep theirs.
        """
        entry = plan.entry
        assert entry is not None
        assert plan.key is not None
        self.files.stop()
        self._settle_ambient(plan)
        self._forget((*entry.written, *entry.mutated, *entry.deleted))

        together = Counter(entry.versions.values())  # a group's members share its version
        track_made_classes(
            ((n, namespace[n]) for n in entry.written if n in namespace), plan.analysis.code_hash
        )

        def version(name: str) -> Version:
            stored = entry.version(name)
            if (
                name in entry.unserializable or stored.fingerprint is None
                or together[stored] > 1 or restorable_in_place(namespace[name])
            ):  # fmt: skip
                # Made again by the run, held with other values (nothing to compare it with
                # alone), or a function or class its same code made again (pickled, a class
                # made anew differs by the id cloudpickle gives it): taken as the run made it.
                return stored
            now = fingerprint(namespace[name], name)
            anew[name] = now != stored.fingerprint
            if not anew[name]:
                self.watch.keep(name, id(namespace[name]), now)
                return stored
            return measured_version(namespace[name])

        anew: dict[str, bool] = {}
        present = [n for n in (*entry.written, *entry.mutated) if n in namespace]
        gone = [n for n in (*entry.written, *entry.mutated, *entry.deleted) if n not in namespace]
        self._settle(plan.analysis, present, (), gone, version)
        if anew:  # (for nbcellar status: what such a run makes)
            payload = json.dumps(anew, sort_keys=True).encode()
            known = self.store.get_record(REPLAYED, entry.key)
            if known is None or known.payload != payload:
                self.store.put_record(REPLAYED, entry.key, payload)
        self.last_outcome = Outcome(
            "restored", entry.key, seconds, max(entry.seconds - seconds, 0.0),
            entry.written, entry.mutated, reason=plan.reason,
        )  # fmt: skip

    def finish_run(
        self,
        plan: Plan,
        namespace: Mapping[str, Any],
        outputs: Sequence[Mapping[str, Any]],
        succeeded: bool,
        logged: Sequence[tuple[str, Any]] = (),
        files: Mapping[str, bytes] | None = None,
        results: Sequence[Any] = (),
    ) -> Outcome:
        """Record what a cell that ran did; store an entry if it succeeded and may be cached.
        ``logged`` is what it logged with nbcellar.log, in order; ``files`` the files it wrote
        in the artifact folder (relative path -> bytes); ``results`` the values its results
        showed (the outputs' ``execute_result`` name them by index)."""
        try:
            with no_cycle_collection():
                return self._observe_run(
                    plan, namespace, outputs, succeeded, list(logged), dict(files or {}),
                    list(results),
                )  # fmt: skip
        finally:  # a recorded entry hands the lock to the writing thread (plan.locked is False)
            if plan.locked:
                self._release(plan.key)

    def _observe_run(
        self,
        plan: Plan,
        namespace: Mapping[str, Any],
        outputs: Sequence[Mapping[str, Any]],
        succeeded: bool,
        logged: list[tuple[str, Any]],
        files: dict[str, bytes],
        results: list[Any],
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
        track_made_classes(((n, namespace[n]) for n in bound), plan.analysis.code_hash)
        self._forget(written)
        changed = self._changed_in_place(plan, namespace, current)
        ambient = self._settle_ambient(plan)
        through = held_by_module_changes(
            ambient.changes.get("project", ()), namespace,
            lambda n: n not in bound and plan.bindings.get(n) == current.get(n),
        )  # fmt: skip
        self._forget(through - changed)
        changed |= through
        holding_bound = self.holdings.holding_bound(
            plan.analysis.alias_roots, plan.analysis.writes, plan.bindings, namespace
        )
        mutated = self.holdings.changed_with(
            changed, namespace, current, set(written), holding_bound
        )
        if ambient.always and plan.record:
            plan.record, plan.reason = False, ambient.always
        touched = self.files.stop()
        if touched.why_always and plan.record:
            plan.record, plan.reason = False, touched.why_always
        advanced = self._advanced(plan, namespace, current)
        if advanced and plan.record:
            plan.record, plan.reason = False, advanced
        recorded = False
        # The key its entry is kept under (a variant of the cell's key for a cell that drew
        # from a global generator): what a remembered run names it by.
        stored_key = plan.key
        if succeeded and plan.record and plan.key is not None and plan.inputs is not None:
            effect = Effect(
                written, mutated, deleted, tuple(outputs), seconds, logged, files, ambient,
                dict(self.ambient.versions), results, self._variant(plan.key, ambient),
                touched.expected(), tuple(sorted(touched.written)),
            )  # fmt: skip
            entry, snapshot = record_entry(
                self.store, plan.key, plan.inputs, effect, namespace,
                unchanged=lambda n: plan.bindings.get(n) == id(namespace[n]),
                known=self.versions, project=self.project, release_lock=plan.locked,
            )  # fmt: skip
            plan.locked = False  # the writing thread releases it once the entry is indexed
            recorded, stored_key = True, entry.key
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
                    self.watch.keep(variable.name, ident, Fingerprint(variable.value_key))
            self._settle(plan.analysis, written, mutated, deleted, entry.version)
        else:
            announced = self.announced

            def measured(name: str) -> Version:
                value = namespace[name]
                known = announced.get(name)
                if known is not None and known[0] == id(value):
                    self.watch.keep(name, *known)
                    return Version.content(known[1])
                return measured_version(value)

            self._settle(plan.analysis, written, mutated, deleted, measured)
            if succeeded and (ambient.changes or ambient.drawn) and not plan.record:
                self.store.put_record(
                    STATE_AFTER, plan.analysis.code_hash,
                    json.dumps(self.ambient.versions, sort_keys=True).encode(),
                )  # fmt: skip
            # (Also after an error: the names bound before it keep their values, a
            # ``raises-exception`` cell the run goes on after.)
            known_by = plan.key or plan.unstored_key
            if known_by and written and (not plan.record or not succeeded):
                made = {n: self.versions[n].to_json() for n in written if n in self.versions}
                self.store.put_record(VALUES_AFTER, known_by, json.dumps(made).encode())
        self.functions.update({n: f for n, f in self.announced_functions.items() if n in namespace})
        self.announced, self.announced_functions = {}, {}
        status: Literal["ran", "error"] = "ran" if succeeded else "error"
        self.last_outcome = Outcome(
            status, stored_key, seconds, 0.0, written, mutated, recorded, plan.reason
        )
        return self.last_outcome

    def _changed_in_place(
        self, plan: Plan, namespace: Mapping[str, Any], current: Mapping[str, int]
    ) -> set[str]:
        """The candidates still bound to the same object whose content, or the variables it
        holds, changed (a swap of equal objects is a change). One that cannot be pickled
        cannot be compared: it may have changed (a database a statement changed, a thread
        an event started), so it is taken as changed; its entry runs the cell again on
        restore (an iterator among them: see _advanced; a notebook function or class whose
        state cannot be pickled is restored in place by its own cell or not at all)."""
        changed: set[str] = set()
        for name, before in plan.candidates.items():
            if name not in current or current[name] != plan.bindings.get(name):
                continue
            if self.watch.unchanged_by_calls(plan.analysis, self.functions, name, namespace):
                self.watch.keep(name, current[name], before)
                continue
            if before is None:
                value = namespace[name]
                if not is_iterator(value) and not restorable_in_place(value):
                    changed.add(name)
                continue
            after, held = fingerprint_holding(namespace[name], name)
            self.holdings.keep(name, current[name], held)
            self.watch.keep(name, current[name], after)
            if after != before or self.holdings.held_names(name, namespace) != plan.holding.get(
                name
            ):
                changed.add(name)
        return changed

    def _variant(self, key: CellKey, ambient: AmbientChange) -> dict[str, str]:
        """The generator versions an entry is kept by: those the cell drew from (their
        versions before it), with those it drew from in earlier runs (unchanged now)."""
        drawn = dict(ambient.drawn)
        earlier = self.store.get_record(DRAWN, key)
        if earlier is not None:
            names = [n for n in earlier.payload.decode().split() if n not in drawn]
            drawn.update(self.ambient.drawn_versions(names))
        return drawn

    @staticmethod
    def _advanced(plan: Plan, namespace: Mapping[str, Any], current: Mapping[str, int]) -> str:
        """Why the cell must always run if it may have moved on an iterator that cannot be
        stored (a generator, a file): a restore would leave it where it was."""
        found = sorted(
            n for n, before in plan.candidates.items()
            if before is None and n in current and current[n] == plan.bindings.get(n)
            and is_iterator(namespace[n])
        )  # fmt: skip
        if not found:
            return ""
        kinds = ", ".join(f"{n} ({type(namespace[n]).__name__})" for n in found)
        return f"it may move on {kinds}, which cannot be stored: only running it does that"

    def _forget(self, names: Iterable[str]) -> None:
        names = tuple(names)
        self.watch.forget(names)
        self.holdings.forget(names)

    def _settle(
        self,
        analysis: CellAnalysis,
        written: Iterable[str],
        mutated: Iterable[str],
        deleted: Iterable[str],
        version: Callable[[str], Version],
    ) -> None:
        """New versions for what the cell changed, and the functions it (re)defined."""
        for name in deleted:
            self.versions.pop(name, None)
            self.functions.pop(name, None)
        gone = set(deleted)
        for name in (*written, *mutated):
            if name not in gone:
                self.versions[name] = imported_version(
                    analysis, name, self.project, Path.cwd()
                ) or version(name)
        for name in written:
            if name in analysis.functions:
                self.functions[name] = analysis.functions[name]
            else:
                self.functions.pop(name, None)
