"""Locks between processes are leases: a holder gone (dead, a reused pid, another host that
stopped renewing) is taken over, and a waiter says who it waits for."""

from __future__ import annotations

import time

import pytest

from nbcellar.owners import LEASE_SECONDS, me
from nbcellar.store import Store
from nbcellar.store.records_table import locked, try_lock


def hold_as(store: Store, owner: str, since: float) -> None:
    with store.index.write() as db:
        db.execute("INSERT OR REPLACE INTO locks VALUES ('cell:k', ?, ?)", (owner, since))


def test_a_reused_pid_is_not_the_holder(store: Store) -> None:
    host, pid, _ = me().split(":")
    hold_as(store, f"{host}:{pid}:1", time.time())  # this pid, another process's start time
    assert try_lock(store.index, "cell:k")


def test_a_holder_on_another_host_keeps_the_lock_while_its_lease_runs(store: Store) -> None:
    hold_as(store, "another-host:4242:1", time.time())
    assert not try_lock(store.index, "cell:k")
    hold_as(store, "another-host:4242:1", time.time() - LEASE_SECONDS - 1)
    assert try_lock(store.index, "cell:k")


def test_a_waiter_says_who_it_waits_for(store: Store, capfd: pytest.CaptureFixture[str]) -> None:
    hold_as(store, "gpu-3:4242:1", time.time() - LEASE_SECONDS + 1.0)  # a second to run
    began = time.monotonic()
    with locked(store.index, "cell:k", say_after=0.2) as free:
        assert not free
    assert time.monotonic() - began < 10
    err = capfd.readouterr().err
    assert "nbcellar: waiting for cell:k (held by pid 4242 on gpu-3" in err
    assert err.count("nbcellar: waiting") == 1


def test_a_held_lock_is_renewed_by_its_holder(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbcellar.store import records_table

    monkeypatch.setattr(records_table._Heartbeat, "every", 0.1)
    beat = records_table._Heartbeat()
    monkeypatch.setattr(records_table, "_HEARTBEAT", beat)
    assert try_lock(store.index, "cell:k")
    with store.index.write() as db:
        db.execute("UPDATE locks SET since = 0 WHERE name = 'cell:k'")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = store.index.db.execute("SELECT since FROM locks WHERE name = 'cell:k'").fetchone()
        if row[0] > 0:
            break
        time.sleep(0.05)
    assert row[0] > time.time() - 5
