"""``nbcellar.inherit`` from a running kernel, side by side with the dill session round trip.

A real ``jupyter server`` (loopback, token, its own runtime folder) runs ``base.ipynb`` in a
kernel whose namespace holds four float64 arrays of random data totalling ``--gib`` GiB, a
1,000,000-row DataFrame (float, int and string columns), a function, a class and an instance of
it. The child is this process. Measured in the same run, each the median of ``--repeats``:

- nbcellar, first inherit: ``inherit("base.ipynb")`` until the child has every variable (the
  base kernel saves into an empty store, the child loads memory-mapped);
- nbcellar, again: the same call with nothing changed in the base (the base re-hashes, writes
  nothing new; the child loads again);
- nbcellar, base caching: a second base kernel that ran ``%load_ext nbcellar`` before the same
  cell (new random data each repeat), its cell's values written to the project's store while it
  went on (waited for before the clock starts): the first inherit only hashes them;
- dill: what inheriting meant before nbcellar: ``dill.dump_module`` of the base kernel's
  namespace to a file, asked through jupyter_client, then ``dill.load_module`` in a child
  process (a fresh one each time, its imports done before its clock starts);
- for both, the time until every byte of the arrays was read once (a sum over each).

    python benchmarks/bench_inherit.py              # 2 GiB (about a minute)
    python benchmarks/bench_inherit.py --quick      # 64 MiB: a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import machine, scratch

SETUP = """
import numpy as np, pandas as pd
rng = np.random.default_rng({seed})
a, b, c, d = (rng.random({n}) for _ in range(4))
rows = 1_000_000 if {n} > 1_000_000 else 10_000
frame = pd.DataFrame({{"x": rng.random(rows), "i": np.arange(rows),
                      "s": pd.Series(np.arange(rows) % 97).astype(str)}})

def score(v):
    return float(v.sum()) * weight

weight = 0.5

class Model:
    def __init__(self, w):
        self.w = w

model = Model(3)
"""
NAMES = {
    "a",
    "b",
    "c",
    "d",
    "frame",
    "score",
    "weight",
    "Model",
    "model",
    "np",
    "pd",
    "rng",
    "rows",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, runtime: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A jupyter server on a free loopback port; its process, url and token."""
    token, port = secrets.token_hex(16), free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime))
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            request(url, token, "api/status")
            return process, url, token
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the jupyter server did not start")


def request(url: str, token: str, path: str, body: Any = None, method: str = "GET") -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", f"token {token}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def base_client(runtime: Path, kernel_id: str) -> Any:
    from jupyter_client.blocking.client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return client


def execute(client: Any, code: str) -> float:
    """Run ``code`` in the base kernel; seconds until its reply."""
    began = time.perf_counter()
    reply = client.execute_interactive(code, timeout=600, output_hook=lambda msg: None)
    if reply["content"]["status"] != "ok":
        raise SystemExit(f"the base kernel failed: {reply['content'].get('evalue')}")
    return time.perf_counter() - began


DILL_CHILD = """
import sys, time
import dill, numpy, pandas
began = time.perf_counter()
dill.load_module(sys.argv[1])
usable = time.perf_counter() - began
total = sum(float(globals()[n].sum()) for n in "abcd")
print(usable, time.perf_counter() - began)
"""


def dill_child(dump: Path) -> tuple[float, float]:
    """``dill.load_module`` in a fresh process (its imports done before the clock starts):
    seconds until every variable is there, and until every array byte was read."""
    done = subprocess.run(
        [sys.executable, "-c", DILL_CHILD, str(dump)], capture_output=True, text=True, check=True
    )
    usable, read = done.stdout.split()
    return float(usable), float(read)


def read_all(namespace: dict[str, Any]) -> float:
    return float(sum(namespace[n].sum() for n in "abcd"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="GiB of arrays in the base")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 MiB, one repeat")
    parser.add_argument("--dir", help="where the scratch folders go (default: the system's)")
    args = parser.parse_args(argv)
    if args.quick:
        args.gib, args.repeats = 1 / 16, 1
    n = int(args.gib * (1 << 30) / 8 / 4)
    print(f"machine: {machine()}")
    print(f"base namespace: 4 arrays of {n:,} float64 ({args.gib:g} GiB), a DataFrame, a "
          "function, a class and an instance")  # fmt: skip
    with scratch(args.dir) as folder:
        runtime = folder / "runtime"
        runtime.mkdir()
        os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
        import nbformat

        import nbcellar

        root = folder / "project"
        root.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nbformat.write(nb, root / "base.ipynb")
        server, url, token = start_server(root, runtime)
        try:
            session = request(url, token, "api/sessions", method="POST", body={
                "path": "base.ipynb", "type": "notebook", "name": "base.ipynb",
                "kernel": {"name": "python3"},
            })  # fmt: skip
            client = base_client(runtime, session["kernel"]["id"])
            execute(client, SETUP.format(n=n, seed=0))
            os.chdir(root)
            first, again, dill_times, read_nb, read_dill = [], [], [], [], []
            for repeat in range(args.repeats):
                store = folder / f"store-{repeat}" / ".nbcellar"
                for times in (first, again):
                    child: dict[str, Any] = {}
                    began = time.perf_counter()
                    got = nbcellar.inherit("base.ipynb", into=child, store=store)
                    times.append(time.perf_counter() - began)
                    if not set(child) >= NAMES or "running kernel" not in got.source:
                        raise SystemExit(f"inherit gave {sorted(child)} from {got.source}")
                began = time.perf_counter()
                read_all(child)
                read_nb.append(first[-1] + time.perf_counter() - began)
                dump = folder / f"session-{repeat}.pkl"
                began = time.perf_counter()
                execute(client, f"__import__('dill').dump_module({str(dump)!r}, "
                                "module=get_ipython().user_module, refimported=True)")  # fmt: skip
                dumped = time.perf_counter() - began
                load, read = dill_child(dump)
                dill_times.append(dumped + load)
                read_dill.append(dumped + read)
                dump.unlink()
            client.stop_channels()
            request(url, token, f"api/sessions/{session['id']}", method="DELETE")
            nbformat.write(nb, root / "cached.ipynb")
            session = request(url, token, "api/sessions", method="POST", body={
                "path": "cached.ipynb", "type": "notebook", "name": "cached.ipynb",
                "kernel": {"name": "python3"},
            })  # fmt: skip
            client = base_client(runtime, session["kernel"]["id"])
            execute(client, "%load_ext nbcellar")
            cached = []
            for repeat in range(args.repeats):
                execute(client, SETUP.format(n=n, seed=repeat + 1))
                # (a cell of its own, which must run: the same source would be restored)
                execute(client, "# nbcellar: nocache\nget_ipython().nbcellar.flush()")
                child = {}
                began = time.perf_counter()
                got = nbcellar.inherit("cached.ipynb", into=child)
                cached.append(time.perf_counter() - began)
                if not set(child) >= NAMES or "running kernel" not in got.source:
                    raise SystemExit(f"inherit gave {sorted(child)} from {got.source}")
                del child
            client.stop_channels()
            request(url, token, f"api/sessions/{session['id']}", method="DELETE")
        finally:
            server.terminate()
            server.wait(timeout=30)
    med = statistics.median
    rows = [
        ("nbcellar.inherit, first (empty store)", med(first), med(read_nb)),
        ("nbcellar.inherit, again (nothing changed)", med(again), None),
        ("nbcellar.inherit, first, base caching its cells", med(cached), None),
        ("dill.dump_module + load_module via jupyter_client", med(dill_times), med(read_dill)),
    ]
    print(f"\n{'':52}{'every variable [s]':>20}{'every byte read [s]':>21}")
    for name, usable, read in rows:
        print(f"{name:52}{usable:>20.3f}{'' if read is None else f'{read:.3f}':>21}")
    ratio = med(dill_times) / med(first)
    print(
        f"\nratio dill / nbcellar (first inherit, every variable): {ratio:.1f}x; again: "
        f"{med(dill_times) / med(again):.1f}x; first from a caching base: "
        f"{med(dill_times) / med(cached):.1f}x; every byte read: "
        f"{med(read_dill) / med(read_nb):.1f}x"
    )
    for name, seconds in (
        ("first inherit, base without nbcellar", med(first)),
        ("first inherit, base caching its cells", med(cached)),
    ):
        met = med(dill_times) / seconds >= 20 and seconds < 1.0
        print(f"target >= 20x and under 1 s, {name}: {'yes' if met else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
