from __future__ import annotations

import gc
import linecache
import os
import sys
import tempfile
import textwrap
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbcellar.store import Snapshot, Store, open_store
from nbcellar.store.functions import bind_functions


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / ".nbcellar")
    yield opened
    opened.close()


class Kernel:
    """A namespace as a kernel has one: the globals of the ``__main__`` module, each cell
    compiled under a file name of its own (ipykernel's form, with this process's id) whose
    lines are in :mod:`linecache`, as IPython's compiler leaves them."""

    def __init__(self) -> None:
        self.module = types.ModuleType("__main__")
        self.ns: dict[str, Any] = self.module.__dict__
        self.files: list[str] = []

    def run(self, source: str) -> None:
        source = textwrap.dedent(source)
        folder = Path(tempfile.gettempdir()) / f"ipykernel_{os.getpid()}"
        filename = str(folder / f"{zlib.crc32(source.encode())}.py")
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self.files.append(filename)
        exec(compile(source, filename, "exec"), self.ns)

    def eval(self, expression: str) -> Any:
        return eval(expression, self.ns)

    @property
    def variables(self) -> dict[str, Any]:
        return {k: v for k, v in self.ns.items() if not k.startswith("__")}

    def restore(self, store: Store, snapshot: Snapshot, names: list[str] | None = None) -> None:
        """Load a snapshot as the cell cache does: values referring to this namespace's
        variables by name, functions reading it, then bound into it."""
        restored = store.restore(snapshot.id, names, external=self.ns, namespace=self.ns)
        assert not restored.missing
        self.ns.update(bind_functions(restored.values, self.ns))


class Kernels:
    """Kernels started one after the other in this process, each as a fresh process would
    see it: the one before is gone (its objects, so cloudpickle forgets its classes, and its
    cells' lines)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.current: Kernel | None = None

    def start(self) -> Kernel:
        if self.current is not None:
            for filename in self.current.files:
                linecache.cache.pop(filename, None)
            self.current.ns.clear()
        self.current = Kernel()
        self.monkeypatch.setitem(sys.modules, "__main__", self.current.module)
        gc.collect()
        return self.current

    def restored_and_rerun(
        self, store: Store, cells: list[str], after: str, check: str, *, each: bool = False
    ) -> tuple[Any, Any]:
        """``check`` after running ``after`` in a kernel where ``cells`` were restored, and in
        one where they ran again: what a restore gives, and what it must give. The namespace
        is stored once after all cells, or ``each`` cell's new values on their own, referring
        to earlier cells' values by name (as the cell cache stores them)."""
        first = self.start()
        snapshots = []
        for cell in cells:
            before = dict(first.variables)
            first.run(cell)
            if each:
                written = {n: v for n, v in first.variables.items() if before.get(n) is not v}
                earlier = {n: v for n, v in first.variables.items() if n not in written}
                snapshots.append(store.save_namespace(written, external=earlier))
        if not each:
            snapshots.append(store.save_namespace(first.variables))
        restored = self.start()
        for snapshot in snapshots:
            restored.restore(store, snapshot)
        restored.run(after)
        got = restored.eval(check)
        rerun = self.start()
        for cell in [*cells, after]:
            rerun.run(cell)
        return got, rerun.eval(check)


@pytest.fixture
def kernels(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kernels]:
    # Each start collects garbage (so that cloudpickle forgets the kernel before's classes):
    # the objects of the whole test run are left out of it, or each collection walks them
    # all (two seconds a test, late in a full run).
    gc.freeze()
    try:
        yield Kernels(monkeypatch)
    finally:
        gc.unfreeze()
