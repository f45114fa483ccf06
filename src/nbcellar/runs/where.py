"""The ``--where`` language: ``name<op>value`` tests on runs, shared by ``nbcellar runs``, the
dashboard's runs table and its API.

The name is a parameter or a logged value (parameters first); the value is read as a ``-p``
value is (``1``, ``0.5``, ``rf``, ``True``); the operators are ``=``, ``!=``, ``<``, ``<=``,
``>``, ``>=``. A run without the name does not match, nor does one whose value cannot be
compared with the one asked for (a string and a number). Several conditions must all hold:
repeat ``--where`` on the command line; in one line of text (the dashboard's filter box),
separate them with ``;`` or ``and``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<=": operator.le, ">=": operator.ge, "!=": operator.ne, "=": operator.eq,
    "<": operator.lt, ">": operator.gt,
}  # fmt: skip


@dataclass(frozen=True)
class Condition:
    name: str
    op: str
    wanted: Any
    text: str

    def value_of(self, params: Mapping[str, Any], values: Mapping[str, Any]) -> tuple[bool, Any]:
        """Whether the run has the name, and its value there (parameters first)."""
        source = params if self.name in params else values
        return (self.name in source, source.get(self.name))

    def holds(self, params: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
        found, value = self.value_of(params, values)
        if not found:
            return False
        try:
            return bool(_COMPARE[self.op](value, self.wanted))
        except TypeError:  # not comparable (a string and a number): not a match
            return False

    def __call__(self, record: Any) -> bool:
        """The test on a run record (``params`` and ``values``)."""
        return self.holds(record.params, record.values)


def parse_condition(text: str) -> Condition:
    """``name<op>value`` as a :class:`Condition`; one clear error for anything else."""
    from nbcellar.runs.params import ParameterError, parse_value

    for symbol in OPERATORS:
        name, found, raw = text.partition(symbol)
        if found and name.strip():
            break
    else:
        raise ParameterError(
            f"--where {text!r}: expected NAME=VALUE, NAME<VALUE, ... (e.g. mse<0.5)"
        )
    if not raw.strip():
        raise ParameterError(f"--where {text!r}: no value after {symbol!r} (e.g. "
                             f"{name.strip()}{symbol}0.5; the empty string is '')")  # fmt: skip
    try:
        value = parse_value(raw.strip())
    except ParameterError as exc:
        raise ParameterError(f"--where {text!r}: {exc}") from None
    return Condition(name.strip(), symbol, value, text.strip())


def parse_conditions(text: str) -> list[Condition]:
    """Conditions in one line, separated by ``;`` or ``and`` (an empty line: none)."""
    parts = re.split(r";|\s+and\s+", text)
    return [parse_condition(part) for part in parts if part.strip()]
