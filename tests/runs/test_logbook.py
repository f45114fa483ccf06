"""The log book behind nbcellar.log (no kernel)."""

from __future__ import annotations

import math

import nbcellar
from nbcellar.logbook import BOOK, LogBook, expand, plain, rest, summarize


def test_values_and_histories() -> None:
    book = LogBook()
    heard: list[tuple[str, object]] = []
    book.listeners.append(lambda name, value: heard.append((name, value)))
    book.log({"loss": 1.0, "acc": 0.5})
    book.log({"loss": 0.5})
    assert book.values() == {"loss": 0.5, "acc": 0.5}
    assert book.histories() == {"loss": [1.0, 0.5], "acc": [0.5]}
    assert heard == [("loss", 1.0), ("acc", 0.5), ("loss", 0.5)]
    book.replay([("restored", 3)])
    assert heard[-1] == ("loss", 0.5)  # replays are not news to listeners
    assert book.values()["restored"] == 3


def test_plain_values_go_to_json_the_rest_to_the_store() -> None:
    assert plain({"a": [1, 2.5, None, "x", True]})
    assert not plain(math.nan)
    assert not plain({1: "int key"})
    assert not plain((1, 2))
    frame = object()
    entries = [("a", 1), ("b", frame), ("c", [1, 2]), ("d", math.inf)]
    rows = summarize(entries)
    assert rows[0] == ["a", {"value": 1}]
    assert rows[1] == ["b", {"type": "object", "index": 0, "shown": {"text": repr(frame)}}]
    assert rows[3] == ["d", {"type": "float", "index": 1, "shown": {"text": "inf"}}]
    kept = rest(entries)
    assert kept == [frame, math.inf]
    assert expand(rows, kept) == entries


def test_the_top_level_function_logs_to_the_process_book() -> None:
    before = len(BOOK.entries)
    nbcellar.log(answer=42)
    assert nbcellar.logged()["answer"][-1] == 42
    del BOOK.entries[before:]
