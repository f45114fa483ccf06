"""An in-process IPython shell with nbcellar loaded, restartable like a kernel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from nbcellar.cache.engine import CellCache, Outcome
from nbcellar.kernel.extension import CellCacheExtension
from nbcellar.store import open_store


@dataclass
class CellRun:
    source: str
    stdout: str
    result: str | None
    displays: list[dict[str, Any]]
    outcome: Outcome | None
    success: bool


@dataclass
class Session:
    """One IPython shell; ``restart`` empties it like a kernel restart (the store stays)."""

    shell: Any
    store_dir: Path
    project: Path
    extension: CellCacheExtension | None = None
    runs: list[CellRun] = field(default_factory=list)

    def start(self, cached: bool = True) -> None:
        self.shell.reset(new_session=False)
        if self.extension is not None:
            self.extension.unregister()  # waits for background writes, as a kernel exit does
            self.extension = None
        if cached:
            store = open_store(self.store_dir)
            self.extension = CellCacheExtension(self.shell, CellCache(store, self.project))
            self.extension.register()

    def run(self, source: str, tags: list[str] | None = None) -> CellRun:
        if self.extension is not None:
            self.extension.next_tags = list(tags or [])
            self.extension.cache.last_outcome = None
        with capture_output(display=True) as captured:
            result = self.shell.run_cell(source, store_history=True)
        outcome = self.extension.cache.last_outcome if self.extension else None
        value = result.result
        run = CellRun(
            source,
            re.sub(r"Out\[\d+\]: ", "", captured.stdout),  # the terminal's prompt numbers differ
            None if value is None else repr(value),
            [dict(o.data) for o in captured.outputs],
            outcome,
            bool(result.success),
        )
        self.runs.append(run)
        return run

    def run_all(self, cells: list[str]) -> list[CellRun]:
        return [self.run(c) for c in cells]

    @property
    def ns(self) -> dict[str, Any]:
        hidden = set(self.shell.user_ns_hidden)
        return {
            k: v for k, v in self.shell.user_ns.items()
            if k not in hidden and not k.startswith("_")
        }  # fmt: skip


@pytest.fixture(scope="session")
def ipython() -> Any:
    return InteractiveShell.instance()


@pytest.fixture
def session(ipython: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as a kernel started in the notebook's folder
    current = Session(ipython, tmp_path / ".nbcellar", tmp_path)
    current.start()
    yield current
    if current.extension is not None:
        current.extension.unregister()
    ipython.reset(new_session=False)
