"""Ambient providers for the Python process's own settings (see :mod:`nbcellar.cache.ambient`):
the interpreter's limits, the umask, the locale, the time zone, decimal's context, names put in
``builtins``, the cyclic garbage collector, ``atexit`` and signal handlers, IPython's
configuration (``%config``) and how it shows results as text (``%precision``)."""

from __future__ import annotations

import atexit
import functools
import os
import re
import sys
import time
import types
from collections.abc import Sequence
from typing import Any

from nbcellar.cache.ambient import Provider, Unrestorable, digest


class InterpreterSettings(Provider):
    """Process-wide settings of the interpreter and the standard library, each read and set
    by a function: ``sys.setrecursionlimit``, ``sys.setswitchinterval``,
    ``sys.set_int_max_str_digits``, ``socket.setdefaulttimeout``, ``csv.field_size_limit``,
    ``faulthandler.enable()``."""

    name = "sys.settings"

    def __init__(self) -> None:
        import _csv
        import faulthandler

        def socket_timeout() -> Any:
            socket = sys.modules.get("socket")
            return None if socket is None else socket.getdefaulttimeout()

        def set_socket_timeout(value: Any) -> None:
            import socket

            socket.setdefaulttimeout(value)

        def set_faulthandler(enabled: bool) -> None:
            if enabled:
                faulthandler.enable()
            else:
                faulthandler.disable()

        settings: list[tuple[str, Any, Any]] = [
            ("recursion limit", sys.getrecursionlimit, sys.setrecursionlimit),
            ("switch interval", sys.getswitchinterval, sys.setswitchinterval),
            ("socket timeout", socket_timeout, set_socket_timeout),
            ("csv field size limit", _csv.field_size_limit, _csv.field_size_limit),
            ("faulthandler", faulthandler.is_enabled, set_faulthandler),
        ]
        if hasattr(sys, "get_int_max_str_digits"):  # (Python 3.11, and 3.10.7 on)
            settings.append(
                ("int max str digits", sys.get_int_max_str_digits, sys.set_int_max_str_digits)
            )
        self._names = tuple(name for name, _, _ in settings)
        self._getters = tuple(get for _, get, _ in settings)
        self._setters = {name: put for name, _, put in settings}

    def state(self) -> tuple[Any, ...]:
        return tuple(get() for get in self._getters)

    def change(self, before: Sequence[Any], after: Sequence[Any]) -> tuple[tuple[str, Any], ...]:
        return tuple(
            (name, value)
            for name, old, value in zip(self._names, before, after, strict=True)
            if old != value
        )

    def apply(self, change: Sequence[tuple[str, Any]]) -> None:
        for name, value in change:
            self._setters[name](value)


class Umask(Provider):
    """``os.umask(...)``: the mode bits new files are made without. It can only be read by
    setting it: set to the value it had, it is unchanged whenever it was (no file made by
    another thread meanwhile gets another mode)."""

    name = "umask"

    def __init__(self) -> None:
        self._last = 0o022

    def state(self) -> int:
        found = os.umask(self._last)
        if found != self._last:
            os.umask(found)
            self._last = found
        return found

    def change(self, before: int, after: int) -> int:
        return after

    def apply(self, change: int) -> None:
        os.umask(change)
        self._last = change


class Locale(Provider):
    """``locale.setlocale(...)``: every category at once, as ``setlocale(LC_ALL)`` names them
    (one name, or one per category), which sets them all again."""

    name = "locale"

    def __init__(self) -> None:
        import _locale

        self._setlocale = _locale.setlocale
        self._all = _locale.LC_ALL

    def state(self) -> str:
        return str(self._setlocale(self._all))

    def change(self, before: str, after: str) -> str:
        return after

    def apply(self, change: str) -> None:
        self._setlocale(self._all, change)


class TimeZone(Provider):
    """``time.tzset()`` after ``os.environ['TZ'] = ...``: the zone local times are in (the
    variable itself comes back with the environment, applied before)."""

    name = "timezone"

    def state(self) -> tuple[Any, ...]:
        return time.tzname, time.timezone, time.altzone, time.daylight

    def change(self, before: Any, after: Any) -> Any:
        return after

    def apply(self, change: Any) -> None:
        if hasattr(time, "tzset"):
            time.tzset()


_DECIMAL_FIELD = re.compile(r"(\w+)=(\[[^\]]*\]|[^,)]+)")


class DecimalContext(Provider):
    """The ``decimal`` module's context in the thread cells run in (``getcontext().prec =
    5``, its rounding, exponent limits, traps, and the flags its computations raised)."""

    name = "decimal"

    def state(self) -> str | None:
        decimal = sys.modules.get("decimal")
        if decimal is None:
            return None
        return repr(decimal.getcontext())

    def baseline(self) -> str | None:
        decimal = sys.modules.get("decimal")
        return None if decimal is None else repr(decimal.Context(flags=[]))

    def change(self, before: str | None, after: str) -> str:
        return after

    def apply(self, change: str) -> None:
        import decimal

        context = decimal.getcontext()
        for field, text in _DECIMAL_FIELD.findall(change):
            if field in ("flags", "traps"):
                names = [n.strip() for n in text.strip("[]").split(",") if n.strip()]
                signals = getattr(context, field)
                for signal in list(signals):
                    signals[signal] = signal.__name__ in names
            elif field == "rounding":
                context.rounding = getattr(decimal, text)
            else:
                setattr(context, field, int(text))


class _ByIdentity:
    """A copy of a namespace, equal to another when each name is bound to the same (or an
    equal) object in the same order; never an error however its values compare."""

    __slots__ = ("order", "values")

    def __init__(self, values: dict[str, Any], order: tuple[Any, ...]) -> None:
        self.values = values
        self.order = order

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _ByIdentity):
            return NotImplemented
        return self is other or (
            len(self.values) == len(other.values) and _same(self.order, other.order)
        )

    __hash__ = None  # type: ignore[assignment]


def _same(one: Any, other: Any) -> bool:
    if one is other:
        return True
    try:
        return bool(one == other)
    except Exception:
        return False


class BuiltinNames(Provider):
    """Names put in, rebound in or taken out of ``builtins`` (``builtins.VERBOSE = True``; a
    function shadowing ``print``): read by every cell as if global, set again on restore. Not
    ``_``, which the display hook sets."""

    name = "builtins"

    def __init__(self) -> None:
        import builtins

        self._names = vars(builtins)
        self._seen: tuple[Any, ...] = ()  # the values as last seen, ``_`` included
        self._last = _ByIdentity({}, ())

    def state(self) -> _ByIdentity:
        """The names as they are (the last copy while nothing changed: no copy to make)."""
        names = self._names
        seen = tuple(names.values())
        if len(seen) != len(self._seen) or not _same(seen, self._seen):
            self._seen = seen
            values = names.copy()
            values.pop("_", None)
            found = _ByIdentity(values, tuple(values.values()))
            if found != self._last:  # (not when only ``_`` changed)
                self._last = found
        return self._last

    def change(self, before: _ByIdentity | None, after: _ByIdentity) -> tuple[Any, ...]:
        old = before.values if before is not None else {}
        bound = tuple(
            sorted(
                (name, value)
                for name, value in after.values.items()
                if name not in old or not _same(old[name], value)
            )
        )
        removed = tuple(sorted(set(old) - set(after.values)))
        if not (bound or removed):
            return ()
        return bound, removed

    def version(self, initial: Any, now: Any) -> str | None:
        """By content (a function by its code): what this session bound is its own."""
        if now is None or initial is None or now == initial:
            return None
        found = self.change(initial, now)
        if not found:
            return None
        bound, removed = found
        return digest([[(name, _content(value)) for name, value in bound], list(removed)])

    def apply(self, change: Sequence[Any]) -> None:
        import builtins

        if not change:
            return
        bound, removed = change
        for name in removed:
            vars(builtins).pop(name, None)
        for name, value in bound:
            setattr(builtins, name, value)


class AtexitHandlers(Provider):
    """``atexit.register(...)``: a handler registered by a cell cannot be registered again
    without running it (``atexit`` gives no way to read its handlers), so the cell runs again
    on restore. Handlers registered by the modules a cell imports come back as the modules
    are imported again."""

    name = "atexit"

    def __init__(self) -> None:
        self._by_imports = 0
        self._register: Any = atexit.register

        def counted(function: Any, *args: Any, **kwargs: Any) -> Any:
            if _importing():
                self._by_imports += 1
            return self._register(function, *args, **kwargs)

        counted.__doc__ = atexit.register.__doc__
        self._counted: Any = counted

    def state(self) -> int:
        return atexit._ncallbacks() - self._by_imports

    def begin_cell(self) -> None:
        """Tell the handlers that modules register while imported from the cell's own."""
        module: Any = atexit
        if module.register is not self._counted:
            self._register = module.register
            module.register = self._counted

    def end_cell(self) -> str:
        module: Any = atexit
        if module.register is self._counted:
            module.register = self._register
        return ""

    def change(self, before: int | None, after: int) -> Any:
        if before is not None and after < before:
            raise Unrestorable("it unregisters atexit handlers, which only running it does")
        raise Unrestorable("it registers an atexit handler, which only running it does")

    def version(self, initial: Any, now: Any) -> str | None:
        if now is None or initial is None or now == initial:
            return None
        return f"{now - initial:+d} handlers"


def _importing() -> bool:
    """Whether the caller runs inside an import (a module's code registering a handler)."""
    frame: Any = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class IPythonConfig(Provider):
    """IPython's configuration as ``%config Class.trait = value`` changes it (the inline
    backend's figure formats...), and how results are shown (``%precision``, ``%pprint``,
    ``InteractiveShell.ast_node_interactivity = 'all'``): what later cells display with; set
    again as the magics set it."""

    name = "ipython"

    def state(self) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
        shell = _shell()
        if shell is None:
            return None
        config = {
            section: dict.copy(values) if isinstance(values, dict) else values
            for section, values in dict.items(shell.config)
        }
        return config, _shown_as(shell)

    def change(self, before: Any, after: Any) -> tuple[Any, ...]:
        old = before[0] if before else {}
        changed = []
        for section, values in sorted(after[0].items()):
            then = old.get(section)
            if not isinstance(values, dict):
                continue
            for trait, value in sorted(values.items()):
                if not isinstance(then, dict) or trait not in then or not _same(then[trait], value):
                    changed.append((section, trait, value))
        shown = after[1] if not before or before[1] != after[1] else None
        return tuple(changed), shown

    def apply(self, change: Sequence[Any]) -> None:
        shell = _shell()
        if shell is None:
            return
        changed, shown = change
        if changed:
            from traitlets.config import Config

            config = Config()
            for section, trait, value in changed:
                config[section][trait] = value
            shell.config.merge(config)
            for configurable in list(shell.configurables):
                try:
                    configurable.update_config(config)
                except Exception:
                    continue
        formatter = _text_formatter(shell)
        if shown and formatter is not None:
            formatter.float_precision, formatter.pprint, interactivity = shown
            # (Set on the instance only where it differs: a notebook that set it on the class,
            # replacing the trait, would find the instance's copy hiding its later changes.)
            if shell.ast_node_interactivity != interactivity:
                shell.ast_node_interactivity = interactivity


def _shell() -> Any:
    """The running IPython shell, as ``get_ipython()`` finds it (read off the singleton:
    ``get_ipython()`` itself costs a microsecond)."""
    module = sys.modules.get("IPython.core.interactiveshell")
    shell_class = getattr(module, "InteractiveShell", None)
    return getattr(shell_class, "_instance", None)


def _text_formatter(shell: Any) -> Any:
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    return formatters.get("text/plain") if isinstance(formatters, dict) else None


def _shown_as(shell: Any) -> tuple[Any, ...]:
    """How results are shown: the text formatter's float precision and pretty printing, and
    which expressions of a cell show (``InteractiveShell.ast_node_interactivity = 'all'``)."""
    formatter = _text_formatter(shell)
    if formatter is None:
        return ()
    return formatter.float_precision, formatter.pprint, shell.ast_node_interactivity


class CycleCollector(Provider):
    """``gc.disable()`` and ``gc.set_threshold(...)`` (a notebook's speed-up for a loop making
    many objects; not nbcellar's own pauses while it saves)."""

    name = "gc"

    def __init__(self) -> None:
        import gc

        from nbcellar.store.pickling import collection_enabled

        self._enabled = collection_enabled
        self._threshold = gc.get_threshold

    def state(self) -> tuple[bool, tuple[int, ...]]:
        return self._enabled(), self._threshold()

    def change(self, before: Any, after: Any) -> Any:
        return after

    def apply(self, change: Any) -> None:
        import gc

        from nbcellar.store.pickling import enable_collection

        enabled, threshold = change
        enable_collection(enabled)
        gc.set_threshold(*threshold)


_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")


class FigureFormats(Provider):
    """The formats matplotlib figures are shown in: the printers of figures IPython's display
    formatter holds (``set_matplotlib_formats('svg')``, the inline backend's formats), set
    again on restore. Before matplotlib is imported there are none: the cell that imports it
    makes the inline backend's, which a restore makes again."""

    name = "figure formats"

    def __init__(self) -> None:
        self._last: tuple[tuple[Any, ...], tuple[Any, ...]] = ((), ())  # printers, described
        self._found: tuple[Any, list[str], list[Any]] = (None, [], [])

    def _tables(self, formatters: dict[str, Any]) -> tuple[list[str], list[Any]]:
        """The image formatters' tables of printers by type (``for_type`` changes them in
        place), looked up again only when the formatters are others."""
        known, kinds, tables = self._found
        if known is not formatters or len(kinds) != len(tables):
            kinds = [kind for kind in _IMAGE_TYPES if kind in formatters]
            tables = [formatters[kind].type_printers for kind in kinds]
            self._found = formatters, kinds, tables
        return kinds, tables

    def state(self) -> tuple[Any, ...] | None:
        formatters = _formatters()
        if formatters is None:
            return None
        module = sys.modules.get("matplotlib.figure")
        if module is None:
            return ()
        figure = module.Figure
        kinds, tables = self._tables(formatters)
        printers = tuple(table.get(figure) for table in tables)
        seen, described = self._last
        if printers != seen:  # (functions and partials compare by identity)
            described = tuple(zip(kinds, map(_printer_of, printers), strict=True))
            self._last = printers, described
        return described

    def change(self, before: Any, after: Any) -> tuple[tuple[str, Any], ...]:
        formatters = _formatters()
        module = sys.modules.get("matplotlib.figure")
        if formatters is None or module is None:
            return ()
        # (All of them: importing matplotlib again on restore may make the inline backend's.)
        return tuple((kind, formatters[kind].type_printers.get(module.Figure)) for kind, _ in after)

    def version(self, initial: Any, now: Any) -> str | None:
        """By what the printers are (their functions and arguments, not their ids)."""
        if now is None or initial is None or now == initial:
            return None
        old = dict(initial)
        return digest(repr([(kind, printer) for kind, printer in now if old.get(kind) != printer]))

    def apply(self, change: Sequence[tuple[str, Any]]) -> None:
        formatters = _formatters()
        if formatters is None or not change:
            return
        from matplotlib.figure import Figure

        for kind, printer in change:
            if printer is None:
                formatters[kind].pop(Figure, None)
            else:
                formatters[kind].for_type(Figure, printer)


def _formatters() -> dict[str, Any] | None:
    shell = _shell()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    return formatters if isinstance(formatters, dict) else None


def _printer_of(printer: Any) -> Any:
    """A figure printer as what it does: its function and arguments (a partial of IPython's
    ``print_figure`` with ``fmt='svg'``...)."""
    if printer is None:
        return None
    function = getattr(printer, "func", printer)
    named = (getattr(function, "__module__", None), getattr(function, "__qualname__", None))
    if isinstance(printer, functools.partial):
        return (*named, repr(printer.args), repr(sorted(printer.keywords.items())))
    return named


_SIGNALS = ("SIGALRM", "SIGVTALRM", "SIGPROF", "SIGUSR1", "SIGUSR2", "SIGHUP", "SIGTERM")


class SignalHandlers(Provider):
    """``signal.signal(signal.SIGALRM, on_timeout)`` and the like (not ``SIGINT``, which the
    kernel handles): a handler of the notebook is installed again on restore (a timer firing
    without it would end the kernel)."""

    name = "signals"

    def __init__(self) -> None:
        import _signal  # type: ignore[import-not-found]
        import signal

        self._getsignal = _signal.getsignal  # (signal's own wraps it in an enum: 15x slower)
        self._signals = tuple(
            (name, getattr(signal, name)) for name in _SIGNALS if hasattr(signal, name)
        )

    def state(self) -> tuple[Any, ...]:
        getsignal = self._getsignal
        return tuple(getsignal(number) for _, number in self._signals)

    def change(self, before: Sequence[Any], after: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            (name, handler)
            for (name, _), old, handler in zip(self._signals, before, after, strict=True)
            if old is not handler
        )

    def version(self, initial: Any, now: Any) -> str | None:
        """By what the handlers are (a function by its code)."""
        if now is None or initial is None or now == initial:
            return None
        found = self.change(initial, now)
        return digest([(n, _content(h)) for n, h in found]) if found else None

    def apply(self, change: Sequence[tuple[str, Any]]) -> None:
        import signal

        for name, handler in change:
            if handler is None:
                raise Unrestorable(f"the handler of {name} was not installed from Python")
            signal.signal(getattr(signal, name), handler)


def _content(value: Any) -> str:
    """What a value is, by content: a function or class by what its code does, not where it
    came from (a notebook's cell file is named after its kernel's process, a restored
    function's after the restoring one; marshal's bytes depend on which strings are shared),
    anything else as :mod:`nbcellar.cache.providers` takes it."""
    from nbcellar.cache import providers

    codes = providers._codes_of(value)
    if codes:
        return digest(repr([_code_content(code) for code in codes]))  # (pickle shares strings)
    return providers._content(value)


def _code_content(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(
        _code_content(c) if isinstance(c, types.CodeType)
        else tuple(sorted(map(repr, c))) if isinstance(c, frozenset)
        else c
        for c in code.co_consts
    )  # fmt: skip
    return (
        code.co_name, code.co_code, consts, code.co_names, code.co_varnames, code.co_freevars,
        code.co_cellvars, code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
        code.co_flags,
    )  # fmt: skip


def process_providers() -> list[Provider]:
    """The providers of this module, in the order their changes are applied again (the
    time zone after the environment, which holds ``TZ``)."""
    return [
        InterpreterSettings(),
        Umask(),
        Locale(),
        TimeZone(),
        DecimalContext(),
        BuiltinNames(),
        CycleCollector(),
        AtexitHandlers(),
        SignalHandlers(),
        IPythonConfig(),
        FigureFormats(),
    ]
