"""Ambient state: the kernel's state outside its variables, as inputs and effects of cells.

A kernel's state is more than ``__main__``'s globals: the working directory, ``os.environ``,
``sys.path``, the modules imported, the global random generators, warnings filters, logging
configuration, library options. Each is an *ambient provider* with a cheap copy of its state
(:meth:`Provider.state`), taken before and after every cell. A cell that changed one read it
and wrote it: what it changed (:meth:`Provider.change`) is part of its effect, stored with its
entry and applied again when it is restored (:meth:`Provider.apply`); a change that cannot be
applied again (a logging handler writing somewhere nbcellar cannot reopen) makes the cell run
again on restore, while the cells below it stay restored.

A provider's *version* says how its state differs from the kernel's start (the same notebook
on another machine, with another environment, starts from its own state): ``None`` while it does
not. Versions join the keys of later cells:

- most state is read without being changed (a relative path read from the working directory,
  a data frame shown with pandas' options): once a cell changed it, every later cell keys on it;
- a global random generator is read only by the cells that draw from it, which change it:
  those key on the version it had before them (see :attr:`Provider.drawn`), so an edit that
  draws a different number of values above runs again exactly the cells below that draw.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


class Unrestorable(Exception):
    """A change that cannot be applied again; the message says what it is, in a few words."""


def digest(value: Any) -> str:
    """A short stable hash of a (picklable, canonically ordered) value."""
    import xxhash

    return str(xxhash.xxh3_64_hexdigest(pickle.dumps(value, protocol=4)))


class Provider:
    """One piece of ambient state. ``state()`` is called twice per cell: keep it cheap."""

    name: ClassVar[str]
    # Read only by the cells that change it (a random generator: drawing changes it).
    drawn: ClassVar[bool] = False
    # Never an input of a key (what modules are imported: only what they bind is read).
    keyed: ClassVar[bool] = True

    def state(self) -> Any:
        """A copy of the state now, comparable with ``==``; None when there is none yet (its
        library is not imported)."""
        raise NotImplementedError

    def change(self, before: Any, after: Any) -> Any:
        """What turns ``before`` into ``after``, to :meth:`apply` again; picklable and in a
        canonical order (it is also hashed). Raises :class:`Unrestorable`."""
        raise NotImplementedError

    def apply(self, change: Any) -> None:
        raise NotImplementedError

    def baseline(self) -> Any:
        """The state its library starts with when imported (options at their defaults), or
        None when that cannot be known (a generator seeded from the system's entropy)."""
        return None

    def version(self, initial: Any, now: Any) -> str | None:
        """How ``now`` differs from the kernel's ``initial`` state (None: it does not)."""
        if now == initial or now is None or initial is None:
            return None
        found = self.change(initial, now)
        return digest(found) if found else None


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
        found = dict(data) if isinstance(data, dict) else dict(os.environ)
        for name in [k for k in found if _is_ours(k)]:
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


def _is_ours(name: Any) -> bool:
    text = os.fsdecode(name) if isinstance(name, bytes) else str(name)
    return text.startswith("NBCELLAR_")


class ImportPath(Provider):
    """``sys.path``: entries put first, entries added at the end, and entries taken out."""

    name = "sys.path"

    def state(self) -> tuple[str, ...]:
        return tuple(sys.path)

    def change(self, before: Sequence[str], after: Sequence[str]) -> tuple[Any, ...]:
        old = set(before)
        kept = [p for p in after if p in old]
        first_kept = after.index(kept[0]) if kept else len(after)
        front = tuple(p for p in after[:first_kept] if p not in old)
        back = tuple(p for p in after[first_kept:] if p not in old)
        removed = tuple(p for p in before if p not in set(after))
        return (front, back, removed) if front or back or removed else ()

    def apply(self, change: Sequence[Any]) -> None:
        front, back, removed = change
        for entry in removed:
            while entry in sys.path:
                sys.path.remove(entry)
        sys.path[:0] = [p for p in front if p not in sys.path]
        sys.path.extend(p for p in back if p not in sys.path)


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

        for name in change:
            if name not in sys.modules:
                try:
                    importlib.import_module(name)
                except Exception:
                    continue

    def version(self, initial: Any, now: Any) -> str | None:
        return None


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


_SEEDING = re.compile(r"(seed|set_state|setstate)\s*\(")


@dataclass
class Observation:
    """The providers' states before a cell, to compare with after it."""

    states: dict[str, Any]
    source: str = ""


@dataclass(frozen=True)
class AmbientChange:
    """What a cell did to ambient state: the changes to apply again on restore (by provider,
    in order), the versions the random generators it drew from had before it, and why a
    change of its cannot be applied again (empty when all can)."""

    changes: Mapping[str, Any] = field(default_factory=dict)
    drawn: Mapping[str, str] = field(default_factory=dict)
    unrestorable: str = ""


class Ambient:
    """The versions of every provider in one kernel, followed cell by cell."""

    def __init__(self, providers: Iterable[Provider] | None = None) -> None:
        self.providers = list(providers if providers is not None else default_providers())
        self.initial: dict[str, Any] = {}
        self.versions: dict[str, str] = {}
        self._last: dict[str, Any] = {}
        for provider in self.providers:
            self.initial[provider.name] = self._last[provider.name] = _safe_state(provider)

    def key_versions(self) -> dict[str, str]:
        """The versions later cells key on: every state read without being changed that an
        earlier cell changed."""
        by_name = {p.name: p for p in self.providers}
        return {
            name: version
            for name, version in sorted(self.versions.items())
            if by_name[name].keyed and not by_name[name].drawn
        }

    def drawn_versions(self, names: Iterable[str]) -> dict[str, str]:
        """The versions of the generators ``names`` now (``initial`` for an unchanged one)."""
        return {name: self.versions.get(name, "initial") for name in sorted(names)}

    def observe(self, source: str = "") -> Observation:
        """The states now (cheap), before a cell whose code is ``source``. A state changed
        since the last cell (by a thread, say) is taken as it is now, as nobody's change (as
        the kernel's start, while no cell changed it); a
        random generator drawn from outside the cells (by the kernel's own machinery, or
        reseeded in a forked process) keeps its version: no cell can repeat those draws."""
        states = {p.name: _safe_state(p) for p in self.providers}
        for provider in self.providers:
            now = states[provider.name]
            if now != self._last.get(provider.name):
                self._last[provider.name] = now
                if self.initial.get(provider.name) is None or (
                    not provider.drawn and provider.name not in self.versions
                ):
                    self.initial[provider.name] = now  # as if the kernel had started so
                elif not provider.drawn:
                    self._update_version(provider, now)
        return Observation(states, source)

    def settle(self, before: Observation) -> AmbientChange:
        """After a cell: what it changed since ``before``, and the new versions."""
        changes: dict[str, Any] = {}
        drawn: dict[str, str] = {}
        unrestorable: list[str] = []
        for provider in self.providers:
            name = provider.name
            old, new = before.states.get(name), _safe_state(provider)
            self._last[name] = new
            if old is None and new is not None:  # its library came in during the cell
                old = provider.baseline()
                if old is None and not (provider.drawn and _SEEDING.search(before.source)):
                    # As it comes (a generator seeded from the system's entropy included):
                    # as unpredictable, or as fixed, as at a start.
                    self.initial[name] = new
                    continue
                if self.initial.get(name) is None:
                    self.initial[name] = old
            if old == new:
                continue
            if provider.drawn:
                drawn[name] = self.versions.get(name, "initial")
            try:
                changes[name] = provider.change(old, new)
            except Unrestorable as exc:
                unrestorable.append(f"{name}: {exc}")
            self._update_version(provider, new)
        return AmbientChange(changes, drawn, "; ".join(unrestorable))

    def _update_version(self, provider: Provider, now: Any) -> None:
        try:
            version = provider.version(self.initial.get(provider.name), now)
        except Unrestorable:
            version = digest(repr(now))
        if version is None:
            self.versions.pop(provider.name, None)
        else:
            self.versions[provider.name] = version

    def apply(self, changes: Mapping[str, Any]) -> None:
        """Apply a restored cell's changes again, in the providers' order."""
        for provider in self.providers:
            if provider.name in changes:
                provider.apply(changes[provider.name])


def _safe_state(provider: Provider) -> Any:
    try:
        return provider.state()
    except Exception:  # a library in a state nbcellar does not know: nothing to compare
        return None


def default_providers() -> list[Provider]:
    return [
        WorkingDirectory(),
        Environment(),
        ImportPath(),
        ImportedModules(),
        PythonRandom(),
        NumpyRandom(),
    ]
