"""Calls known to leave their objects as they were, recognised once the callee is known.

The analysis marks every name passed to a call, and every object whose method is called, as
possibly changed in place; the cache then fingerprints those objects before and after the cell.
For some libraries that is known not to happen, by their documented contracts:

- numpy's functions do not write into their arguments unless given ``out`` (or the few that
  exist to write: ``copyto``, ``put``, ``place``...), nor do its ufuncs called with no more
  positional arguments than inputs;
- pandas' constructors and table functions (``pd.DataFrame``, ``pd.concat``, ``pd.merge``...)
  return new objects (not its readers: reading a file object moves its position), and its
  SQL readers (``pd.read_sql``...) leave the connection they query as it was (a connection
  cannot be stored: a cell changing it is run again on every restore);
- scikit-learn's estimators do not change in ``predict``, ``predict_proba``,
  ``decision_function``, ``transform``, ``score``... (its common tests check exactly that),
  and those methods (but ``transform``, which may work in place when ``copy=False``) do not
  change the data given to them;
- matplotlib's plotting calls draw the data given to them without changing it;
- ``pickle``'s, ``cloudpickle``'s and ``json``'s ``dump`` and ``dumps`` write only into the
  file they are given: anything else passed to them (the object written) is left as it was;
- a ``sqlite3`` connection's ``execute`` of a query written out that only reads (``SELECT``
  or ``WITH``, without a statement that writes) leaves the connection as it was (its result
  is a new cursor): the query cell under a connection stays restored.

A call is recognised only through the object bound to its first name (``np`` in ``np.argsort``,
``forest`` in ``forest.predict``) at the end of the cell, and only when the cell binds that name
nowhere or exactly once before the call (see ``CallSite.resolvable``). Anything else stays a
possible change.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Mapping
from typing import Any

from nbcellar.analysis.names import CallSite

_MISSING = object()

SERIALISERS = {m: frozenset({"dump", "dumps"}) for m in ("pickle", "cloudpickle", "json")}

NUMPY_WRITERS = frozenset({"copyto", "put", "put_along_axis", "place", "putmask", "fill_diagonal"})
# Parameters through which a numpy function writes into an array it was given.
WRITING_PARAMETERS = frozenset({"out", "overwrite_input", "overwrite_a", "overwrite_b"})

PANDAS_READERS = frozenset(
    {
        "DataFrame", "Series", "Index", "Categorical", "concat", "merge", "merge_asof",
        "merge_ordered", "crosstab", "pivot_table", "pivot", "melt", "get_dummies", "cut", "qcut",
        "to_datetime", "to_numeric", "to_timedelta", "isna", "isnull", "notna", "notnull",
        "unique", "factorize", "value_counts", "read_sql", "read_sql_query", "read_sql_table",
    }
)  # fmt: skip

ESTIMATOR_READERS = frozenset(
    {
        "predict", "predict_proba", "predict_log_proba", "decision_function", "score",
        "score_samples", "transform", "inverse_transform", "get_params", "apply",
        "decision_path", "get_feature_names_out", "kneighbors", "staged_predict",
        "staged_predict_proba", "staged_decision_function",
    }
)  # fmt: skip
# ... and of those, the ones that never write into the data passed to them.
ESTIMATOR_DATA_READERS = ESTIMATOR_READERS - {"transform", "inverse_transform"}

PLOTTING = frozenset(
    {
        "plot", "scatter", "bar", "barh", "hist", "hist2d", "imshow", "matshow", "pcolormesh",
        "contour", "contourf", "fill_between", "fill_betweenx", "errorbar", "boxplot",
        "violinplot", "pie", "step", "stem", "stairs", "hexbin", "axhline", "axvline", "text",
        "annotate", "set_title", "set_xlabel", "set_ylabel", "set_xticks", "set_yticks",
        "set_xticklabels", "set_yticklabels", "set_xlim", "set_ylim", "suptitle", "title",
        "xlabel", "ylabel", "xticks", "yticks", "xlim", "ylim", "loglog", "semilogx",
        "semilogy",
    }
)  # fmt: skip


def leaves_unchanged(site: CallSite, namespace: Mapping[str, Any], value: Any = _MISSING) -> bool:
    """Whether the call ``site`` is known not to change the object it marks as changed
    (``value``, where known)."""
    if not site.resolvable:
        return False
    head, *path = site.callee.split(".")
    if not path or head not in namespace:
        return False
    owner: Any = None
    found: Any = namespace[head]
    for part in path:
        owner = found
        found = _attribute(owner, part)
        if found is _MISSING:
            return False
    name = path[-1]
    try:
        if isinstance(owner, types.ModuleType):
            if site.role == "argument" and name in SERIALISERS.get(owner.__name__, ()):
                return value is not _MISSING and not hasattr(value, "write")  # (not the file)
            return site.role == "argument" and _module_function_reads(owner, found, name, site)
        return _method_reads(owner, found, name, site)
    except Exception:  # an object nbcellar cannot look into: assume the worst
        return False


def _attribute(owner: Any, name: str) -> Any:
    """``owner.name`` without running any code (a property or ``__getattr__`` could)."""
    if isinstance(owner, types.ModuleType):
        return vars(owner).get(name, _MISSING)
    return inspect.getattr_static(owner, name, _MISSING)


def _module_of(value: Any) -> str:
    module = getattr(value, "__module__", None)
    return module if isinstance(module, str) else ""


def _module_function_reads(module: Any, function: Any, name: str, site: CallSite) -> bool:
    package = module.__name__.split(".")[0]
    if package == "numpy":
        return _numpy_reads(function, name, site)
    if package == "pandas":
        return name in PANDAS_READERS and _module_of(function).startswith("pandas")
    if module.__name__ == "matplotlib.pyplot":
        return name in PLOTTING
    return False


def _numpy_reads(function: Any, name: str, site: CallSite) -> bool:
    numpy = sys.modules["numpy"]
    if "**" in site.keywords or "out" in site.keywords:
        return False
    if isinstance(function, numpy.ufunc):
        return 0 <= site.positional <= int(function.nin)
    module = _module_of(function)
    if not module.startswith("numpy") or module.startswith("numpy.random"):
        return False
    if name in NUMPY_WRITERS or not callable(function):
        return False
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    for position, parameter in enumerate(parameters):
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.KEYWORD_ONLY):
            break  # what follows is keyword-only
        if parameter.name in WRITING_PARAMETERS and (
            site.positional < 0 or site.positional > position
        ):
            return False
    return not (WRITING_PARAMETERS & set(site.keywords))


def _method_reads(owner: Any, method: Any, name: str, site: CallSite) -> bool:
    if name == "execute" and _is_sqlite_connection(owner):
        return site.text is not None and reads_only(site.text)
    if site.role == "result":  # what the others return may be the object itself
        return False
    function = getattr(method, "fn", method)  # scikit-learn's available_if descriptor
    library = _module_of(function).split(".")[0]
    if library == "sklearn" and _is_estimator(owner):
        readers = ESTIMATOR_READERS if site.role == "owner" else ESTIMATOR_DATA_READERS
        return name in readers
    if library == "matplotlib" and site.role == "argument":
        return name in PLOTTING
    return False


def _is_estimator(value: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(value, base.BaseEstimator)


def _is_sqlite_connection(value: Any) -> bool:
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(value, sqlite3.Connection)


_WRITES = re.compile(
    r"\b(insert|update|delete|replace|create|drop|alter|attach|detach|vacuum|pragma|begin|"
    r"commit|rollback|savepoint|release|into|reindex|analyze)\b",
    re.IGNORECASE,
)


def reads_only(sql: str) -> bool:
    """Whether an SQL text is one query that only reads (``SELECT``, ``WITH``)."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL).strip().rstrip(";")
    words = text.split(None, 1)
    if not words or words[0].lower() not in ("select", "with") or ";" in text:
        return False
    return _WRITES.search(re.sub(r"'[^']*'", "''", text)) is None
