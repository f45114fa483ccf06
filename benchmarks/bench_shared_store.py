"""The demo grid with its store on S3 (a moto server on loopback) against a local folder.

The demo project's grid (``src/nbcellar/demo/project``: 12 runs of ``digits.ipynb``, two at a
time) runs with ``nbcellar run digits.ipynb --grid grid.yaml -j 2 --store ...``, each time on a
fresh copy with an empty store:

- cold: nothing cached (every run's cells are stored, and for S3 published: blobs, one journal
  entry per record, the run folders);
- warm: the same grid again (everything restored, no kernel started);
- S3, another machine: the same grid again from another cache folder, as a second machine
  would run it (every record comes from the journal, every blob and run file is fetched and
  checked), against the local warm run.

Each is repeated and the medians printed, with the ratio S3 / local (target <= 1.5x). moto
answers on loopback in about a millisecond where real S3 takes 10-50 ms a request, so the
ratio measures nbcellar's own work for a shared store (signing, checking, requests made), not a
network.

    python benchmarks/bench_shared_store.py            # 12-run grid, 3 repetitions
    python benchmarks/bench_shared_store.py --quick    # 4-run grid, 1 repetition
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_demo import WARM_UP, fresh_copy, grid_runs
from common import machine, scratch

JOBS = 2


@contextmanager
def moto_server(folder: Path) -> Iterator[str]:
    """A moto S3 server on a free loopback port; its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(folder / "moto.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("moto did not start (see moto.log)") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


def nbcellar(folder: Path, env: dict[str, str], *args: str) -> float:
    """Seconds of ``nbcellar ARGS`` in ``folder``."""
    exe = Path(sys.executable).with_name("nbcellar")
    start = time.perf_counter()
    proc = subprocess.run([str(exe), *args], cwd=folder, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"nbcellar {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def grid(folder: Path, env: dict[str, str], store: str) -> float:
    return nbcellar(folder, env, "run", "digits.ipynb", "--grid", "grid.yaml", "-j", str(JOBS),
                    "--store", store)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 4-run grid, one repetition")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    options = parser.parse_args()
    repeat = options.repeat or (1 if options.quick else 3)
    print(f"machine: {machine()}")
    with scratch(options.dir, "bench-shared-store-") as parent, moto_server(parent) as endpoint:
        import boto3

        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NBCELLAR_"))}
        env |= {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                "XDG_CONFIG_HOME": str(parent / "config")}  # fmt: skip
        subprocess.run([sys.executable, "-c", WARM_UP], check=True)
        runs = grid_runs(fresh_copy(parent, "plan", options.quick))
        print(f"the demo grid: {len(runs)} runs, -j {JOBS}, {repeat} repetitions, medians")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
        times: dict[str, list[float]] = {"local cold": [], "local warm": [], "s3 cold": [],
                                         "s3 warm": [], "s3 other": []}  # fmt: skip
        for i in range(repeat):
            folder = fresh_copy(parent, f"local-{i}", options.quick)
            local_env = env | {"XDG_CACHE_HOME": str(parent / f"cache-local-{i}")}
            times["local cold"].append(grid(folder, local_env, str(folder / ".nbcellar")))
            times["local warm"].append(grid(folder, local_env, str(folder / ".nbcellar")))

            bucket = f"bench-{i}-{os.getpid()}"
            s3.create_bucket(Bucket=bucket)
            url = f"s3://{bucket}/demo"
            folder = fresh_copy(parent, f"s3-{i}", options.quick)
            first = env | {"XDG_CACHE_HOME": str(parent / f"cache-a-{i}")}
            nbcellar(folder, first, "store", "init", "--shared", url)
            times["s3 cold"].append(grid(folder, first, url))
            times["s3 warm"].append(grid(folder, first, url))
            second = env | {"XDG_CACHE_HOME": str(parent / f"cache-b-{i}")}
            times["s3 other"].append(grid(folder, second, url))
        medians = {name: statistics.median(found) for name, found in times.items()}
        for name, seconds in medians.items():
            every = ", ".join(f"{s:.2f}" for s in times[name])
            print(f"   {name:10s} {seconds:7.2f} s  (each: {every})")
        for s3_phase, local_phase in (("cold", "cold"), ("warm", "warm"), ("other", "warm")):
            ratio = medians[f"s3 {s3_phase}"] / medians[f"local {local_phase}"]
            met = "yes" if ratio <= 1.5 else "NO"
            print(f"   ratio s3 {s3_phase} / local {local_phase}: {ratio:.2f}x "
                  f"(target <= 1.5x: {met})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
