"""Running cells in real kernels and reading what a frontend gets on IOPub, message by message.

A kernel here is started as Jupyter starts one (ipykernel watching file descriptors 1 and 2:
the variable pytest sets to stop that is left out of its environment).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ADDRESS = re.compile(r"0x[0-9a-f]{6,16}")
# Not what a cell showed: the request's own bookkeeping.
_BOOKKEEPING = {"status", "execute_input"}


@dataclass
class CellMessages:
    """What one cell did as a frontend sees it: its IOPub messages and the reply."""

    messages: list[dict[str, Any]]
    status: str  # the reply's: ok / error
    cache: dict[str, Any] | None  # nbcellar's word in the reply metadata (None without it)


def kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)  # (ipykernel would not watch fds 1 and 2)
    return env


def run_kernel(
    cwd: Path, cells: Sequence[str], cached: bool, tags: Sequence[Sequence[str]] = ()
) -> list[CellMessages]:
    """Start a kernel in ``cwd``, run ``cells`` (with nbcellar loaded if ``cached``), stop it
    as a restart does; what each cell sent."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=kernel_env())
    done: list[CellMessages] = []
    try:
        if cached:
            quiet(kc, "get_ipython().extension_manager.load_extension('nbcellar')")
        for number, code in enumerate(cells):
            cell_tags = list(tags[number]) if number < len(tags) else []
            if cached and cell_tags:
                quiet(kc, f"get_ipython().nbcellar.next_tags = {cell_tags!r}")
            seen: list[dict[str, Any]] = []

            def keep(msg: dict[str, Any], seen: list[dict[str, Any]] = seen) -> None:
                if msg["msg_type"] not in _BOOKKEEPING:
                    seen.append(msg)

            reply = kc.execute_interactive(code, timeout=120, output_hook=keep)
            done.append(
                CellMessages(seen, reply["content"]["status"], reply["metadata"].get("nbcellar"))
            )
        if cached:
            quiet(kc, "get_ipython().nbcellar.flush()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return done


def quiet(kc: Any, code: str) -> None:
    reply = kc.execute_interactive(code, silent=True, store_history=False, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]


def normalised(cells: Sequence[CellMessages]) -> list[list[tuple[str, Any]]]:
    """Each cell's messages as (type, content): ids the kernel makes up (display ids, comm
    ids) numbered in order of appearance, memory addresses in results' text left out;
    consecutive stream messages of one stream joined (how a stream is cut in messages depends
    on when the kernel's IOPub thread flushes it, in any kernel)."""
    names: dict[str, str] = {}

    def renamed(value: str) -> str:
        return names.setdefault(value, f"id{len(names)}")

    shown: list[list[tuple[str, Any]]] = []
    for cell in cells:
        messages: list[tuple[str, Any]] = []
        for msg in cell.messages:
            kind, content = msg["msg_type"], dict(msg["content"])
            if "transient" in content and content["transient"].get("display_id"):
                content["transient"] = {"display_id": renamed(content["transient"]["display_id"])}
            if "comm_id" in content:
                content["comm_id"] = renamed(content["comm_id"])
            if "text/plain" in content.get("data", {}):  # (a repr's memory address)
                data = dict(content["data"])
                data["text/plain"] = _ADDRESS.sub("0x...", data["text/plain"])
                content["data"] = data
            if kind == "stream" and messages and messages[-1][0] == "stream":
                last = messages[-1][1]
                if last["name"] == content["name"]:
                    messages[-1] = ("stream", {**last, "text": last["text"] + content["text"]})
                    continue
            messages.append((kind, content))
        shown.append(messages)
    return shown


def statuses(cells: Sequence[CellMessages]) -> list[str | None]:
    return [(c.cache or {}).get("status") for c in cells]


@dataclass
class Comparison:
    plain: list[CellMessages]
    first: list[CellMessages]
    restored: list[CellMessages]


def three_ways(cwd: Path, cells: Sequence[str], tags: Sequence[Sequence[str]] = ()) -> Comparison:
    """The cells in a kernel without nbcellar, then with it (recorded), then again after a
    restart (restored)."""
    plain = run_kernel(cwd, cells, cached=False)
    first = run_kernel(cwd, cells, cached=True, tags=tags)
    restored = run_kernel(cwd, cells, cached=True, tags=tags)
    return Comparison(plain, first, restored)
