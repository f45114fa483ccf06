"""Recording what a cell shows, as nbformat-like outputs, and showing it again.

A cell's outputs are kept as a list of JSON dicts in the order the frontend got them: nbformat's
``stream``, ``display_data`` and ``execute_result`` (with ``transient``: display ids), plus
``update_display_data`` and ``clear_output`` (``wait``) as the messages they are, and any other
IOPub message the cell sent (comm messages, custom ones) as ``{"output_type": "message", ...}``.
An ``execute_result`` names the value it showed (``"result"``: its index among the values the
displayhook got), so that a replay gives ``_``, ``Out[n]`` and ``_N`` that very value again.

In a real kernel the recording is taken where ipykernel sends IOPub messages (see
:mod:`nbcellar.kernel.iopub`); this module holds the shapes, the replay, and the recorder used
in a plain in-process shell (terminal IPython), which tees ``sys.stdout``/``sys.stderr`` and
wraps the display publisher.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

# What a recording keeps of a message: everything but the request's own bookkeeping.
NOT_OUTPUTS = frozenset({"status", "execute_input", "error", "debug_event", "shutdown_reply"})
COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})
COMM_REASON = "it opened or used a comm (a widget): only running it again connects one"


class Recording(Protocol):
    """What a cell showed while it ran, and the values its displayhook was given."""

    outputs: list[dict[str, Any]]
    results: list[Any]
    uncacheable: str  # why a replay of these outputs could not stand for the cell ('' if it can)

    def start(self) -> None: ...

    def stop(self) -> list[dict[str, Any]]: ...


def output_of_message(
    msg_type: str,
    content: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    buffers: Sequence[Any] = (),
) -> dict[str, Any]:
    """The stored shape of one IOPub message (its content already JSON-ready)."""
    if msg_type == "stream":
        return {"output_type": "stream", "name": content.get("name"), "text": content.get("text")}
    if msg_type in ("display_data", "update_display_data", "execute_result"):
        output: dict[str, Any] = {
            "output_type": msg_type,
            "data": dict(content.get("data") or {}),
            "metadata": dict(content.get("metadata") or {}),
        }
        if content.get("transient"):
            output["transient"] = dict(content["transient"])
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if msg_type == "clear_output":
        return {"output_type": "clear_output", "wait": bool(content.get("wait"))}
    return {
        "output_type": "message",
        "msg_type": msg_type,
        "content": dict(content),
        "metadata": dict(metadata or {}),
        "buffers": [base64.b64encode(bytes(b)).decode("ascii") for b in buffers],
    }


def message_of_output(output: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The IOPub message (type, content, metadata) that a stored output was."""
    kind = str(output.get("output_type"))
    if kind == "stream":
        return kind, {"name": output.get("name"), "text": output.get("text", "")}, {}
    if kind in ("display_data", "update_display_data", "execute_result"):
        content: dict[str, Any] = {
            "data": dict(output.get("data") or {}),
            "metadata": dict(output.get("metadata") or {}),
            "transient": dict(output.get("transient") or {}),
        }
        if kind == "execute_result":
            content.pop("transient")
            content["execution_count"] = output.get("execution_count")
        return kind, content, {}
    if kind == "clear_output":
        return kind, {"wait": bool(output.get("wait"))}, {}
    return (
        str(output.get("msg_type")),
        dict(output.get("content") or {}),
        dict(output.get("metadata") or {}),
    )


def buffers_of(output: Mapping[str, Any]) -> list[bytes]:
    return [base64.b64decode(b) for b in output.get("buffers") or ()]


def needs_result_values(outputs: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the outputs show a result whose value was not kept (an entry recorded before
    results were): a replay could show it but not give ``_`` its value."""
    return any(
        o.get("output_type") == "execute_result" and not isinstance(o.get("result"), int)
        for o in outputs
    )


class ResultCapture:
    """Wraps the displayhook while a cell is recorded: keeps each value it shows (``_``), and
    marks a result shown with no data (no message) so that a replay gives ``_`` it too."""

    def __init__(self, shell: Any, recording: Recording, lock: Any) -> None:
        self.hook = shell.displayhook
        self.recording = recording
        self.lock = lock
        self.pending: list[int] = []  # values whose execute_result is not recorded yet

    def install(self, wrap_steps: Callable[[str, Any], Any] | None = None) -> None:
        hook = self.hook
        original_update, original_finish = hook.update_user_ns, hook.finish_displayhook

        def update_user_ns(result: Any) -> Any:
            with self.lock:
                self.recording.results.append(result)
                self.pending.append(len(self.recording.results) - 1)
            return original_update(result)

        def finish_displayhook() -> Any:
            try:
                return original_finish()
            finally:
                with self.lock:
                    for index in self.pending:  # shown with empty data: no message went out
                        self.recording.outputs.append(
                            {"output_type": "execute_result", "data": {}, "metadata": {},
                             "execution_count": None, "result": index}
                        )  # fmt: skip
                    self.pending.clear()

        hook.update_user_ns = update_user_ns
        hook.finish_displayhook = finish_displayhook
        if wrap_steps is not None:
            for name in _DISPLAYHOOK_STEPS:
                setattr(hook, name, wrap_steps(name, getattr(hook, name)))

    def claim(self, output: dict[str, Any]) -> bool:
        """Mark a recorded ``execute_result`` as showing the oldest value not yet shown; False
        if the displayhook is showing none (the message is not its own)."""
        if not self.pending:
            return False
        output["result"] = self.pending.pop(0)
        return True

    def uninstall(self) -> None:
        # Instance attributes shadowed the class's methods; dropping them restores those.
        for name in ("update_user_ns", "finish_displayhook", *_DISPLAYHOOK_STEPS):
            self.hook.__dict__.pop(name, None)


_DISPLAYHOOK_STEPS = ("write_output_prompt", "write_format_data")


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# The shell recorder recording now: a stream tee outliving its cell (a logging handler made
# while it ran holds it) writes into the cell running now, not into the one it was made in.
_ACTIVE: list[ShellRecorder] = []


class _Tee:
    """A stream that writes through to the real one and gives a copy to the running cell."""

    def __init__(self, target: Any, name: str) -> None:
        self._target = target
        self._name = name

    def write(self, text: str) -> int:
        if _ACTIVE:
            _ACTIVE[-1].stream(self._name, text)
        return int(self._target.write(text) or 0)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    @property
    def name(self) -> str:
        return str(getattr(self._target, "name", f"<{self._name}>"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class ShellRecorder:
    """Records a cell in a plain InteractiveShell: writes to ``sys.stdout``/``sys.stderr``,
    the display publisher's displays and clears, and the displayhook's results."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.outputs: list[dict[str, Any]] = []
        self.results: list[Any] = []
        self.uncacheable = ""
        self._saved: dict[str, Any] = {}
        self._muted = 0  # a terminal prints Out[n] and clears to stdout: not streams
        self._capture = ResultCapture(shell, self, _NoLock())

    def stream(self, name: str, text: str) -> None:
        if not text or self._muted:
            return
        last = self.outputs[-1] if self.outputs else None
        if last and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def start(self) -> None:
        publisher = self.shell.display_pub
        self._saved = {"stdout": sys.stdout, "stderr": sys.stderr}
        sys.stdout = _Tee(sys.stdout, "stdout")
        sys.stderr = _Tee(sys.stderr, "stderr")
        _ACTIVE.append(self)
        original_publish, original_clear = publisher.publish, publisher.clear_output

        def publish(data: Mapping[str, Any], metadata: Any = None, *args: Any, **kw: Any) -> Any:
            content = {"data": dict(data), "metadata": dict(metadata or {})}
            content["transient"] = dict(kw.get("transient") or {})
            kind = "update_display_data" if kw.get("update") else "display_data"
            self.outputs.append(output_of_message(kind, content))
            return original_publish(data, metadata, *args, **kw)

        def clear_output(wait: bool = False) -> Any:
            self.outputs.append({"output_type": "clear_output", "wait": bool(wait)})
            self._muted += 1
            try:
                return original_clear(wait)
            finally:
                self._muted -= 1

        publisher.publish = publish
        publisher.clear_output = clear_output
        self._capture.install(self._displayhook_step)

    def _displayhook_step(self, name: str, original: Any) -> Any:
        """A step of IPython's result display; what it prints is the result, not a stream."""

        def step(*args: Any, **kwargs: Any) -> Any:
            if name == "write_format_data":
                format_dict, md_dict = ([*list(args), None, None])[:2]
                output = output_of_message(
                    "execute_result",
                    {"data": format_dict or {}, "metadata": md_dict or {},
                     "execution_count": self.shell.execution_count},
                )  # fmt: skip
                self._capture.claim(output)
                self.outputs.append(output)
            self._muted += 1
            try:
                return original(*args, **kwargs)
            finally:
                self._muted -= 1

        return step

    def stop(self) -> list[dict[str, Any]]:
        if self._saved:
            for stream in ("stdout", "stderr"):
                if isinstance(getattr(sys, stream), _Tee):
                    setattr(sys, stream, self._saved[stream])
            for name in ("publish", "clear_output"):
                self.shell.display_pub.__dict__.pop(name, None)
            self._capture.uninstall()
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            self._saved = {}
        return self.outputs


class Replayed:
    """Stands for a recorded result whose value is lost (a damaged store): it displays as the
    result did."""

    def __init__(self, data: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self._metadata = dict(metadata)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self._data, self._metadata

    def __repr__(self) -> str:
        return str(self._data.get("text/plain", ""))


MISSING = object()  # a recorded result whose value could not be loaded


def show_result(shell: Any, output: Mapping[str, Any], value: Any) -> None:
    """Give ``value`` to the displayhook as the cell's result, shown with the recorded data:
    ``_``, ``Out[n]``, ``_N`` and the execute_result are then those of a run."""
    data, metadata = dict(output.get("data") or {}), dict(output.get("metadata") or {})
    if value is MISSING:
        value = Replayed(data, metadata)
    hook = shell.displayhook
    hook.compute_format_data = lambda result: (dict(data), dict(metadata))
    try:
        hook(value)
    finally:
        hook.__dict__.pop("compute_format_data", None)


def replay(
    shell: Any,
    outputs: Sequence[Mapping[str, Any]],
    results: Sequence[Any] = (),
    send: Callable[[Mapping[str, Any]], None] | None = None,
) -> None:
    """Show recorded outputs again, in order. ``send`` sends one output as its IOPub message
    (in a kernel); without it they are written and published through the shell."""
    for output in outputs:
        kind = output.get("output_type")
        if kind == "execute_result":
            index = output.get("result")
            value = results[index] if isinstance(index, int) and index < len(results) else MISSING
            show_result(shell, output, value)
        elif send is not None:
            send(output)
        elif kind == "stream":
            stream = sys.stdout if output.get("name") == "stdout" else sys.stderr
            stream.write(str(output.get("text", "")))
            stream.flush()
        elif kind in ("display_data", "update_display_data"):
            shell.display_pub.publish(
                data=output.get("data", {}),
                metadata=output.get("metadata", {}),
                transient=dict(output.get("transient") or {}),
                update=kind == "update_display_data",
            )
        elif kind == "clear_output":
            shell.display_pub.clear_output(wait=bool(output.get("wait")))
        # (Other messages exist only on a kernel's IOPub: a plain shell has nowhere to send them.)
