"""Content fingerprints of values whose origin nbcellar did not see, and of mutation candidates."""

from __future__ import annotations

from typing import Any

from nbcellar.cache.versions import Fingerprint, Version


def fingerprint(value: Any, name: str = "") -> Fingerprint | None:
    """A hash of the value's pickled bytes and buffers; None when it cannot be pickled.

    With the variable's name it equals the key the store gives that variable saved on its own,
    so a save doubles as a fingerprint.
    """
    from nbcellar.store.values import fingerprint_key

    try:
        return Fingerprint(fingerprint_key({name: value}))
    except Exception:  # unpicklable: its state cannot be read, so it cannot be compared
        return None


def candidate_fingerprint(value: Any, name: str = "") -> Fingerprint | None:
    """What a value the cell may change is compared by: a notebook function's or class's
    state (not the globals its code reads: see nbcellar.cache.inplace), else its content."""
    import functools

    from nbcellar.cache.inplace import restorable_in_place, state_fingerprint

    if restorable_in_place(value) or isinstance(value, functools._lru_cache_wrapper):
        return state_fingerprint(value, name)
    return fingerprint(value, name)


def fingerprint_holding(value: Any, name: str = "") -> tuple[Fingerprint | None, frozenset[int]]:
    """:func:`candidate_fingerprint`, and the ids of the objects the value holds (see
    held_objects)."""
    from nbcellar.store.pickling import held_objects

    return candidate_fingerprint(value, name), frozenset(held_objects(value))


def measured_version(value: Any, name: str = "") -> Version:
    """The version of a value of unknown origin: its content, or (unpicklable) its identity."""
    found = fingerprint(value, name)
    return Version.content(found) if found is not None else Version.identity(value)
