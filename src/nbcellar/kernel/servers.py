"""Find the kernel of a notebook that is open in a running Jupyter server on this machine.

Servers announce themselves with a ``jpserver-<pid>.json`` file (``nbserver-<pid>.json`` for the
classic Notebook 6) in Jupyter's runtime directory. Each live one is asked for its sessions over its
REST API; a session matches when its file is the notebook asked for, or a file Jupytext pairs with
it (a percent script and its ``.ipynb``). The kernel is then reached through the connection file
the server wrote next to its own runtime file.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nbcellar.errors import NbcellarError

SERVER_FILE = re.compile(r"(jp|nb)server-.+\.json")
PAIRABLE_SUFFIXES = (".ipynb", ".py")
NEVER_ACTIVE = datetime.min.replace(tzinfo=timezone.utc)


class ServerError(NbcellarError):
    """A running Jupyter server could not tell which notebooks it has open."""


class ServerUnreachableError(ServerError):
    """A server announced in the runtime directory did not answer in time."""


class TokenRejectedError(ServerError):
    """A server refused the token written in its own runtime file."""


class ConnectionFileError(NbcellarError):
    """The kernel of an open notebook has no connection file this machine can read."""


class SeveralKernelsWarning(UserWarning):
    """The notebook is open in several kernels; the most recently active one was chosen."""


@dataclass(frozen=True)
class RunningNotebook:
    """A notebook open in a running Jupyter server, and how to reach its kernel."""

    path: Path  # absolute path of the file the session is for (may be the paired .ipynb)
    server_url: str
    kernel_id: str
    kernel_name: str
    connection_file: Path
    execution_state: str  # as the server reports it: 'idle', 'busy', 'starting', ...


def running_servers(runtime_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The Jupyter servers announced in the runtime directory whose process is alive.

    Reads the same files as ``jupyter_server.serverapp.list_running_servers`` (default directory:
    ``jupyter_core.paths.jupyter_runtime_dir()``), without importing jupyter_server, which the
    kernel's environment may lack, and without deleting stale files, which are Jupyter's. Each
    dict is the file's content (``url``, ``token``, ``root_dir``, ``pid``, ...) plus
    ``info_file``, the path of the file it came from.
    """
    from jupyter_core.paths import jupyter_runtime_dir

    folder = Path(runtime_dir) if runtime_dir is not None else Path(jupyter_runtime_dir())
    try:
        names = sorted(os.listdir(folder))
    except OSError:  # no runtime directory yet: no server has ever run
        return []
    servers = []
    for name in names:
        if not SERVER_FILE.fullmatch(name):
            continue
        try:
            info = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # being written or removed as we read
            continue
        if not isinstance(info, dict) or not _pid_alive(info.get("pid")):
            continue
        if not _trusted(folder / name, info.get("pid")):  # (the token goes to that server)
            continue
        if "root_dir" not in info:  # Notebook 6 calls it notebook_dir
            info["root_dir"] = info.get("notebook_dir", "")
        info["info_file"] = str(folder / name)
        servers.append(info)
    return servers


def find_running(notebook: str | os.PathLike[str], timeout: float = 5.0) -> RunningNotebook | None:
    """The kernel running ``notebook`` (or the file Jupytext pairs with it) in a local server.

    ``notebook`` is relative to the current directory or absolute. Returns None when no running
    server has it open. When several kernels have it, the one whose kernel was active last is
    returned and a :class:`SeveralKernelsWarning` names the others. Raises :class:`ServerError`
    when a live server does not answer within ``timeout`` seconds or rejects its own token;
    a server whose port is closed is gone and skipped, as are servers on a Unix socket.
    """
    target = Path(notebook).expanduser().resolve()
    open_files: list[tuple[Path, dict[str, Any], dict[str, Any]]] = []
    for server in running_servers():
        sessions = _sessions(server, timeout) if server.get("root_dir") else None
        root = Path(server["root_dir"]).expanduser() if sessions else None
        for session in sessions or ():
            kernel = session.get("kernel")
            path = session.get("path")
            if root is not None and isinstance(kernel, dict) and isinstance(path, str):
                open_files.append(((root / path).resolve(), server, session))
    found: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for wanted in ({target}, None):  # the file itself; else the files Jupytext pairs with it
        if wanted is None:
            if not open_files:
                break
            wanted = paired_files(target)  # (imports jupytext: only when needed)
        for path, server, session in open_files:
            if path in wanted:
                # Sessions of paired files may share one kernel: count it once.
                key = (server["url"], str(session["kernel"].get("id")))
                found.setdefault(key, (server, session))
        if found:
            break
    if not found:
        return None
    ranked = sorted(found.values(), key=lambda match: _last_activity(match[1]), reverse=True)
    chosen = _running_notebook(*ranked[0])
    if len(ranked) > 1:
        others = "; ".join(
            f"kernel {s['kernel'].get('id')} on {srv['url']} (last active "
            f"{s['kernel'].get('last_activity', '?')})"
            for srv, s in ranked[1:]
        )
        warnings.warn(
            SeveralKernelsWarning(
                f"{notebook} is open in {len(ranked)} kernels; using kernel {chosen.kernel_id} on "
                f"{chosen.server_url}, the most recently active "
                f"({ranked[0][1]['kernel'].get('last_activity', '?')}); also found: {others}"
            ),
            stacklevel=2,
        )
    return chosen


def paired_files(path: str | os.PathLike[str]) -> set[Path]:
    """``path`` and the files Jupytext pairs with it, all resolved and absolute.

    Pairing is read as Jupytext reads it: the ``jupytext.formats`` of the file's metadata (a
    script's header), else the formats of a ``jupytext.toml`` / ``pyproject.toml`` config that
    applies to its folder; prefixed pairings in other folders count. A same-stem ``.ipynb`` or
    ``.py`` next to ``path`` counts when its own pairing names ``path``, which covers scripts whose
    header was left out and files that do not exist yet.
    """
    path = Path(path).expanduser().resolve()
    files = {path, *_jupytext_pairs(path)}
    for suffix in PAIRABLE_SUFFIXES:
        sibling = path.with_suffix(suffix)
        if sibling != path and path in _jupytext_pairs(sibling):
            files.add(sibling)
    return files


def _jupytext_pairs(path: Path) -> set[Path]:
    """The files Jupytext pairs with the notebook or script at ``path``; none if it is unpaired."""
    if path.suffix not in PAIRABLE_SUFFIXES or not path.is_file():
        return set()
    import jupytext
    from jupytext.config import load_jupytext_config, notebook_formats
    from jupytext.paired_paths import paired_paths

    try:
        if path.suffix == ".ipynb":  # metadata only: no need to validate the whole notebook
            node = json.loads(path.read_text(encoding="utf-8"))
        else:
            node = jupytext.read(path)
        config = load_jupytext_config(str(path.parent))
        formats = notebook_formats(node, config, str(path), fallback_on_current_fmt=False)
        if not formats:
            return set()
        pairs = paired_paths(str(path), {"extension": path.suffix}, formats)
    except Exception:  # jupytext raises many kinds; a pairing it cannot read pairs nothing
        return set()
    return {Path(p).resolve() for p, _ in pairs}


def _sessions(server: dict[str, Any], timeout: float) -> list[dict[str, Any]] | None:
    """The sessions a server reports; None when nothing listens at its address any more."""
    import http.client
    import urllib.error
    import urllib.request

    url = str(server.get("url", ""))
    url = url if url.endswith("/") else url + "/"
    if server.get("sock") or not url.startswith(("http://", "https://")):
        return None  # a server on a Unix socket: not reachable with urllib
    where = f"Jupyter server {url} (pid {server.get('pid')})"
    port = urlsplit(url).port or ""
    request = urllib.request.Request(url + "api/sessions")
    if server.get("token"):
        request.add_header("Authorization", f"token {server['token']}")
    # Local: no proxy; and no redirect is followed, which would send the token elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _no_redirect())
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            raise ServerError(
                f"{where} answered with a redirect to {exc.headers.get('Location', '?')} when "
                "asked for its sessions; nbcellar does not follow it (it would send the token "
                "on): see that server"
            ) from None
        if exc.code in (401, 403):
            raise TokenRejectedError(
                f"{where} rejected the token in its runtime file {server.get('info_file')} "
                f"(HTTP {exc.code}): restart it with token authentication, or stop it with "
                f"'jupyter server stop {port}'"
            ) from None
        raise ServerError(
            f"{where} answered HTTP {exc.code} ({exc.reason}) when asked for its sessions: "
            "see that server's log"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, ConnectionRefusedError):
            return None  # its process lives on (or its pid was reused) but the server is gone
        detail = str(reason) or type(reason).__name__
        raise ServerUnreachableError(
            f"{where} did not answer ({detail}; timeout {timeout:g} s): "
            f"stop it with 'jupyter server stop {port}', or delete {server.get('info_file')} "
            "if it is gone"
        ) from None
    try:
        sessions = json.loads(body)
    except ValueError:
        sessions = None
    if not isinstance(sessions, list):
        raise ServerError(f"{where} answered something other than a list of sessions")
    return [s for s in sessions if isinstance(s, dict)]


def _running_notebook(server: dict[str, Any], session: dict[str, Any]) -> RunningNotebook:
    kernel = session["kernel"]
    kernel_id = str(kernel.get("id"))
    path = (Path(server["root_dir"]).expanduser() / session["path"]).resolve()
    # jupyter_server writes connection files into its runtime directory, next to its own file.
    connection_file = Path(server["info_file"]).parent / f"kernel-{kernel_id}.json"
    if not connection_file.is_file():
        raise ConnectionFileError(
            f"kernel {kernel_id} of {path} on {server['url']} has no connection file at "
            f"{connection_file}: the kernel runs elsewhere (a gateway or remote provisioner) or "
            "the server writes connection files to another folder; nbcellar needs a local kernel"
        )
    return RunningNotebook(
        path=path,
        server_url=str(server["url"]),
        kernel_id=kernel_id,
        kernel_name=str(kernel.get("name", "")),
        connection_file=connection_file,
        execution_state=str(kernel.get("execution_state", "unknown")),
    )


def _last_activity(session: dict[str, Any]) -> datetime:
    stamp = session["kernel"].get("last_activity")
    if not isinstance(stamp, str):
        return NEVER_ACTIVE
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return NEVER_ACTIVE
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _no_redirect() -> Any:
    """A urllib handler that follows no redirect (urllib then raises the 3xx as an error)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return NoRedirect()


def _trusted(info_file: Path, pid: object) -> bool:
    """A runtime file of this user, written by a Jupyter server process of this user: only
    such a server is given the token (and asked what it runs)."""
    if not hasattr(os, "geteuid"):
        return True
    me = os.geteuid()
    try:
        if info_file.stat().st_uid != me:
            return False
        process = Path(f"/proc/{pid}")
        if not process.exists():
            return True  # (no /proc here: the file's owner is what can be checked)
        if process.stat().st_uid != me:
            return False
        command = (process / "cmdline").read_bytes().replace(b"\0", b" ").lower()
    except OSError:
        return False
    return b"jupyter" in command


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # query limited info
        if handle:
            ctypes.windll.kernel32.CloseHandle(handle)
        return bool(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but alive
        return True
    return True
