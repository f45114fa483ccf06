"""``%load_ext nbcellar``: cache every following cell of an IPython kernel.

Before a cell runs (``pre_run_cell``) the cell cache plans it. A cell to restore gets its values
loaded there and then, and an AST transformer swaps its code for a replay of its recorded
outputs; a cell to run is left alone while its outputs are recorded, and is recorded after it
ran (``post_run_cell``). Tags reach the kernel from ``nbcellar run``; in a notebook, a comment
``# nbcellar: nocache`` (or ``refresh``, ``depends:PATH``) does the same.
"""

from __future__ import annotations

import ast
import secrets
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbcellar.analysis.names import FunctionInfo
from nbcellar.cache.engine import (
    CacheEntryWarning,
    CellCache,
    Outcome,
    Plan,
    UnusableEntry,
    directives_in,
)
from nbcellar.cache.versions import Fingerprint
from nbcellar.kernel.iopub import recorder_for, sender_for, untap
from nbcellar.kernel.outputs import Recording, needs_result_values, replay
from nbcellar.kernel.protocol import REPLY_METADATA, cell_outcome
from nbcellar.logbook import BOOK
from nbcellar.runfiles import Listing, artifact_folder, changed, listing

ATTRIBUTE = "nbcellar"


class _SwapForReplay(ast.NodeTransformer):
    def __init__(self, extension: CellCacheExtension) -> None:
        self.extension = extension

    def visit_Module(self, node: ast.Module) -> ast.Module:
        if self.extension.swap_pending:
            self.extension.swap_pending = False
            call = ast.parse(f"get_ipython().{ATTRIBUTE}.replay_outputs()", mode="eval").body
            return ast.fix_missing_locations(ast.Module(body=[ast.Expr(call)], type_ignores=[]))
        return node


@dataclass(frozen=True)
class RanCell:
    """A cell as the kernel ran it: its code, whether it succeeded, the kernel state outside
    the variables it changed (see nbcellar.cache.ambient; imports aside), its number (``In[n]``)
    and, when the cache saw it, the names it bound and those it changed in place."""

    source: str
    success: bool
    changed_state: frozenset[str]
    number: int | None
    effect: tuple[frozenset[str], frozenset[str]] | None = None
    submitted: bool = False  # it called nbcellar.submit: never part of a slice


class CellCacheExtension:
    """The cache as seen from one IPython shell."""

    def __init__(self, shell: Any, cache: CellCache) -> None:
        self.shell = shell
        self.cache = cache
        self.plan: Plan | None = None
        self.recorder: Recording | None = None
        self.next_tags: list[str] = []
        self.swap_pending = False
        self.history: list[Outcome] = []
        self._transformer = _SwapForReplay(self)
        self._outputs: list[Any] = []
        self._results: list[Any] = []  # the values the restored cell's results showed
        # A cell running cells of its own (%%capture runs its body through run_cell): the
        # inner ones are part of the outer cell, which alone is planned and recorded.
        self._running = False
        self._nested = 0
        self._replay_started = 0.0
        self._logged: list[tuple[str, Any]] = []
        self._artifacts = artifact_folder()
        self._artifacts_before: Listing = {}
        # Saves that failed in the background (a full disk): said in the notebook, each reason
        # once, when the next cell starts (a parent that says them itself turns this off), and
        # kept for write_failures.
        self.tell_failures = True
        self._failures: list[str] = []
        self._told: set[str] = set()
        self._said: set[str] = set()
        self._not_stored = ""  # why the cache could not keep the cell running now
        # The series of this kernel's checkpoints outside a recorded run (nbcellar.checkpoints).
        self.session = "session-" + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        # The cells run since the extension was loaded, in order (what nbcellar.submit slices).
        self.ran: list[RanCell] = []
        self._modules_before = set(sys.modules)  # (what the run imports: requirements())
        self._cell: tuple[str, dict[str, str]] | None = None  # (source, ambient versions before)
        self.submitting = False  # the running cell called nbcellar.submit

    # -- registration --------------------------------------------------------------------------

    def register(self) -> None:
        self.cache.hidden = getattr(self.shell, "user_ns_hidden", None) or {}
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self.shell.ast_transformers.append(self._transformer)
        setattr(self.shell, ATTRIBUTE, self)
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None and not hasattr(kernel, "_nbcellar_finish_metadata"):
            kernel._nbcellar_finish_metadata = kernel.finish_metadata
            kernel.finish_metadata = self._finish_metadata

    def unregister(self) -> None:
        self.flush()
        self.shell.events.unregister("pre_run_cell", self.pre_run_cell)
        self.shell.events.unregister("post_run_cell", self.post_run_cell)
        if self._transformer in self.shell.ast_transformers:
            self.shell.ast_transformers.remove(self._transformer)
        if getattr(self.shell, ATTRIBUTE, None) is self:
            delattr(self.shell, ATTRIBUTE)
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None and hasattr(kernel, "_nbcellar_finish_metadata"):
            kernel.finish_metadata = kernel._nbcellar_finish_metadata
            del kernel._nbcellar_finish_metadata
        untap(self.shell)
        self.cache.store.close()  # (%load_ext again opens the store again)

    # -- the hooks -----------------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        if self._running:
            self._nested += 1
            return
        self._running = True
        self._cell = (info.raw_cell, dict(self.cache.ambient.versions))
        self._not_stored = ""
        self._take_failures()
        tags = [*self.next_tags, *directives_in(info.raw_cell)]
        meta = getattr(info, "cell_meta", None)
        if isinstance(meta, dict):
            tags += [str(t) for t in meta.get("tags", ())]
        self.next_tags = []
        self.plan = None
        try:
            plan = self.cache.plan(info.raw_cell, tags, self.shell.user_ns)
            if plan.action == "restore":
                try:
                    self._check_results(plan)
                    self._outputs = list(self.cache.restore(plan, self.shell.user_ns))
                    self._results = plan.results
                    self.swap_pending = True
                except UnusableEntry as exc:
                    warnings.warn(f"{exc}; running the cell", CacheEntryWarning, stacklevel=1)
                    plan = self.cache.run_plan(
                        plan.analysis, "cache entry unusable", self.shell.user_ns,
                        plan.key, plan.inputs, record=True,
                    )  # fmt: skip
        except Exception as exc:  # the cache must never stop a cell from running
            self._cache_trouble("the cache is unavailable for this cell (it runs as usual)", exc)
            return
        self.plan = plan
        if plan.action == "run":
            self.recorder = recorder_for(self.shell)
            self.recorder.start()
            self._logged = []
            BOOK.listeners.append(self._note_logged)
            self._artifacts = artifact_folder()
            self._artifacts_before = listing(self._artifacts)
        elif plan.action == "replay":
            self._replay_started = time.perf_counter()

    def volatile(
        self,
        reason: str,
        versions: dict[str, tuple[int, str]],
        functions: dict[str, FunctionInfo] | None = None,
    ) -> None:
        """Called by the running cell's code: never store this cell (it must run every time,
        ``reason``); ``versions`` are the versions of what it binds (name -> object id,
        version) and ``functions`` the globals the functions it binds read."""
        plan = self.plan
        if plan is None or plan.action != "run":
            return
        plan.record = False
        plan.reason = reason
        self.cache.announced.update({n: (i, Fingerprint(v)) for n, (i, v) in versions.items()})
        self.cache.announced_functions.update(functions or {})

    def flush(self) -> None:
        """Wait until the values of the cells that ran are written to the store."""
        self.cache.store.flush()

    def write_failures(self) -> str:
        """After :meth:`flush`: why values could not be stored since the last call (JSON)."""
        import json

        self._take_failures()
        found, self._failures = self._failures, []
        return json.dumps(found)

    def _take_failures(self) -> None:
        take = getattr(self.cache.store, "take_write_failures", None)
        if take is None:
            return
        found = take()
        self._failures += found
        self._tell({f.partition(": ")[2] for f in found})

    def _tell(self, reasons: set[str]) -> None:
        new = sorted(reasons - self._told)
        if new and self.tell_failures:
            self._told.update(new)
            where = getattr(self.cache.store, "root", "the store")
            self._say(f"nbcellar: warning: the cache could not store what a cell made "
                      f"({'; '.join(new)[:300]}); such cells run again after a restart instead "
                      f"of being restored; free space in {where}")  # fmt: skip

    def _cache_trouble(self, what: str, exc: Exception) -> None:
        """The cache failed around a cell, which runs all the same: said once per reason (a
        full disk as the failed saves are)."""
        self._not_stored = "No space left on device" if _disk_full(exc) else str(exc)[:300]
        if _disk_full(exc):
            self._failures.append(f"{what}: No space left on device")
            self._tell({"No space left on device"})
            return
        text = f"nbcellar: warning: {what}: {exc}"
        if text not in self._said:
            self._said.add(text)
            self._say(text)

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr)
        sys.stderr.flush()  # sent now: not part of what the cell about to run shows

    def requirements(self) -> str:
        """The distributions this kernel's cells imported, with their versions (JSON); see
        nbcellar.kernel.requirements."""
        import json

        from nbcellar.kernel.requirements import imported_distributions

        sources = [cell.source for cell in self.ran]
        return json.dumps(imported_distributions(self._modules_before, sources, self.cache.store))

    def save_log(self, run_id: str) -> None:
        """Keep what this kernel logged with the run ``run_id`` (see nbcellar.runs.records)."""
        from nbcellar.runs.records import save_log

        save_log(self.cache.store, run_id, BOOK.entries)

    def replay_outputs(self) -> None:
        """Called by a restored cell in place of its code: its outputs, and its results given
        to the displayhook as a run gives them."""
        outputs, self._outputs = self._outputs, []
        results, self._results = self._results, []
        replay(self.shell, outputs, results, sender_for(self.shell))

    # -- results (``_``, ``Out[n]``) ----------------------------------------------------------

    def _check_results(self, plan: Plan) -> None:
        """An entry showing a result whose value is not kept cannot give ``_`` back."""
        outputs = plan.entry.outputs if plan.entry is not None else ()
        if needs_result_values(outputs):
            raise UnusableEntry("the value of its result (Out[n]) was not kept")

    def _note_logged(self, name: str, value: Any) -> None:
        self._logged.append((name, value))

    def _plan_last(self) -> None:
        """Keep this extension's pre_run_cell after every other one (``%autoreload`` reloads
        modules in its own: the cache must key the cell on them as reloaded)."""
        callbacks = self.shell.events.callbacks.get("pre_run_cell", [])
        if self.pre_run_cell in callbacks and callbacks[-1] != self.pre_run_cell:
            callbacks.remove(self.pre_run_cell)
            callbacks.append(self.pre_run_cell)

    def post_run_cell(self, result: Any) -> None:
        if self._nested:
            self._nested -= 1
            return
        self._running = False
        self._plan_last()
        plan, self.plan = self.plan, None
        recorder, self.recorder = self.recorder, None
        self.swap_pending = False
        if self._note_logged in BOOK.listeners:
            BOOK.listeners.remove(self._note_logged)
        logged, self._logged = self._logged, []
        if plan is None:
            return
        try:
            if plan.action == "run" and recorder is not None:
                outputs = recorder.stop()
                if recorder.uncacheable and plan.record:
                    plan.record, plan.reason = False, recorder.uncacheable
                files = changed(self._artifacts, self._artifacts_before)
                self.cache.finish_run(
                    plan, self.shell.user_ns, outputs, bool(result.success), logged, files,
                    recorder.results,
                )  # fmt: skip
            elif plan.action == "replay":
                seconds = time.perf_counter() - self._replay_started
                if result.success:
                    self.cache.finish_replay(plan, self.shell.user_ns, seconds)
        except Exception as exc:  # recording failed: the cell ran all the same
            self._cache_trouble("could not record this cell (it ran as usual)", exc)
        finally:
            if recorder is not None:
                recorder.stop()
        outcome = self.cache.last_outcome
        if outcome is not None:
            self.history.append(outcome)
        self._note_ran(result, outcome)

    def _note_ran(self, result: Any, outcome: Outcome | None) -> None:
        cell, self._cell = self._cell, None
        if cell is None:
            return
        source, before = cell
        after = self.cache.ambient.versions
        changed = frozenset(
            name for name in {*before, *after} - {"modules"} if before.get(name) != after.get(name)
        )
        count = getattr(result, "execution_count", None)
        effect = None if outcome is None else (frozenset(outcome.written),
                                                frozenset(outcome.mutated))  # fmt: skip
        submitted, self.submitting = self.submitting, False
        self.ran.append(RanCell(source, bool(result.success), changed, count, effect, submitted))

    def _finish_metadata(self, parent: Any, metadata: Any, reply_content: Any) -> Any:
        metadata = self.shell.kernel._nbcellar_finish_metadata(parent, metadata, reply_content)
        outcome = self.cache.last_outcome
        if isinstance(metadata, dict) and outcome is not None:
            reason = outcome.reason if outcome.status == "ran" and not outcome.recorded else ""
            metadata[REPLY_METADATA] = cell_outcome(
                outcome.status, outcome.key, outcome.seconds, outcome.saved_seconds, reason,
                not_stored=self._not_stored,
            )  # fmt: skip
        elif isinstance(metadata, dict) and self._not_stored:  # (the cache failed to plan it)
            metadata[REPLY_METADATA] = cell_outcome("ran", None, 0.0, 0.0,
                                                    not_stored=self._not_stored)  # fmt: skip
        self.cache.last_outcome = None
        return metadata


def load(shell: Any) -> CellCacheExtension:
    from nbcellar.store import open_store

    existing = getattr(shell, ATTRIBUTE, None)
    if isinstance(existing, CellCacheExtension):
        return existing
    store = open_store()
    extension = CellCacheExtension(shell, CellCache(store, Path(store.root).parent))
    extension.register()
    return extension


def unload(shell: Any) -> None:
    existing = getattr(shell, ATTRIBUTE, None)
    if isinstance(existing, CellCacheExtension):
        existing.unregister()


def _disk_full(exc: BaseException) -> bool:
    """A full disk or quota, as the OS or SQLite says it."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "disk is full" in str(exc) or "No space left on device" in str(exc)
