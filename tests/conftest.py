"""Shared fixtures and the ``--bench`` switch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

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


def nbcellar_process(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """``nbcellar ARGS`` in a process of its own (what its kernels write to the terminal shows
    too); output captured unless ``options`` say where it goes."""
    if "stdout" not in options and "stderr" not in options:
        options["capture_output"] = True
    code = "from nbcellar.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], text=True, check=False,
                          timeout=120, **options)  # fmt: skip
