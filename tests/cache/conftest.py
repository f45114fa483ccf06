"""The cell cache driven on plain dicts, without IPython: a namespace, a real store, and cells
run with ``exec`` exactly where a kernel would run them (between plan and finish)."""

from __future__ import annotations

import builtins
import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nbcellar.cache.engine import CellCache, Outcome
from nbcellar.store import Store, open_store
from tests.process_state import ProcessState


def fresh_namespace() -> dict[str, Any]:
    return {"__name__": "__main__", "__builtins__": builtins}


@dataclass
class DictKernel:
    """A namespace and the cache following it; :meth:`restart` empties it (the store stays)
    and puts the process state back as a new kernel would find it."""

    store: Store
    project: Path
    ns: dict[str, Any] = field(default_factory=fresh_namespace)
    outcomes: list[Outcome] = field(default_factory=list)
    process: ProcessState | None = field(default=None, repr=False)
    _cache: CellCache | None = None

    @property
    def cache(self) -> CellCache:
        """The cache of this kernel, started (with the process state it finds) at first use:
        pytest changes the environment between a fixture and its test."""
        if self._cache is None:
            if self.process is None:
                self.process = ProcessState(self.project)
            self._cache = CellCache(self.store, self.project)
        return self._cache

    def restart(self) -> None:
        self.store.flush()
        if self.process is not None:
            self.process.reset()
        self._cache = None
        self.ns = fresh_namespace()
        self.outcomes = []

    def run(self, source: str, tags: tuple[str, ...] = ()) -> str:
        """Run one cell; returns what it printed (restored cells print what they printed)."""
        plan = self.cache.plan(source, tags, self.ns)
        printed = io.StringIO()
        if plan.action == "restore":
            outputs = self.cache.restore(plan, self.ns)
            text = "".join(str(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
            assert self.cache.last_outcome is not None
            self.outcomes.append(self.cache.last_outcome)
            return text
        succeeded = True
        with contextlib.redirect_stdout(printed):
            try:
                exec(compile(source, "<cell>", "exec"), self.ns)
            except Exception:
                succeeded = False
        if plan.action == "replay":
            self.cache.finish_replay(plan, self.ns, 0.0)
            assert self.cache.last_outcome is not None
            self.outcomes.append(self.cache.last_outcome)
        else:
            outputs = [{"output_type": "stream", "name": "stdout", "text": printed.getvalue()}]
            self.outcomes.append(self.cache.finish_run(plan, self.ns, outputs, succeeded))
        return printed.getvalue()

    def run_all(self, cells: list[str]) -> list[str]:
        return [self.run(c) for c in cells]

    @property
    def statuses(self) -> list[str]:
        return [o.status for o in self.outcomes]

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.ns.items() if not k.startswith("__")}


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DictKernel]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as a kernel started in the notebook's folder
    store = open_store(tmp_path / ".nbcellar")
    kernel = DictKernel(store, tmp_path)
    yield kernel
    store.close()
    if kernel.process is not None:
        kernel.process.reset()
