"""``%load_ext nbcellar`` in a real IPython kernel driven through jupyter_client, as a
frontend (JupyterLab, VS Code) drives it: restart, then every cell comes back restored with the
same outputs on the wire."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CELLS = [
    "import time\ntime.sleep(1)\nx = [1, 2, 3]\nprint('made', x)",
    "from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))\nsum(x)",
]


def run_session(cwd: Path) -> list[tuple[Any, list[Any]]]:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=dict(os.environ))
    results = []
    try:
        for code in ["%load_ext nbcellar", *CELLS]:
            shown: list[Any] = []

            def keep(msg: dict[str, Any], shown: list[Any] = shown) -> None:
                if msg["msg_type"] in ("stream", "display_data", "execute_result"):
                    content = msg["content"]
                    shown.append((msg["msg_type"], content.get("text"), content.get("data")))

            reply = kc.execute_interactive(code, timeout=60, output_hook=keep)
            assert reply["content"]["status"] == "ok"
            results.append((reply["metadata"].get("nbcellar"), shown))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)  # a restart: pending writes land as the kernel exits
    return results[1:]


def test_restart_restores_cells_with_the_same_messages(tmp_path: Path) -> None:
    first = run_session(tmp_path)
    again = run_session(tmp_path)
    assert [m["status"] for m, _ in first] == ["ran", "ran"]
    assert [m["status"] for m, _ in again] == ["restored", "restored"]
    assert [shown for _, shown in again] == [shown for _, shown in first]
    assert again[0][0]["saved_seconds"] >= 1.0
