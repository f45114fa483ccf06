"""A warm pool of kernels for runs executed side by side.

Each run needs a fresh kernel (a run must not see another's variables), and starting one costs
about a second; a pool for more than one run forks its kernels from a process that imported
their machinery once (see :mod:`nbcellar.runs.forkserver`). The pool starts kernels ahead of
the runs, in background threads, keeping up to ``size`` ready (answering requests) and never
starting more than the runs still to come (a run that finds none ready and none coming has one
started); a run takes one (waiting only if none is ready yet) and shuts it down when done.
Kernels talk over Unix sockets in a private folder. Closing the pool shuts down every kernel it
started that is still alive.
"""

from __future__ import annotations

import contextlib
import queue
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nbcellar.kernel.protocol import FORK_VARIABLE


def close_thread_loop() -> None:
    """Close the event loop jupyter's synchronous calls made for this (non-main) thread: left
    open, it would be collected with the thread, and warn."""
    import asyncio

    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:  # this thread has none
        return
    if not loop.is_running() and not loop.is_closed():
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    asyncio.set_event_loop(None)


_KEPT: dict[tuple[tuple[str, str], ...], Any] = {}
_KEPT_LOCK = threading.Lock()


@contextlib.contextmanager
def kept_fork_server(env: Mapping[str, str]) -> Iterator[None]:
    """For a session of many separate runs (smoke tests, a pipeline's tasks): a fork server
    started now, in the background, that every pool for kernels with ``env`` forks its kernels
    from until the block ends, a pool for a single run included; a run needing a kernel then
    waits tens of milliseconds for it, not the half second of a kernel's start-up. Where
    kernels cannot be forked, or one such block is open already for ``env``: nothing."""
    key = _kept_key(env)
    server = None
    with _KEPT_LOCK:
        if key not in _KEPT:
            server = _fork_server(None, dict(env))
            if server is not None:
                _KEPT[key] = server
    try:
        yield
    finally:
        if server is not None:
            with _KEPT_LOCK:
                _KEPT.pop(key, None)
            server.close(wait=False)  # (the kernels it forked are shut down by now)


def _kept(env: Mapping[str, str]) -> Any:
    with _KEPT_LOCK:
        return _KEPT.get(_kept_key(env))


_PER_TEST = frozenset({"PYTEST_CURRENT_TEST"})
"""What pytest changes in the environment for each test: not what the server imported under
(each kernel forked gets the whole environment of its own run)."""


def _kept_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k not in _PER_TEST))


def _fork_server(cwd: Path | None, env: dict[str, str]) -> Any:
    """A fork server for the pool's kernels, where processes can fork (``NBCELLAR_FORK=0``:
    never, every kernel starts from scratch)."""
    import os
    import sys

    if not hasattr(os, "fork") or sys.platform == "win32" or os.environ.get(FORK_VARIABLE) == "0":
        return None
    from nbcellar.runs.forkserver import ForkServer

    return ForkServer(cwd, env)


class PoolClosed(Exception):
    """The pool was closed (the runs cancelled) while a run waited for a kernel."""


class KernelPool:
    def __init__(
        self,
        kernel_name: str,
        cwd: Path,
        env: dict[str, str],
        size: int,
        total: int,
        setup: str = "",
        forks: Any = None,
    ) -> None:
        """``forks``: a fork server the caller keeps (a cluster worker's, for all its runs);
        without it the pool starts one of its own for more than one kernel."""
        from nbcellar.runs.execute import local_kernel_config

        self.kernel_name = kernel_name
        self.cwd = cwd
        self.env = env
        self.setup = setup  # run (silently) in each kernel while it waits: %load_ext nbcellar
        from nbcellar.owners import owned_temporary_prefix, remove_orphans

        remove_orphans("kernels")  # (what killed runs left behind)
        self._sockets = tempfile.TemporaryDirectory(prefix=owned_temporary_prefix("kernels"))
        self._config = local_kernel_config
        self._count = 0  # kernels started (each puts one manager, or its error, in _ready)
        self._taken = 0
        self._ready: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._to_start = total  # kernels that may still be wanted
        self._started: list[Any] = []
        self._closed = False
        kept = _kept(env) if forks is None else None
        self._own_forks = forks is None and kept is None
        if forks is None:
            forks = kept if kept is not None else _fork_server(cwd, env) if total > 1 else None
        self._forks = forks
        for _ in range(min(size, total)):
            self._start_one()

    def _start_one(self, needed: bool = False) -> None:
        """Start a kernel if more runs may want one (``needed``: a run is waiting for it)."""
        with self._lock:
            if self._closed or (self._to_start <= 0 and not needed):
                return
            self._to_start = max(self._to_start - 1, 0)
            self._count += 1
            # Each kernel its own socket folder: kernels started at once would otherwise pick
            # the same socket names.
            folder = Path(self._sockets.name) / str(self._count)
        folder.mkdir()
        threading.Thread(
            target=self._launch, args=(folder,), name="nbcellar-kernel-start", daemon=True
        ).start()

    def _launch(self, folder: Path) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        from nbcellar.runs.forkserver import kernel_specs

        # The asynchronous manager, as nbclient makes its own: its clients are asynchronous.
        config = self._config(str(folder))
        specs = {} if self._forks is None else {"kernel_spec_manager": kernel_specs(self._forks)}
        manager = AsyncKernelManager(kernel_name=self.kernel_name, config=config, **specs)
        # (Its own messages to a log: see execute_notebook.)
        with open(folder / "kernel.log", "ab") as log:
            try:
                # (History in memory, as nbclient starts its kernels: runs side by side do not
                # share, and lock, the user's IPython history file.)
                run_sync(manager.start_kernel)(
                    cwd=str(self.cwd), env=self.env, stderr=log,
                    extra_arguments=["--HistoryManager.hist_file=:memory:"],
                )  # fmt: skip
            except Exception as exc:  # handed to the run that takes it, which reports it
                self._ready.put(exc)
                close_thread_loop()
                return
        with self._lock:  # from now on, close() stops it too
            self._started.append(manager)
        try:
            run_sync(self._wait_until_ready)(manager, self.setup)
        except Exception as exc:
            from nbcellar.runs.kernels import KernelStartError, start_failure

            _stop(manager)  # (it never answered: no run gets it)
            said = start_failure(exc, self.kernel_name, folder / "kernel.log")
            self._ready.put(said if isinstance(exc, KernelStartError) else exc)
            return
        finally:
            close_thread_loop()
        with self._lock:
            closed = self._closed
        if closed:
            _stop(manager)
            close_thread_loop()
            return
        self._ready.put(manager)

    @staticmethod
    async def _wait_until_ready(manager: Any, setup: str) -> None:
        """Until the kernel answers and has run ``setup``: a run taking it does not wait for
        its start-up."""
        from nbcellar.runs.kernels import wait_until_ready

        client = manager.client()
        client.start_channels()
        try:
            await wait_until_ready(client, timeout=60)
            if setup:  # a failure shows again, with its reason, when the run repeats it
                await client.execute_interactive(
                    setup, silent=True, store_history=False, timeout=60
                )
        finally:
            client.stop_channels()

    def take(self) -> Any:
        """A started kernel's manager, for one run; another starts if more runs may come."""
        with self._lock:
            if self._closed:  # (the runs were cancelled before this one took its kernel)
                raise PoolClosed("the runs were cancelled")
            none_coming = self._count == self._taken
            self._taken += 1
        if none_coming:  # more runs needed a kernel than foreseen
            self._start_one(needed=True)
        found = self._ready.get()
        self._start_one()
        if isinstance(found, Exception):
            raise found
        return found

    def forget(self, manager: Any) -> None:
        """A kernel a run took and shut down: no longer this pool's to stop."""
        with self._lock:
            self._started = [m for m in self._started if m is not manager]

    def give_back_unused(self) -> None:
        """A run that needed no kernel: one fewer kernel to start."""
        with self._lock:
            self._to_start = max(self._to_start - 1, 0)

    def close(self) -> None:
        """Stop every kernel still alive (unused, or running when interrupted); a run
        waiting for a kernel gets PoolClosed. A kernel no thread uses is shut down here; one a
        run (or its start) is using is killed, and that thread releases its sockets: a ZMQ
        context terminated under another thread's sockets waits for them forever."""
        with self._lock:
            self._closed = True
            started, self._started = list(self._started), []
            waiting = max(self._taken, 1)
        unused = []
        with contextlib.suppress(queue.Empty):
            while True:
                unused.append(self._ready.get_nowait())
        for _ in range(waiting):
            self._ready.put(PoolClosed("the runs were cancelled"))
        for manager in started:
            if any(manager is u for u in unused):
                _stop(manager)
            else:
                _kill(manager)
        if self._forks is not None and self._own_forks:
            self._forks.close()
        self._sockets.cleanup()


def _kill(manager: Any) -> None:
    """Kill a kernel's process (group), leaving its manager's sockets to the thread using it."""
    import signal

    from jupyter_core.utils import run_sync

    with contextlib.suppress(Exception):  # (already gone)
        run_sync(manager.signal_kernel)(signal.SIGKILL)


def _stop(manager: Any) -> None:
    """Stop a kernel now if it runs, and release its sockets and ZMQ context either way."""
    from jupyter_core.utils import run_sync

    try:
        if run_sync(manager.is_alive)():
            run_sync(manager.shutdown_kernel)(now=True)  # (its resources with it)
            return
    except Exception:  # already gone
        pass
    with contextlib.suppress(Exception):  # (nothing left to release)
        run_sync(manager.cleanup_resources)(restart=False)
