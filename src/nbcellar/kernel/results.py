"""The values a cell's displayhook showed (``_``, ``Out[n]``), kept so a restore gives them back.

A result is often a variable the cell wrote or read (``df`` as the last line, ``model.fit(X, y)``
returning ``model``): it is kept as a reference to that name, so after a restore ``_ is df`` as
after a run. A fresh value (``df.describe()``) is stored by value.

They are saved as a snapshot of their own, named by the entry's ``execute_result`` outputs,
until the cache engine saves them with the entry's values (see ``save_results``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nbcellar.cache.engine import is_ipython_name
from nbcellar.store.pickling import identity_free

RESULTS = "nbcellar:results"  # the snapshot variable holding the values, in order


def variables_of(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The variables a result may be or hold, which are then referred to by name."""
    return {
        n: v for n, v in namespace.items()
        if not is_ipython_name(n) and not identity_free(v)
    }  # fmt: skip


def save_results(
    store: Any, values: Sequence[Any], namespace: Mapping[str, Any], label: str
) -> tuple[str | None, str]:
    """Save ``values``; return the snapshot's id, or None and why they cannot be saved."""
    snapshot = store.save_namespace(
        {RESULTS: tuple(values)}, label=label, external=variables_of(namespace)
    )
    reason = snapshot.unserializable.get(RESULTS)
    if reason:
        return None, f"its result cannot be stored ({reason})"
    return str(snapshot.id), ""


def link_results(outputs: Sequence[dict[str, Any]], snapshot_id: str | None, lost: str) -> None:
    """Name the snapshot in each output that shows a result, or why its value is not kept."""
    for output in outputs:
        if output.get("output_type") == "execute_result" and isinstance(output.get("result"), int):
            if snapshot_id is not None:
                output["results"] = snapshot_id
            else:
                output["lost"] = lost


def result_lost(entry: Any) -> bool:
    """Whether the entry's cell showed a result whose value could not be kept: a restore
    runs the cell again for it (as for an unserializable variable), the rest as stored."""
    outputs = getattr(entry, "outputs", None) or ()
    return any(o.get("output_type") == "execute_result" and o.get("lost") for o in outputs)


def results_snapshot(outputs: Sequence[Mapping[str, Any]]) -> str | None:
    return next(
        (str(o["results"]) for o in outputs if o.get("output_type") == "execute_result"
         and isinstance(o.get("results"), str)),
        None,
    )  # fmt: skip


def load_results(
    store: Any, outputs: Sequence[Mapping[str, Any]], namespace: Mapping[str, Any]
) -> tuple[list[Any], str]:
    """The values the outputs' results showed, referring to ``namespace``'s variables; or an
    empty list and why they cannot be loaded."""
    snapshot_id = results_snapshot(outputs)
    if snapshot_id is None:
        return [], ""
    try:
        restored = store.restore(snapshot_id, [RESULTS], external=variables_of(namespace))
    except Exception as exc:  # the snapshot is gone or damaged
        return [], str(exc)
    if RESULTS in restored.missing or RESULTS not in restored.values:
        return [], restored.missing.get(RESULTS, "not in the store")
    values = restored.values[RESULTS]
    return (list(values), "") if isinstance(values, tuple) else ([], "not a list of results")


def has_results(store: Any, outputs: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the snapshot of the outputs' results is in the store (or none is needed)."""
    snapshot_id = results_snapshot(outputs)
    if snapshot_id is None:
        return True
    try:
        store.snapshot(snapshot_id)
    except Exception:
        return False
    return True
