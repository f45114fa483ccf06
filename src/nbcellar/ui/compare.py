"""Selected runs compared, as the dashboard's compare page shows them (and ``/api/compare``
answers): nbcellar's comparisons (:mod:`nbcellar.runs.comparison`) over the runs' records and
logs as they were shown when logged, so nothing is unpickled.

- ``scalars``: each number or short string logged or shown by a tagged cell, one value per run,
  with the best highlighted (lowest for losses, errors and times; highest otherwise);
- ``sections``: dicts as key x run tables, DataFrames, images, figures and HTML side by side
  (HTML in sandboxed frames, a table's HTML rebuilt from its table tags alone);
- ``histories``: every value logged more than once, a series per run (step on x), at most
  :data:`POINTS` points a series (largest-triangle-three-buckets, as charts downsample);
- ``parallel``: the parameters that differ and each numeric value, one line per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

POINTS = 1000


def lttb(points: Sequence[tuple[float, float]], most: int = POINTS) -> list[tuple[float, float]]:
    """``points`` brought down to ``most`` that keep the shape of the line (Steinarsson's
    largest-triangle-three-buckets: the first and last kept, then from each bucket the point
    making the largest triangle with the one kept before and the next bucket's mean)."""
    if len(points) <= most or most < 3:
        return list(points)
    kept = [points[0]]
    size = (len(points) - 2) / (most - 2)
    before = points[0]
    for bucket in range(most - 2):
        start = int(bucket * size) + 1
        end = int((bucket + 1) * size) + 1
        after = points[end : int((bucket + 2) * size) + 1] or [points[-1]]
        mean_x = sum(p[0] for p in after) / len(after)
        mean_y = sum(p[1] for p in after) / len(after)
        chosen = max(
            points[start:end],
            key=lambda p: abs(
                (before[0] - mean_x) * (p[1] - before[1])
                - (before[0] - p[0]) * (mean_y - before[1])
            ),
        )
        kept.append(chosen)
        before = chosen
    kept.append(points[-1])
    return kept


def compare(store_root: Path, records: Sequence[Any]) -> dict[str, Any]:
    """The comparison of ``records`` (run records, in the order given) as JSON."""
    from nbcellar.runs.comparison import Comparison, number, varied_params
    from nbcellar.runs.runset import RecordedRun

    runs = [RecordedRun(r, store_root, unpickle=False) for r in records]
    varied = varied_params(runs)
    names = list(dict.fromkeys(k for r in runs for k in r.names()))
    labels = [", ".join(f"{p}={r.params.get(p)!r}" for p in varied) or r.id for r in runs]
    scalars: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    histories: list[dict[str, Any]] = []
    for key in names:
        comparison = Comparison(key, runs)
        if comparison.kind in ("scalar", "missing"):
            values = [
                v if number(v) is not None or isinstance(v, str | bool) else None
                for v in comparison.values
            ]
            scalars.append({"key": key, "values": values, "best": sorted(comparison.best),
                            "lower_is_better": comparison.lower_is_better})  # fmt: skip
        else:
            sections.append({"key": key, "kind": comparison.kind, "html": comparison.body_html()})
        if comparison.has_history:
            series = []
            for i, history in enumerate(comparison.histories):
                points = [
                    (float(step), n)
                    for step, v in enumerate(history, start=1)
                    if (n := number(v)) is not None
                ]
                if len(points) > 1:
                    series.append({"run": runs[i].id, "label": labels[i],
                                   "points": lttb(points)})  # fmt: skip
            histories.append({"key": key, "series": series})
    numeric = [s["key"] for s in scalars if any(number(v) is not None for v in s["values"])]
    parallel = {
        "params": varied,
        "metrics": numeric,
        "rows": [
            [r.params.get(p) for p in varied]
            + [s["values"][i] for s in scalars if s["key"] in numeric]
            for i, r in enumerate(runs)
        ],
    }
    return {
        "runs": [
            {"id": r.id, "label": labels[i], "status": r.status, "params": dict(r.params)}
            for i, r in enumerate(runs)
        ],
        "varied": varied,
        "scalars": scalars,
        "sections": sections,
        "histories": histories,
        "parallel": parallel,
    }
