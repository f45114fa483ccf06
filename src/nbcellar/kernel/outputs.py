"""Recording what a cell shows, as nbformat outputs, and showing it again.

While a cell runs, its streams, displays and result still go to the frontend as usual; a copy of
each is kept in the shape nbformat uses for a cell's outputs. Replaying writes the same streams,
publishes the same displays and returns the recorded result for IPython to show as ``Out[n]``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any


class _Tee:
    """A stream that writes through to the real one and keeps a copy."""

    def __init__(self, target: Any, recorder: OutputRecorder, name: str) -> None:
        self._target = target
        self._recorder = recorder
        self._name = name

    def write(self, text: str) -> int:
        self._recorder.stream(self._name, text)
        return int(self._target.write(text) or 0)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class OutputRecorder:
    """Keeps a copy of everything a cell shows while the frontend sees it live."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.outputs: list[dict[str, Any]] = []
        self._saved: dict[str, Any] = {}
        self._muted = (
            0  # a terminal shell prints Out[n] to stdout; that is the result, not a stream
        )
        self._patched: list[tuple[Any, str]] = []

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
        hook = self.shell.displayhook
        self._saved = {"stdout": sys.stdout, "stderr": sys.stderr}
        sys.stdout = _Tee(sys.stdout, self, "stdout")
        sys.stderr = _Tee(sys.stderr, self, "stderr")
        original_publish = publisher.publish

        def publish(data: Mapping[str, Any], metadata: Any = None, *args: Any, **kw: Any) -> Any:
            output: dict[str, Any] = {
                "output_type": "display_data",
                "data": dict(data),
                "metadata": dict(metadata or {}),
            }
            if kw.get("transient"):
                output["transient"] = dict(kw["transient"])
            if kw.get("update"):
                output["update"] = True
            self.outputs.append(output)
            return original_publish(data, metadata, *args, **kw)

        publisher.publish = publish
        self._patched = [(publisher, "publish")]
        for name in _DISPLAYHOOK_STEPS:
            setattr(hook, name, self._displayhook_step(getattr(hook, name), name))
            self._patched.append((hook, name))

    def _displayhook_step(self, original: Any, name: str) -> Any:
        """A step of IPython's result display; what it prints is the result, not a stream."""

        def step(*args: Any, **kwargs: Any) -> Any:
            if name == "write_format_data":
                format_dict, md_dict = ([*list(args), None, None])[:2]
                self.outputs.append(
                    {
                        "output_type": "execute_result",
                        "data": dict(format_dict or {}),
                        "metadata": dict(md_dict or {}),
                    }
                )
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
            # Instance attributes shadowed the class methods; dropping them restores those.
            for owner, name in self._patched:
                owner.__dict__.pop(name, None)
            self._saved = {}
        return self.outputs


_DISPLAYHOOK_STEPS = ("write_output_prompt", "write_format_data", "finish_displayhook")


class Replayed:
    """Stands for a cell's recorded result: IPython displays it exactly as it was shown."""

    def __init__(self, data: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self._metadata = dict(metadata)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self._data, self._metadata

    def __repr__(self) -> str:
        return str(self._data.get("text/plain", ""))


def replay(shell: Any, outputs: Sequence[Mapping[str, Any]]) -> Replayed | None:
    """Show recorded outputs again, in order; return the result to display as ``Out[n]``."""
    result: Replayed | None = None
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            stream = sys.stdout if output.get("name") == "stdout" else sys.stderr
            stream.write(str(output.get("text", "")))
            stream.flush()
        elif kind == "display_data":
            extra: dict[str, Any] = {}
            if output.get("transient"):
                extra["transient"] = output["transient"]
            shell.display_pub.publish(
                data=output.get("data", {}), metadata=output.get("metadata", {}), **extra
            )
        elif kind == "execute_result":
            result = Replayed(output.get("data", {}), output.get("metadata", {}))
    return result
