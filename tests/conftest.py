"""Shared fixtures and the ``--bench`` switch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"

CORPUS = DATA / "notebooks"


def pytest_configure(config: pytest.Config) -> None:
    """The suite drives more than a thousand kernels from this one process (a user's process
    drives a few): ZMQ's default of 1,023 sockets per context was reached once in CI, as
    "Too many open files" in a kernel client's heartbeat thread, while open descriptors stayed
    under 200. Both of jupyter_client's contexts get a higher cap."""
    import zmq
    import zmq.asyncio

    for context in (zmq.Context.instance(), zmq.asyncio.Context.instance()):
        context.set(zmq.MAX_SOCKETS, 16_384)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench", action="store_true", help="also run tests marked 'bench' (benchmarks/)"
    )
    parser.addoption(
        "--long",
        action="store_true",
        help="also run tests marked 'long' (clusters killed mid-run, runs outliving clients)",
    )
    parser.addoption(
        "--patterns",
        action="store_true",
        help="also run tests marked 'patterns' (every notebook pattern, every way)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    left_out = {m for m in ("bench", "long", "patterns") if not config.getoption(f"--{m}")}
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


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on loopback for the session (each test makes buckets of its own)."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"moto did not start: {log.read_text()}") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def s3_bucket(s3_endpoint: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
              tmp_path: Path) -> str:  # fmt: skip
    """A new bucket on the moto server, its name; the S3 endpoint and fake credentials in the
    environment (kernels inherit them), and the user's cache and config folders in tmp_path."""
    import re

    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "NBCELLAR_STORE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    import uuid

    bucket = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[-40:].strip("-")
    bucket = f"t-{uuid.uuid4().hex[:8]}-{bucket}".strip("-")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket
