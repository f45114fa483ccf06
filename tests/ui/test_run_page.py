"""The dashboard's run page beyond the record: a real run's checkpoints with their metrics, an
analysis over them, and the project module kept with the run (downloadable, nothing else)."""

from __future__ import annotations

from pathlib import Path

import pytest

import nbcellar
from tests.ui.test_server import client

pytestmark = pytest.mark.slow

TRAIN = """\
# %%
import numpy as np
import nbcellar
import helpers
w = np.zeros(3)
# %%
for epoch in nbcellar.resumable(range(4)):
    w = helpers.step(w)
    nbcellar.checkpoint(epoch, loss=float(1 / (epoch + 1)))
"""


def norm(w: object) -> dict[str, float]:
    return {"norm": float((w * w).sum())}  # type: ignore[operator]


def test_a_run_page_shows_checkpoints_analyses_and_kept_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "helpers.py").write_text("def step(w):\n    return w + 1.0\n")
    (tmp_path / "train.py").write_text(TRAIN)
    store = tmp_path / ".nbcellar"
    (run,) = nbcellar.run(tmp_path / "train.py", store=store).records
    nbcellar.runs(store=store)[run.id].analyze(norm)
    with client(store) as http:
        answer = http.get(f"/api/runs/{run.id}").json()
        kept = http.get(f"/runs/{run.id}/source/helpers.py")
        outside = http.get(f"/runs/{run.id}/source/..%2F..%2F..%2Findex.sqlite")
    assert [c["step"] for c in answer["checkpoints"]] == [0, 1, 2, 3]
    assert [c["metrics"]["loss"] for c in answer["checkpoints"]] == [1.0, 0.5, 1 / 3, 0.25]
    assert answer["checkpoints"][0]["names"] == ["epoch", "w"]
    (analysis,) = answer["analyses"]
    rows = sorted(analysis["rows"], key=lambda r: r["step"])
    assert [r["norm"] for r in rows] == [3.0, 12.0, 27.0, 48.0]  # w = k + 1 in each of 3
    assert answer["sources"] == ["helpers.py"]
    assert kept.text == "def step(w):\n    return w + 1.0\n"
    assert outside.status_code == 404
