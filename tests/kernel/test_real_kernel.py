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


DEFINING = [
    "%load_ext nbcellar",
    "scale = 2",
    "def check(v):\n    limit = 10 * scale\n    if v > limit:\n"
    "        raise ValueError(f'{v} is over {limit}')\n    return v\n\nchecks = {'check': check}",
]


def traceback_after(cwd: Path, code: str) -> tuple[list[Any], list[str]]:
    """Run the defining cells in a new kernel, then ``code``; the cells' nbcellar metadata and
    the traceback ``code`` raised, as a frontend shows it (colours taken out)."""
    import re

    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=dict(os.environ))
    try:
        statuses = []
        for cell in DEFINING:
            reply = kc.execute_interactive(cell, timeout=60, output_hook=lambda msg: None)
            statuses.append(reply["metadata"].get("nbcellar"))
        shown: list[str] = []

        def keep(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "error":
                shown.extend(
                    re.sub(r"\x1b\[[0-9;]*m", "", line) for line in msg["content"]["traceback"]
                )

        reply = kc.execute_interactive(code, timeout=60, output_hook=keep)
        assert reply["content"]["status"] == "error"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    return statuses[1:], shown


def test_a_restored_function_raising_shows_its_cell_lines_after_a_restart(
    tmp_path: Path,
) -> None:
    first, defined = traceback_after(tmp_path, "checks['check'](100)")
    again, restored = traceback_after(tmp_path, "checks['check'](100)")
    assert [m["status"] for m in first] == ["ran", "ran"]
    assert [m["status"] for m in again] == ["restored", "restored"]
    assert restored == defined  # "Cell In[3], line 4, in check(v)" and the lines around it
    assert any("raise ValueError(f'{v} is over {limit}')" in part for part in restored)
