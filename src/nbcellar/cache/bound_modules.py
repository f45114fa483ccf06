"""Modules of the project bound to variables: a cell reading one keys on its source.

``mod = importlib.import_module("tools")`` binds a module without an import statement, and
``%autoreload`` or ``importlib.reload`` puts a module's new source in the kernel without any
cell binding it again: the version a variable got when it was bound no longer says which source
its module runs. A cell reading a variable bound to a project module therefore keys on the
module's source as it is now, as a cell importing it does.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nbcellar.cache.sources import is_project_file


def project_modules_bound(names: Iterable[str], namespace: Mapping[str, Any]) -> set[str]:
    """The names of the project modules (the user's own source files) that ``names`` hold,
    or whose functions and classes they hold (``from tools import value``: ``%autoreload``
    puts the new code in the very same function)."""
    found: set[str] = set()
    for name in names:
        value = namespace.get(name)
        if isinstance(value, types.FunctionType | type):
            home = getattr(value, "__module__", None)
            if not isinstance(home, str) or home == "__main__":
                continue
            value = sys.modules.get(home)
        elif not isinstance(value, types.ModuleType):
            continue
        origin = getattr(value, "__file__", None)
        module = getattr(value, "__name__", None)
        if (
            isinstance(origin, str)
            and isinstance(module, str)
            and module != "__main__"
            and not module.startswith("nbcellar")
            and is_project_file(origin)
        ):
            found.add(module)
    return found


def held_by_module_changes(
    changes: Iterable[tuple[str, Iterable[tuple[str, Any]]]],
    namespace: Mapping[str, Any],
    unchanged: Callable[[str], bool],
) -> set[str]:
    """The variables whose objects a cell changed through project modules' globals (``changes``
    as the ``project`` provider gives them: module name, then changed names and values): a
    module keeping a notebook's list and appending to it changes that variable in place."""
    objects = {
        id(value): value for _, values in changes for _, value in values
        if type(value) in (list, dict, set)
    }  # fmt: skip
    if not objects:
        return set()
    return {
        n for n, v in namespace.items()
        if id(v) in objects and objects[id(v)] is v and unchanged(n)
    }  # fmt: skip
