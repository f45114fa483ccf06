"""The globals of each project module as its source made them, taken right after it ran.

A cell doing ``import config; config.DEBUG = True`` imports the module and changes it before
the cache looks again: compared with nothing, the change would pass for what the source does,
and be lost on restore. A finder first on ``sys.meta_path`` has the loader of every project
module (a file of the user's own) note the module's globals as soon as its code ran, on import
and on every reload (``importlib.reload``, ``%autoreload``): what the source makes, to which a
cell's changes are compared. It costs nothing per cell, a dictionary look-up per import.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

_BASELINES: dict[str, tuple[Any, Any]] = {}  # module name -> (module, globals as made)
_SUBCLASSES: dict[type, type] = {}
_SNAPSHOT: list[Callable[[Any], Any]] = []  # how globals are taken (set by install)


def baseline(name: str, module: Any) -> Any:
    """The globals ``module`` had when its source last ran (None when not seen running)."""
    found = _BASELINES.get(name)
    if found is None or found[0] is not module:
        return None
    return found[1]


def install(snapshot: Callable[[Any], Any]) -> None:
    """Put the finder first on ``sys.meta_path`` (once); ``snapshot(module)`` takes globals."""
    if not _SNAPSHOT:
        _SNAPSHOT.append(snapshot)
    if not any(getattr(f, _MARK, False) for f in sys.meta_path):
        sys.meta_path.insert(0, _ProjectModuleFinder())


_MARK = "_nbcellar_project_modules"


class _ProjectModuleFinder:
    """Finds nothing itself: asks the finders after it, and marks a project module's loader."""

    _nbcellar_project_modules = True

    def find_spec(self, name: str, path: Sequence[str] | None, target: Any = None) -> Any:
        for finder in list(sys.meta_path):
            if getattr(finder, _MARK, False):  # (this one, or one of an earlier nbcellar)
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is None:
                continue
            _watch(spec)
            return spec
        return None

    def invalidate_caches(self) -> None:
        pass


def _watch(spec: Any) -> None:
    from nbcellar.cache.sources import is_project_file

    loader, origin = spec.loader, spec.origin
    if (
        loader is None
        or not isinstance(origin, str)
        or not spec.has_location
        or spec.name.startswith("nbcellar")
        or not hasattr(loader, "exec_module")
        or not is_project_file(origin)
    ):
        return
    kind = type(loader)
    if kind in _SUBCLASSES.values():
        return
    subclass = _SUBCLASSES.get(kind)
    if subclass is None:
        subclass = _SUBCLASSES[kind] = type(kind.__name__, (kind,), {"exec_module": _exec_module})
        subclass.__module__ = kind.__module__
        subclass.__qualname__ = kind.__qualname__
    with contextlib.suppress(TypeError):  # (a loader whose class cannot be swapped: not followed)
        loader.__class__ = subclass


def _exec_module(self: Any, module: Any) -> None:
    super(type(self), self).exec_module(module)
    name = getattr(module, "__name__", None)
    if isinstance(name, str) and _SNAPSHOT:
        try:
            _BASELINES[name] = (module, _SNAPSHOT[0](module))
        except Exception:  # a module whose globals cannot be read: compared with nothing
            _BASELINES.pop(name, None)
