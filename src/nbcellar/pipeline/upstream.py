"""``nbcellar.upstream("clean")``: in a pipeline task, what an earlier task produced.

It returns an :class:`Upstream`: a read-only mapping of the task's final variables (each
loaded from the store when first read, memory-mapped where the store can), with ``logged``
(what it logged with ``nbcellar.log``), ``products`` (its product files' paths, the executed
notebook as ``nb``), ``params`` and ``path``. It is found through the task's manifest (see
:mod:`nbcellar.pipeline.manifests`) from the working folder, so it works in a build and in the
task's notebook opened in Jupyter alike. Its pickled form holds the contents' versions, not
where they are stored: a cell that binds it again to an unchanged task makes the same value,
and the cells below it are restored from the cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbcellar.errors import NbcellarError


class UpstreamError(NbcellarError):
    """An upstream task's products cannot be had."""


def upstream(task: str) -> Any:
    """What the pipeline task ``task`` produced in its last build (for a task with a grid: a
    list, one Upstream per parameter set, each with its ``params``)."""
    from nbcellar.pipeline.manifests import FOLDER, read_manifest

    if not isinstance(task, str) or not task:
        raise UpstreamError(f"upstream({task!r}): give the task's name, as a string")
    data = read_manifest(task, Path.cwd())
    if data is None:
        raise UpstreamError(f"upstream({task!r}): task {task!r} was not built in this pipeline "
                            f"(no {FOLDER}/{task}.json in {Path.cwd()} or above); build it "
                            f"first: nbcellar build {task}")  # fmt: skip
    if isinstance(data.get("group"), list):
        return [upstream(str(member)) for member in data["group"]]
    state = data.get("state") or {}
    return Upstream(
        task,
        dict(data.get("params") or {}),
        {str(k): str(v) for k, v in (data.get("products") or {}).items()},
        dict(data.get("logged") or {}),
        {str(n): str(v.get("version")) for n, v in state.items()},
        str(data.get("unavailable") or ""),
    )


class Upstream(Mapping[str, Any]):
    """What one upstream task produced (see the module)."""

    def __init__(
        self,
        task: str,
        params: Mapping[str, Any],
        products: Mapping[str, str],
        logged: Mapping[str, Any],
        versions: Mapping[str, str],
        unavailable: str = "",
    ) -> None:
        self.task = task
        self.params = dict(params)
        self.logged = dict(logged)
        self._products = dict(sorted(products.items()))
        self._versions = dict(sorted(versions.items()))
        self._unavailable = unavailable  # why its variables are not stored, if they are not
        self._loaded: dict[str, Any] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (Upstream, (self.task, self.params, self._products, self.logged,
                           self._versions, self._unavailable))  # fmt: skip

    @property
    def products(self) -> dict[str, Path]:
        return {k: Path(v) for k, v in self._products.items()}

    @property
    def path(self) -> Path:
        """The task's executed notebook."""
        return Path(self._products["nb"])

    def __iter__(self) -> Iterator[str]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def __repr__(self) -> str:
        names = ", ".join(self._versions) or "none"
        return f"<upstream {self.task!r}: variables {names}; products {', '.join(self._products)}>"

    def __getitem__(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._versions:
            why = f" ({self._unavailable})" if self._unavailable else ""
            raise KeyError(f"task {self.task!r} left no variable {name!r}{why}; it left: "
                           f"{', '.join(self._versions) or 'none'}")  # fmt: skip
        value = self._load(name)
        self._loaded[name] = value
        return value

    def _load(self, name: str) -> Any:
        from nbcellar.pipeline.manifests import read_manifest
        from nbcellar.store import open_store

        data = read_manifest(self.task, Path.cwd()) or {}
        held = (data.get("state") or {}).get(name) or {}
        if str(held.get("version")) != self._versions[name]:
            raise UpstreamError(f"task {self.task!r} was built again since this upstream() was "
                                f"read, and its {name!r} changed; run the cell that calls "
                                "upstream() again")  # fmt: skip
        store = open_store(Path(str(data["store"])))
        try:
            restored = store.restore(str(held["snapshot"]), [name])
        finally:
            store.close()
        if name not in restored.values:
            why = restored.missing.get(name, "not in the store")
            raise UpstreamError(f"task {self.task!r}'s {name!r} cannot be loaded ({why}); "
                                f"build it again: nbcellar build {self.task} --force")  # fmt: skip
        return restored.values[name]
