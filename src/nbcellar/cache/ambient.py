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

import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


class Unrestorable(Exception):
    """A change that cannot be applied again; the message says what it is, in a few words."""


def digest(value: Any) -> str:
    """A short stable hash of a canonically ordered value (of its text where it cannot be
    pickled). Pickled without its memo: with one, equal values differ by the identity of their
    parts (two entries of ``sys.path`` that are one string object when a cell appended them,
    two strings when a restored cell's change was read back from the store)."""
    import io

    import xxhash

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.fast = True  # (no memo: every part written in full, whoever else holds it)
    try:
        pickler.dump(value)
        data = buffer.getvalue()
    except Exception:  # (not picklable, or cyclic)
        data = repr(value).encode("utf-8", "backslashreplace")
    return str(xxhash.xxh3_64_hexdigest(data))


class Provider:
    """One piece of ambient state. ``state()`` is called twice per cell: keep it cheap."""

    name: ClassVar[str]
    # Read only by the cells that change it (a random generator: drawing changes it).
    drawn: ClassVar[bool] = False
    # Never an input of a key (what modules are imported: only what they bind is read).
    keyed: ClassVar[bool] = True
    # A change made outside the cells, while no cell changed it, is taken as how the kernel
    # started (a thread setting a variable); False: it is a change all the same (a module
    # reloaded before a cell, by %autoreload).
    adopts_outside_changes: ClassVar[bool] = True

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

    def watch(self, source: str, namespace: Mapping[str, Any]) -> None:
        """Called before each cell (before :meth:`state`) with its code and the namespace it
        runs in: what the code names may say what to follow (patches of library modules)."""

    def begin_cell(self) -> None:
        """Called before each cell (after :meth:`state`)."""

    def end_cell(self) -> str:
        """Called after each cell: why it must always run (it did something outside the
        kernel that only running it again does again), or empty."""
        return ""

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
    # Why the cell must always run (what it did outside the kernel: lines logged to a file).
    always: str = ""


class Ambient:
    """The versions of every provider in one kernel, followed cell by cell."""

    def __init__(self, providers: Iterable[Provider] | None = None) -> None:
        if providers is None:
            from nbcellar.cache.providers import default_providers

            providers = default_providers()
        self.providers = list(providers)
        self.initial: dict[str, Any] = {}
        self.versions: dict[str, str] = {}
        self._last: dict[str, Any] = {}
        for provider in self.providers:
            self.initial[provider.name] = self._last[provider.name] = _safe_state(provider)

    def key_versions(self, versions: Mapping[str, str] | None = None) -> dict[str, str]:
        """The versions later cells key on: every state read without being changed that an
        earlier cell changed (of ``versions``, the versions now by default)."""
        by_name = {p.name: p for p in self.providers}
        return {
            name: version
            for name, version in sorted((self.versions if versions is None else versions).items())
            if name in by_name and by_name[name].keyed and not by_name[name].drawn
        }

    def drawn_versions(
        self, names: Iterable[str], versions: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The versions of the generators ``names`` now (``initial`` for an unchanged one)."""
        known = self.versions if versions is None else versions
        return {name: known.get(name, "initial") for name in sorted(names)}

    def observe(self, source: str = "", namespace: Mapping[str, Any] | None = None) -> Observation:
        """The states now (cheap), before a cell whose code is ``source``. A state changed
        since the last cell (by a thread, say) is taken as it is now, as nobody's change (as
        the kernel's start, while no cell changed it); a random generator drawn from outside
        the cells (by the kernel's own machinery, or reseeded in a forked process) keeps its
        version: no cell can repeat those draws."""
        if namespace is not None:
            for provider in self.providers:
                provider.watch(source, namespace)
        states = {p.name: _safe_state(p) for p in self.providers}
        for provider in self.providers:
            now = states[provider.name]
            if now != self._last.get(provider.name):
                self._last[provider.name] = now
                if self.initial.get(provider.name) is None or (
                    not provider.drawn
                    and provider.adopts_outside_changes
                    and provider.name not in self.versions
                ):
                    self.initial[provider.name] = now  # as if the kernel had started so
                elif not provider.drawn:
                    self._update_version(provider, now)
        for provider in self.providers:
            provider.begin_cell()
        return Observation(states, source)

    def settle(self, before: Observation) -> AmbientChange:
        """After a cell: what it changed since ``before``, and the new versions."""
        changes: dict[str, Any] = {}
        drawn: dict[str, str] = {}
        unrestorable: list[str] = []
        always = [reason for p in self.providers if (reason := p.end_cell())]
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
                if provider.drawn and _SEEDING.search(before.source):
                    # It may have seeded the generator to the state it had: nothing to apply
                    # here, but from another state it would do something, so its entry is
                    # kept by the state before it (restored only from that state).
                    drawn[name] = self.versions.get(name, "initial")
                continue
            if provider.drawn:
                drawn[name] = self.versions.get(name, "initial")
            try:
                changes[name] = provider.change(old, new)
            except Unrestorable as exc:
                unrestorable.append(f"{name}: {exc}")
            self._update_version(provider, new)
        return AmbientChange(changes, drawn, "; ".join(unrestorable), "; ".join(always))

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
