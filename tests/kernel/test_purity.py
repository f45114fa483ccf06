"""Calls known to leave their objects alone are not fingerprinted; the others still are, and a
change they make is recorded and restored."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nbcellar.cache.engine as engine
from tests.kernel.conftest import Session

SETUP = """\
import io
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler
X = np.arange(20.0).reshape(10, 2)
y = X @ np.array([1.0, 2.0])
a = np.arange(5.0)
b = np.zeros(5)
model = LinearRegression().fit(X, y)
scaler = StandardScaler(copy=False).fit(X)
buffer = io.BytesIO()
"""


@pytest.fixture
def hashed(session: Session, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names fingerprinted after each cell (to see whether it changed them)."""
    names: list[str] = []
    original = engine.fingerprint_holding

    def recording(value: Any, name: str = "") -> Any:
        names.append(name)
        return original(value, name)

    monkeypatch.setattr(engine, "fingerprint_holding", recording)
    session.run(SETUP)
    names.clear()
    return names


@pytest.mark.parametrize(
    ("cell", "checked"),
    [
        ("order = np.argsort(a)", set()),
        ("total = np.sum(a)\nlow, high = np.percentile(a, [5, 95])", set()),
        ("c = np.add(a, 1)", set()),
        ("np.add(a, 1, out=b)", {"a", "b"}),  # out=: written
        ("np.add(a, 1, b)", {"a", "b"}),  # a ufunc's third positional argument is its out
        ("np.cumsum(a, 0, None, b)", {"a", "b"}),  # so is cumsum's fourth
        ("np.copyto(b, a)", {"a", "b"}),
        ("np.random.shuffle(b)", {"b"}),
        ("pred = model.predict(X)\nr2 = model.score(X, y)", set()),
        ("model.fit(X, y)", {"model", "X", "y"}),
        ("Z = scaler.transform(X)", {"X"}),  # copy=False: transform may write into X
        ("fig, ax = plt.subplots()\nax.hist(a)\nax.plot(a, b)", set()),
        ("fig, ax = plt.subplots()\nfig.savefig(buffer)", {"buffer"}),
        ("ax = plt.gca()\nax = plt.gca()\nax.plot(a)", {"a"}),  # bound twice: unknown
    ],
)
def test_only_calls_that_may_change_an_object_have_it_fingerprinted(
    session: Session, hashed: list[str], cell: str, checked: set[str]
) -> None:
    run = session.run(cell)
    assert set(hashed) - set(run.outcome.written if run.outcome else ()) == checked


def test_a_method_overridden_in_the_notebook_is_not_trusted(
    session: Session, hashed: list[str]
) -> None:
    session.run(
        "class Counting(LinearRegression):\n"
        "    def predict(self, X):\n"
        "        self.calls = getattr(self, 'calls', 0) + 1\n"
        "        return super().predict(X)\n"
        "counting = Counting().fit(X, y)"
    )
    hashed.clear()
    run = session.run("pred = counting.predict(X)")
    assert run.outcome is not None
    assert "counting" in hashed
    assert run.outcome.mutated == ("counting",)


def test_changes_made_through_calls_are_restored_after_a_restart(session: Session) -> None:
    cells = [
        SETUP,
        "np.add(a, 10, out=b)",
        "Z = scaler.transform(X)",  # scales X in place
        "model.fit(X, y * 2)",
        "fig, ax = plt.subplots()\nax.plot(a)\nfig.savefig(buffer, format='png')",
        "summary = (b.sum(), X.sum(), float(model.coef_.sum()), buffer.tell() > 0)",
    ]
    fresh = session.run_all(cells)
    assert all(r.success for r in fresh)
    expected = session.ns["summary"]
    session.start()
    session.runs.clear()
    again = session.run_all(cells)
    assert [r.outcome.status for r in again if r.outcome] == ["restored"] * len(cells)
    assert session.ns["summary"] == expected
    np.testing.assert_array_equal(session.ns["b"], np.arange(5.0) + 10)
    assert abs(session.ns["X"].mean()) < 1e-12  # scaled in place, and restored scaled
    assert session.ns["buffer"].getvalue()[:4] == b"\x89PNG"  # the figure written into it
