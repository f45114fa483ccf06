"""Shared fixtures and the ``--bench`` switch."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "notebooks"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench", action="store_true", help="also run tests marked 'bench' (benchmarks/)"
    )
    parser.addoption(
        "--patterns",
        action="store_true",
        help="also run tests marked 'patterns' (every notebook pattern, every way)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    left_out = {m for m in ("bench", "patterns") if not config.getoption(f"--{m}")}
    if not left_out:
        return
    selected = [i for i in items if not left_out & set(i.keywords)]
    deselected = [i for i in items if left_out & set(i.keywords)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(autouse=True)
def private_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets a store of its own unless it says where one is."""
    root = tmp_path_factory.mktemp("store") / ".nbcellar"
    monkeypatch.setenv("NBCELLAR_STORE", str(root))
    return root


def corpus_notebooks() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".ipynb", ".py"))


@pytest.fixture
def corpus() -> Path:
    return CORPUS
