"""Versions and key inputs: what a key is made of, kept and compared as data."""

from __future__ import annotations

import json

from nbcellar.cache.keys import KeyInputs
from nbcellar.cache.versions import ABSENT, UNKNOWN, Fingerprint, Version


def test_versions_travel_as_json_and_come_back_equal() -> None:
    versions = [
        ABSENT,
        Version.content(Fingerprint("ab12")),
        Version.stored("cd34", ["mod=src:1", "x@content:ab12"]),
        Version.cell("k1"),
        Version.identity(object()),
        Version.predicted("k2"),
    ]
    for version in versions:
        assert Version.from_json(json.loads(json.dumps(version.to_json()))) == version


def test_a_version_from_an_older_entry_matches_nothing() -> None:
    old = Version.from_json("v:1234+mod=src:abc")
    assert old == UNKNOWN
    assert not old.known


def test_a_value_stored_alone_is_its_own_fingerprint() -> None:
    assert Version.stored("cd34").fingerprint == "cd34"
    assert Version.content(Fingerprint("ab12")).fingerprint == "ab12"
    assert Version.stored("cd34", ["x@content:ab12"]).fingerprint is None
    assert Version.cell("k1").fingerprint is None


def test_key_inputs_round_trip_and_key_on_every_part() -> None:
    inputs = KeyInputs(
        "code",
        False,
        {"a": Version.content(Fingerprint("f1"))},
        {"a": ("b",)},
        {"numpy": "lib:numpy==2"},
        {"data.csv": "stat:1:2"},
        {"cwd": "c1"},
    )
    again = KeyInputs.from_json(json.loads(json.dumps(inputs.to_json())))
    assert again == inputs
    assert again.key() == inputs.key()
    assert inputs.without_aliases().key() != inputs.key()
    changed = KeyInputs(**{**inputs.__dict__, "ambient": {"cwd": "c2"}})
    assert changed.key() != inputs.key()
    assert changed.differences(inputs) == ["kernel state: cwd changed"]
    assert inputs.without_aliases().differences(inputs) == ["the names bound to a's object changed"]
