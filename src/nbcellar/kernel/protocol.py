"""What a run's parent process and the nbcellar extension in its kernel say to each other.

Everything here travels over Jupyter's own channels; nbcellar adds no socket. A parent (``nbcellar
run``, a worker of a cluster executor, ``nbcellar.inherit``) talks to the extension in three ways:

**Environment variables** of the kernel process, set when it starts:

- ``NBCELLAR_STORE`` (:data:`STORE_VARIABLE`): the store the cell cache uses (the extension
  finds it as every nbcellar command does: see nbcellar.store.location);
- ``NBCELLAR_ARTIFACTS`` (:data:`ARTIFACTS_VARIABLE`): the folder ``nbcellar.artifacts()``
  returns during a recorded run (set by a silent command, as the run's id is known then);
- ``NBCELLAR_RUN`` (:data:`RUN_VARIABLE`): the id of the run being recorded, the series its
  checkpoints belong to (see nbcellar.checkpointing); ``NBCELLAR_RESUME``
  (:data:`RESUME_VARIABLE`): the run whose checkpoints a resumed run continues from (both set
  by a silent command);
- ``NBCELLAR_FORK=0`` (read by the parent only): start kernels without the fork server.

**Silent commands**, executed with ``silent=True, store_history=False`` (no execution count,
no history, no output on IOPub): the functions below build their code. The extension is the
``nbcellar`` attribute of the kernel's shell (``get_ipython().nbcellar``).

**Replies**: each ``execute_reply`` of a cell carries ``metadata["nbcellar"]`` (see
:func:`cell_outcome`): whether the cell ran or was restored, its cache key, its time and the
time its restore saved, and why a cell that ran was not stored. User expressions return JSON
text (what the parent reads with :func:`expression_value`).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

STORE_VARIABLE = "NBCELLAR_STORE"
ARTIFACTS_VARIABLE = "NBCELLAR_ARTIFACTS"
FORK_VARIABLE = "NBCELLAR_FORK"
RUN_VARIABLE = "NBCELLAR_RUN"
RESUME_VARIABLE = "NBCELLAR_RESUME"
REPLY_METADATA = "nbcellar"  # the key of execute_reply metadata the extension fills
EXTENSION = "get_ipython().nbcellar"


# -- commands (the parent sends them silently, in this order) ------------------------------


def load_extension() -> str:
    """Load the extension (quietly: a pooled kernel may have loaded it already)."""
    return "get_ipython().extension_manager.load_extension('nbcellar')"


def set_artifacts(folder: str) -> str:
    """Where ``nbcellar.artifacts()`` points during this run."""
    return f"__import__('os').environ[{ARTIFACTS_VARIABLE!r}] = {folder!r}"


def set_run(run_id: str, resume_from: str | None = None) -> str:
    """The run being recorded (and the one it resumes), for its checkpoints."""
    code = f"__import__('os').environ[{RUN_VARIABLE!r}] = {run_id!r}"
    if resume_from:
        code += f"; __import__('os').environ[{RESUME_VARIABLE!r}] = {resume_from!r}"
    return code


def parent_reports_failures() -> str:
    """The parent says what could not be stored (one line per run): the extension does not
    print it into the cells."""
    return f"{EXTENSION}.tell_failures = False"


def next_cell_tags(tags: Sequence[str]) -> str:
    """The tags of the cell about to run (a kernel is not told a cell's metadata)."""
    return f"{EXTENSION}.next_tags = {json.dumps(list(tags))}"


def save_log(run_id: str) -> str:
    """Keep what the kernel logged (nbcellar.log) with the run's record."""
    return f"{EXTENSION}.save_log({run_id!r})"


def flush() -> str:
    """Wait until the values of the cells that ran are written to the store."""
    return f"{EXTENSION}.flush()"


# -- user expressions (answers as JSON text) -----------------------------------------------


def requirements() -> str:
    """What the run's cells imported, as ``{distribution: version}`` (JSON)."""
    return f"{EXTENSION}.requirements()"


def write_failures() -> str:
    """After :func:`flush`: why values could not be stored since the last ask (a JSON list)."""
    return f"{EXTENSION}.write_failures()"


def expression_value(content: Mapping[str, Any], name: str) -> Any:
    """The JSON an expression of a silent request returned, read back (None if it failed)."""
    found = content.get("user_expressions", {}).get(name, {})
    try:
        return json.loads(ast.literal_eval(found["data"]["text/plain"]))
    except (KeyError, ValueError, SyntaxError, TypeError):
        return None


# -- replies -------------------------------------------------------------------------------


def cell_outcome(
    status: str,
    key: str | None,
    seconds: float,
    saved_seconds: float,
    reason: str = "",
    *,
    not_stored: str = "",
) -> dict[str, Any]:
    """What an execute_reply's ``metadata["nbcellar"]`` holds for one cell: ``status`` (ran or
    restored), ``key`` (its cache key), ``seconds``, ``saved_seconds``, ``reason``: why a
    cell that ran was not stored (it always runs), and ``not_stored``: why the cache failed to
    keep it this time (a full disk)."""
    found: dict[str, Any] = {
        "status": status,
        "key": key,
        "seconds": round(seconds, 6),
        "saved_seconds": round(saved_seconds, 6),
    }
    if reason:
        found["reason"] = reason
    if not_stored:
        found["not_stored"] = not_stored
    return found


def reply_outcome(execute_reply: Mapping[str, Any] | None) -> dict[str, Any]:
    """The extension's part of a cell's reply (empty without the extension)."""
    found = (execute_reply or {}).get("metadata", {}).get(REPLY_METADATA)
    return dict(found) if isinstance(found, dict) else {}
