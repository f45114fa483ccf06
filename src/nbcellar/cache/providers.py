"""The ambient providers: each piece of kernel state outside the variables that nbcellar
follows (see :mod:`nbcellar.cache.ambient`), with how to copy, compare and apply it again."""

from __future__ import annotations

import io
import marshal
import os
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any

from nbcellar.cache.ambient import Provider, Unrestorable, digest
from nbcellar.cache.patches import LibraryPatches


class WorkingDirectory(Provider):
    name = "cwd"

    def state(self) -> str:
        return os.getcwd()

    def change(self, before: str, after: str) -> str:
        try:
            return os.path.relpath(after, before)
        except ValueError:  # another drive
            return after

    def apply(self, change: str) -> None:
        os.chdir(os.path.join(os.getcwd(), change))


class Environment(Provider):
    """``os.environ``, but for nbcellar's own variables (what ``nbcellar run`` tells each
    kernel, such as its run's artifact folder, is not the notebook's state)."""

    name = "environ"

    def state(self) -> dict[Any, Any]:
        data = getattr(os.environ, "_data", None)
        if not isinstance(data, dict):
            return {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
        found = data.copy()
        for name in [k for k in found if k.startswith(_OURS_BYTES)]:
            del found[name]
        return found

    def change(self, before: Mapping[Any, Any], after: Mapping[Any, Any]) -> list[Any]:
        decode = os.fsdecode
        changed: list[tuple[str, str | None]]
        changed = [(decode(k), decode(v)) for k, v in after.items() if before.get(k) != v]
        changed += [(decode(k), None) for k in before if k not in after]
        return sorted(changed, key=lambda item: item[0])

    def apply(self, change: Sequence[tuple[str, str | None]]) -> None:
        for name, value in change:
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_OURS = "NBCELLAR_"
_OURS_BYTES = _OURS.encode()


class ImportPath(Provider):
    """``sys.path``: entries put first, entries added at the end, and entries taken out."""

    name = "sys.path"

    def state(self) -> tuple[str, ...]:
        return tuple(sys.path)

    def change(self, before: Sequence[str], after: Sequence[str]) -> tuple[Any, ...]:
        """Entries taken out, and entries put in before all kept ones or after them (each
        entry as many times as it was put: a path can hold one twice)."""
        from collections import Counter

        left = Counter(after)
        removed: list[str] = []
        for entry in before:
            if left[entry] > 0:
                left[entry] -= 1
            else:
                removed.append(entry)
        kept = Counter(before) - Counter(removed)
        front: list[str] = []
        back: list[str] = []
        seen_kept = False
        for entry in after:
            if kept[entry] > 0:
                kept[entry] -= 1
                seen_kept = True
            else:
                (back if seen_kept else front).append(entry)
        if not (front or back or removed):
            return ()
        return tuple(front), tuple(back), tuple(removed)

    def apply(self, change: Sequence[Any]) -> None:
        if not change:
            return
        front, back, removed = change
        for entry in removed:
            if entry in sys.path:
                sys.path.remove(entry)
        sys.path[:0] = list(front)
        sys.path.extend(back)


class ImportedModules(Provider):
    """The modules a cell imported (``import a.b`` binds ``a``; restoring ``a`` by name would
    not import ``a.b``): imported again on restore."""

    name = "modules"
    keyed = False

    def state(self) -> tuple[int, str]:
        return len(sys.modules), next(reversed(sys.modules))

    def change(self, before: tuple[int, str], after: tuple[int, str]) -> tuple[str, ...]:
        names = list(sys.modules)
        start = before[0]
        if before[1] in sys.modules:
            start = names.index(before[1]) + 1
        return tuple(n for n in names[start:] if _importable(n))

    def apply(self, change: Sequence[str]) -> None:
        import importlib
        import warnings

        # What importing showed is in the cell's outputs, replayed: not shown twice. (The
        # warnings are still noted as shown, as importing in a run notes them.)
        shown, warnings.showwarning = warnings.showwarning, _not_shown
        try:
            for name in change:
                if name not in sys.modules:
                    try:
                        importlib.import_module(name)
                    except Exception:
                        continue
        finally:
            warnings.showwarning = shown

    def version(self, initial: Any, now: Any) -> str | None:
        return None


def _not_shown(*args: Any, **kwargs: Any) -> None:
    pass


def _importable(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return spec is not None and name != "__main__" and not name.startswith("nbcellar")


class PythonRandom(Provider):
    """``random``'s global generator (``random.seed``, ``random.random()``...)."""

    name = "random"
    drawn = True

    def state(self) -> Any:
        import random

        return random.getstate()

    def change(self, before: Any, after: Any) -> Any:
        return after

    def apply(self, change: Any) -> None:
        import random

        random.setstate(change)


class NumpyRandom(Provider):
    """numpy's legacy global generator (``np.random.seed``, ``np.random.rand()``...). Its
    state is read through the bit generator's memory (a copy of 2.5 kB) rather than
    ``get_state`` (150 µs)."""

    name = "numpy.random"
    drawn = True

    def __init__(self) -> None:
        self._address: tuple[Any, Any] | None = None

    def _legacy(self) -> Any:
        mtrand = sys.modules.get("numpy.random.mtrand")
        return getattr(mtrand, "_rand", None)

    def state(self) -> Any:
        legacy = self._legacy()
        if legacy is None:
            return None
        if self._address is None or self._address[0] is not legacy:
            import ctypes

            bits = legacy._bit_generator
            address = bits.ctypes.state_address
            self._address = (legacy, ctypes.c_char * (626 * 4), address)  # type: ignore[assignment]
        _, kind, address = self._address  # type: ignore[misc]
        return bytes(kind.from_address(address))

    def change(self, before: Any, after: Any) -> Any:
        legacy = self._legacy()
        return legacy.get_state() if legacy is not None else None

    def apply(self, change: Any) -> None:
        legacy = self._legacy()
        if legacy is None:
            legacy = self._legacy()
        if legacy is not None and change is not None:
            legacy.set_state(change)

    def version(self, initial: Any, now: Any) -> str | None:
        return None if now is None or now == initial else digest(now)


class WarningFilters(Provider):
    """``warnings.filters`` (``warnings.filterwarnings("ignore")``, ``simplefilter``...)."""

    name = "warnings"

    def state(self) -> tuple[Any, ...]:
        import warnings

        return tuple(warnings.filters)

    def change(self, before: Any, after: Any) -> tuple[Any, ...]:
        return tuple(after)

    def apply(self, change: Any) -> None:
        import warnings

        filters: Any = warnings.filters
        filters[:] = list(change)
        warnings._filters_mutated()  # type: ignore[attr-defined]  # "shown once" starts anew


class LoggingConfiguration(Provider):
    """Loggers' levels and handlers (``logging.basicConfig(...)``, ``addHandler``...).
    Handlers writing to the cell's output or to a file are made again on restore; any other
    handler makes the cell run again."""

    name = "logging"

    def __init__(self) -> None:
        self._watched: list[Any] = []
        self._effects: set[str] = set()

    def begin_cell(self) -> None:
        """Watch the handlers that do something a restore does not do again: those writing
        to files, and those of the notebook's own classes or writing into a StringIO (which
        append to its values): a cell that logs through one always runs."""
        import logging

        if not logging._handlerList:  # type: ignore[attr-defined]
            return
        for ref in list(logging._handlerList):  # type: ignore[attr-defined]
            handler = ref()
            effect = _effect_of_logging_through(handler)
            if not effect:
                continue
            original = handler.handle

            def handle(record: Any, effect: str = effect, original: Any = original) -> Any:
                self._effects.add(effect)
                return original(record)

            handler.handle = handle
            self._watched.append(handler)

    def end_cell(self) -> str:
        for handler in self._watched:
            handler.__dict__.pop("handle", None)
        self._watched = []
        effects, self._effects = self._effects, set()
        if not effects:
            return ""
        does = "writes" if all(os.path.isabs(e[3:]) for e in effects) else "does"
        return f"it logs {' and '.join(sorted(effects))}, which only running it {does} again"

    def state(self) -> Any:
        import logging

        manager = logging.Logger.manager
        loggers = [("", logging.root)] + [
            (name, logger)
            for name, logger in list(manager.loggerDict.items())
            if isinstance(logger, logging.Logger)
            and (logger.level or logger.handlers or not logger.propagate or logger.disabled)
        ]
        return manager.disable, tuple(
            (
                name, logger.level, logger.propagate, logger.disabled,
                tuple((id(h), h.level, id(h.formatter)) for h in logger.handlers),
            )
            for name, logger in loggers
        )  # fmt: skip

    def change(self, before: Any, after: Any) -> Any:
        import logging

        old = {entry[0]: entry for entry in before[1]}
        changed = []
        for entry in after[1]:
            name = entry[0]
            if old.get(name) == entry:
                continue
            logger = logging.getLogger(name or None)
            handlers = tuple(_describe_handler(h) for h in logger.handlers)
            changed.append((name, logger.level, logger.propagate, logger.disabled, handlers))
        reset = sorted(set(old) - {entry[0] for entry in after[1]})
        return after[0], tuple(changed), tuple(reset)

    def version(self, initial: Any, now: Any) -> str | None:
        """By what the loggers are (a handler by its class, level and format, not its id:
        another run makes other objects), also when a handler cannot be made again."""
        if now == initial or now is None or initial is None:
            return None
        try:
            found = self.change(initial, now)
        except Unrestorable:
            found = self._described(initial, now)
        return digest(found) if found else None

    @staticmethod
    def _described(before: Any, after: Any) -> Any:
        import logging

        old = {entry[0]: entry for entry in before[1]}
        described = []
        for entry in after[1]:
            if old.get(entry[0]) == entry:
                continue
            logger = logging.getLogger(entry[0] or None)
            handlers = tuple(
                (
                    type(h).__module__, type(h).__qualname__, h.level,
                    getattr(h.formatter, "_fmt", type(h.formatter).__qualname__),
                )
                for h in logger.handlers
            )  # fmt: skip
            described.append((*entry[:4], handlers))
        reset = sorted(set(old) - {entry[0] for entry in after[1]})
        return after[0], tuple(described), tuple(reset)

    def apply(self, change: Any) -> None:
        import logging

        disable, changed, reset = change
        logging.disable(disable)
        for name in reset:
            logger = logging.getLogger(name or None)
            logger.setLevel(logging.NOTSET)
            logger.handlers.clear()
            logger.propagate, logger.disabled = True, False
        for name, level, propagate, disabled, handlers in changed:
            logger = logging.getLogger(name or None)
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            for description in handlers:
                logger.addHandler(_make_handler(description))


def _effect_of_logging_through(handler: Any) -> str:
    """What logging through ``handler`` does that a restore does not do again, in a few
    words (empty: nothing, it writes to the cell's output or nowhere)."""
    import logging

    if isinstance(handler, logging.FileHandler):
        return "" if handler.baseFilename == os.devnull else f"to {handler.baseFilename}"
    kind = type(handler)
    if kind.__module__ == "__main__":
        return f"through a {kind.__qualname__} handler"
    stream = getattr(handler, "stream", None)  # (a library's own handler keeps its buffer)
    if kind is logging.StreamHandler and (
        isinstance(stream, (io.StringIO, io.BytesIO)) or type(stream).__module__ == "__main__"
    ):
        return f"to a {type(stream).__name__}"
    return ""


class _CurrentStream:
    """``sys.stdout`` or ``sys.stderr`` as they are when written to (a handler made again on
    restore writes where the cell running then writes, as the kernel's own streams do)."""

    def __init__(self, name: str) -> None:
        self.name = f"<{name}>"
        self._attribute = name

    def write(self, text: str) -> int:
        return int(getattr(sys, self._attribute).write(text) or 0)

    def flush(self) -> None:
        getattr(sys, self._attribute).flush()


def _describe_handler(handler: Any) -> tuple[Any, ...]:
    import logging

    formatter = handler.formatter
    form = None
    if formatter is not None:
        if type(formatter) is not logging.Formatter:
            raise Unrestorable(f"a handler with a {type(formatter).__name__}")
        form = (formatter._fmt, formatter.datefmt, type(formatter._style).__name__)
    level = handler.level
    where: tuple[Any, ...]
    if type(handler) is logging.FileHandler:
        where = ("file", handler.baseFilename, handler.mode, handler.encoding)
    elif type(handler) is logging.StreamHandler:
        stream = str(getattr(handler.stream, "name", ""))
        if stream.strip("<>") not in ("stdout", "stderr"):
            raise Unrestorable("a handler writing to a stream other than stdout or stderr")
        where = ("stream", stream.strip("<>"))
    elif type(handler) is logging.NullHandler:
        where = ("null",)
    else:
        raise Unrestorable(f"a {type(handler).__name__}")
    if handler.filters:
        raise Unrestorable("a handler with filters")
    return (*where, level, form)


def _make_handler(description: tuple[Any, ...]) -> Any:
    import logging

    kind, *rest = description
    *where, level, form = rest
    handler: logging.Handler
    if kind == "file":
        path, mode, encoding = where
        handler = logging.FileHandler(path, mode, encoding)
    elif kind == "stream":
        handler = logging.StreamHandler(_CurrentStream(where[0]))
    else:
        handler = logging.NullHandler()
    handler.setLevel(level)
    if form is not None:
        fmt, datefmt, style = form
        styles: dict[str, Any] = {"StrFormatStyle": "{", "StringTemplateStyle": "$"}
        handler.setFormatter(logging.Formatter(fmt, datefmt, styles.get(style, "%")))
    return handler


def _flat(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if type(value) is dict:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _nested_copy(options: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(options)
    for key, value in copied.items():
        if type(value) is dict:
            copied[key] = _nested_copy(value)
    return copied


class PandasOptions(Provider):
    """``pd.set_option(...)`` / ``pd.options.display.max_rows = ...``."""

    name = "pandas"

    def _config(self) -> Any:
        if "pandas" not in sys.modules:
            return None
        return sys.modules.get("pandas._config.config")

    def state(self) -> Any:
        config = self._config()
        return None if config is None else _nested_copy(config._global_config)

    def baseline(self) -> Any:
        config = self._config()
        if config is None:
            return None
        nested: dict[str, Any] = {}
        for key, option in config._registered_options.items():
            *path, last = key.split(".")
            place = nested
            for part in path:
                place = place.setdefault(part, {})
            place[last] = option.defval
        return nested

    def change(self, before: Any, after: Any) -> list[tuple[str, Any]]:
        old, new = _flat(before or {}), _flat(after)
        return sorted((k, v) for k, v in new.items() if k not in old or old[k] != v)

    def apply(self, change: Any) -> None:
        import pandas as pd

        for key, value in change:
            try:
                pd.set_option(key, value)
            except Exception:
                continue


class NumpyOptions(Provider):
    """``np.set_printoptions(...)`` and ``np.seterr(...)``."""

    name = "numpy"

    def state(self) -> Any:
        numpy = sys.modules.get("numpy")
        if numpy is None:
            return None
        return tuple(sorted(numpy.get_printoptions().items())), tuple(
            sorted(numpy.geterr().items())
        )

    def baseline(self) -> Any:
        numpy = sys.modules.get("numpy")
        printing = sys.modules.get("numpy._core.printoptions")
        defaults = getattr(printing, "default_format_options_dict", None)
        if numpy is None or not isinstance(defaults, dict):
            return None
        errors = {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}
        shown = dict(defaults)
        if shown.get("legacy") == sys.maxsize:  # (how get_printoptions shows "no legacy")
            shown["legacy"] = False
        return tuple(sorted(shown.items())), tuple(sorted(errors.items()))

    def change(self, before: Any, after: Any) -> Any:
        return after

    def apply(self, change: Any) -> None:
        import numpy

        printing, errors = change
        numpy.set_printoptions(**dict(printing))
        numpy.seterr(**dict(errors))


# Which backend draws (chosen by %matplotlib, matplotlib.use, the kernel's inline backend):
# not what is drawn, and applied again it would switch backends.
_BACKEND = frozenset({"backend", "backend_fallback", "interactive"})


class MatplotlibSettings(Provider):
    """``mpl.rcParams[...] = ...``, ``plt.style.use(...)``, ``sns.set_theme()``: what
    matplotlib draws with. (Not the backend: see MatplotlibBackend.)"""

    name = "matplotlib"

    def state(self) -> Any:
        matplotlib = sys.modules.get("matplotlib")
        params = getattr(matplotlib, "rcParams", None)
        return None if params is None else tuple(dict.values(params))

    def baseline(self) -> Any:
        matplotlib = sys.modules.get("matplotlib")
        original = getattr(matplotlib, "rcParamsOrig", None)
        params = getattr(matplotlib, "rcParams", None)
        if original is None or params is None:
            return None
        return tuple(dict.get(original, key) for key in dict.keys(params))

    def change(self, before: Any, after: Any) -> list[tuple[str, Any]]:
        import matplotlib

        keys = list(dict.keys(matplotlib.rcParams))
        if len(keys) != len(after) or (before is not None and len(before) != len(after)):
            raise Unrestorable("matplotlib's settings changed shape")
        old = before or ()
        return [
            (key, value)
            for index, (key, value) in enumerate(zip(keys, after, strict=True))
            if key not in _BACKEND and (index >= len(old) or old[index] != value)
        ]

    def apply(self, change: Any) -> None:
        import matplotlib

        for key, value in change:
            try:
                matplotlib.rcParams[key] = value
            except Exception:
                continue


class MatplotlibBackend(Provider):
    """Which backend matplotlib draws with (``matplotlib.use("Agg")``, ``plt.switch_backend``):
    chosen again on restore, so figures restored and made after are shown (or not) as the run
    showed them. (``%matplotlib`` itself always runs: a magic.)"""

    name = "matplotlib backend"

    def state(self) -> Any:
        matplotlib = sys.modules.get("matplotlib")
        params = getattr(matplotlib, "rcParams", None)
        return None if params is None else _backend_named(params)

    def baseline(self) -> Any:
        matplotlib = sys.modules.get("matplotlib")
        original = getattr(matplotlib, "rcParamsOrig", None)
        return None if original is None else _backend_named(original)

    def change(self, before: Any, after: Any) -> Any:
        return after

    def apply(self, change: Any) -> None:
        if change:  # ("": not chosen, matplotlib's default then)
            import matplotlib

            matplotlib.use(change)


def _backend_named(params: Any) -> str:
    """The backend ``params`` name, without resolving it ("" while it is matplotlib's
    automatic choice)."""
    value = dict.get(params, "backend")
    return value if isinstance(value, str) else ""


_DELETED = "<deleted>"


class ProjectModules(Provider):
    """The globals of the project's own modules (``config.DEBUG = True``, a function of the
    project appending to a module-level list): rebound names, and the content of small
    containers (lists, dicts, sets of up to 10,000 items) checked by fingerprint. A module
    imported by the cell comes as its source makes it (its source is what the cell keys on)."""

    name = "project"
    adopts_outside_changes = False  # (%autoreload reloads modules before a cell)

    def __init__(self) -> None:
        from nbcellar.cache.module_loads import install

        self._modules: tuple[int, list[Any]] = (-1, [])
        self._first: dict[str, Any] = {}  # each module's globals as first seen
        self._verdicts: dict[str, tuple[Any, bool]] = {}  # module name -> (module, mine)
        install(_module_globals)  # (each module's globals as its source made them)

    def _project_modules(self) -> list[Any]:
        """The project's modules among those imported (each module looked at once)."""
        if self._modules[0] != len(sys.modules):
            from nbcellar.cache.sources import is_project_file

            found = []
            for name, module in list(sys.modules.items()):
                verdict = self._verdicts.get(name)
                if verdict is None or verdict[0] is not module:
                    origin = getattr(module, "__file__", None)
                    mine = (
                        isinstance(origin, str)
                        and "__main__" not in (name, getattr(module, "__name__", None))
                        and not name.startswith("nbcellar")
                        and is_project_file(origin)
                    )
                    verdict = self._verdicts[name] = (module, mine)
                if verdict[1]:
                    found.append(module)
            self._modules = (len(sys.modules), found)
        return self._modules[1]

    def state(self) -> Any:
        found = tuple(
            (module.__name__, _module_globals(module)) for module in self._project_modules()
        )
        for name, globals_now in found:
            self._first.setdefault(name, globals_now)
        return found

    def change(self, before: Any, after: Any) -> Any:
        old = dict(before or ())
        return self._changed(lambda name: old.get(name) or self._made(name), after)

    def _made(self, name: str) -> Any:
        """The module's globals as its source last made them (or as first seen)."""
        from nbcellar.cache.module_loads import baseline

        return baseline(name, sys.modules.get(name)) or self._first.get(name)

    def _changed(self, reference: Any, after: Any) -> Any:
        changed = []
        for name, now in after:
            then = reference(name)
            if then is None or then == now:
                continue  # (a module imported since comes as its source makes it)
            module = sys.modules[name]
            values = vars(module)
            earlier = dict(then or ())
            names = {k for k, v in now if earlier.get(k) != v}
            names |= set(earlier) - {k for k, _ in now}
            changed.append((name, tuple(sorted((k, values.get(k, _DELETED)) for k in names))))
        return tuple(changed)

    def version(self, initial: Any, now: Any) -> str | None:
        """By content: the values this session made (their ids are its own)."""
        if now == initial or now is None or initial is None:
            return None
        # (a module loaded again, by a reload, is compared with what its source made then)
        first = dict(initial)
        changed = self._changed(lambda name: self._made(name) or first.get(name), now)
        if not changed:
            return None
        return digest([(m, [(k, _content(v)) for k, v in values]) for m, values in changed])

    def apply(self, change: Any) -> None:
        for name, values in change:
            module = sys.modules.get(name)
            if module is None:
                import importlib

                module = importlib.import_module(name)
            for key, value in values:
                if isinstance(value, str) and value == _DELETED:
                    vars(module).pop(key, None)
                else:
                    setattr(module, key, value)


_CONTAINERS = (list, dict, set)


def _content(value: Any) -> str:
    """What a module global is, by content: a function or class by its code (pickled by
    reference, a reloaded one would look the same), anything else by its fingerprint."""
    from nbcellar.cache.fingerprint import fingerprint

    if isinstance(value, str) and value == _DELETED:
        return value
    if isinstance(value, types.FunctionType | type) and value.__module__ == "__main__":
        from nbcellar.cache.patches import content

        return content(value)  # (a notebook function's code is in a file of this kernel's)
    codes = _codes_of(value)
    if codes:
        return digest([marshal.dumps(code) for code in codes])
    return fingerprint(value) or f"{type(value).__qualname__}:{id(value):x}"


def _codes_of(value: Any) -> list[Any]:
    if isinstance(value, types.FunctionType):
        return [value.__code__]
    if isinstance(value, type):
        return [
            member.__code__ for member in vars(value).values()
            if isinstance(member, types.FunctionType)
        ]  # fmt: skip
    return []


def _module_globals(module: Any) -> tuple[tuple[str, Any], ...]:
    """What a module's globals are now: each value's identity, and the fingerprint of the
    content of small containers (changed in place by a function of the module)."""
    seen: list[tuple[str, Any]] = []
    for key, value in list(vars(module).items()):
        if key.startswith("__") and key.endswith("__"):
            continue
        if type(value) in _CONTAINERS and len(value) <= 10_000:
            from nbcellar.cache.fingerprint import fingerprint

            seen.append((key, (id(value), fingerprint(value))))
        else:
            seen.append((key, id(value)))
    return tuple(seen)


def default_providers() -> list[Provider]:
    """Every provider, in the order their changes are applied again (the working directory
    and import path first: a module imported again is found as the cell found it; the
    process's own settings last, the time zone after the environment holding ``TZ``)."""
    from nbcellar.cache.providers_process import process_providers

    return [
        WorkingDirectory(),
        Environment(),
        ImportPath(),
        ImportedModules(),
        ProjectModules(),
        LibraryPatches(),
        PythonRandom(),
        NumpyRandom(),
        WarningFilters(),
        LoggingConfiguration(),
        PandasOptions(),
        NumpyOptions(),
        MatplotlibSettings(),
        MatplotlibBackend(),
        *process_providers(),
    ]
