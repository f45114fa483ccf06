"""Where a cell may patch something outside the notebook: the attributes and items it sets.

``statistics.mean = my_mean``, ``argparse.Namespace.describe = describe``, ``setattr(mod,
"flag", True)``, ``del tools.CACHE``, ``sys.modules["fake"] = module``, a pandas accessor
registered by decorator: each is a *patch target*, the dotted path of the object changed (from a
name of the cell's code) and the attribute or item set on it. Which of them lands on a library
or project module or class is only known at run time (see nbcellar.cache.patches); this module
reads them off the code, function bodies included (a function of the cell may patch when called).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from nbcellar.analysis.ipython import python_source

# Decorators of pandas that set an attribute on a class of theirs: which class, by its path
# from the pandas module.
_ACCESSORS = {
    "register_dataframe_accessor": ("DataFrame",),
    "register_series_accessor": ("Series",),
    "register_index_accessor": ("Index",),
}


# What a patch looks like in text (only the cells that may have one are parsed): a statement
# assigning an attribute of a name (``a.b = ``, ``a.b += ``) or an item of a dotted path, or
# deleting one; ``setattr`` or ``delattr``; an accessor registered.
_MAYBE = re.compile(
    r"^[ \t]*(?:\w+(?:\.\w+)+[ \t]*(?:\[[^\]\n]*\][ \t]*)?(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=)"
    r"|del[ \t][^\n]*\.)",
    re.MULTILINE,
)


def _may_patch(source: str) -> bool:
    return "attr(" in source or "_accessor(" in source or _MAYBE.search(source) is not None


@dataclass(frozen=True, order=True)
class PatchTarget:
    """``owner`` (a dotted path: a name then attributes) gets ``name`` set as an attribute, or
    as an item (``kind == "item"``, a constant key: ``sys.modules["fake"]``)."""

    owner: tuple[str, ...]
    name: str
    kind: Literal["attribute", "item"] = "attribute"


def _path(node: ast.expr) -> tuple[str, ...] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return (node.id, *reversed(parts))


def _targets_of(node: ast.AST) -> list[PatchTarget]:
    """The patch targets one assignment target, ``del`` target, call or decorator names."""
    if isinstance(node, ast.Attribute):
        owner = _path(node.value)
        return [PatchTarget(owner, node.attr)] if owner is not None else []
    if isinstance(node, ast.Subscript):
        owner = _path(node.value)
        key = node.slice
        if owner is not None and isinstance(key, ast.Constant) and isinstance(key.value, str):
            return [PatchTarget(owner, key.value, "item")]
        return []
    if isinstance(node, ast.Tuple | ast.List):
        return [t for element in node.elts for t in _targets_of(element)]
    if isinstance(node, ast.Starred):
        return _targets_of(node.value)
    if isinstance(node, ast.Call):
        callee = _path(node.func)
        if callee in (("setattr",), ("delattr",)) and len(node.args) >= 2:
            owner, name = _path(node.args[0]), node.args[1]
            if owner is not None and isinstance(name, ast.Constant) and isinstance(name.value, str):
                return [PatchTarget(owner, name.value)]
        if callee is not None and callee[-1] in _ACCESSORS and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                # (pd.api.extensions.register_dataframe_accessor: pandas is its first name)
                return [PatchTarget((callee[0], *_ACCESSORS[callee[-1]]), name.value)]
    return []


@lru_cache(maxsize=4096)
def patch_targets(source: str) -> tuple[PatchTarget, ...]:
    """Every attribute and constant item the cell's code may set or delete on a dotted path
    (pure, cached by source; nothing for code that does not parse)."""
    if not _may_patch(source):
        return ()
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return ()
    found: set[PatchTarget] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                found.update(_targets_of(target))
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            found.update(_targets_of(node.target))
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                found.update(_targets_of(target))
        elif isinstance(node, ast.Call):
            found.update(_targets_of(node))
    return tuple(sorted(found))
