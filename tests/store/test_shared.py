"""A store shared through S3 (a moto server on loopback) or a shared folder (``file://``): what
one client saves another, with a cache folder of its own, loads; what does not verify is
refused by name and never unpickled; bad input is one line and writes nothing."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from nbcellar.store import RestoreWarning, Store, open_store
from nbcellar.store.location import shared_url
from nbcellar.store.mirror import SharedStoreWarning
from tests.conftest import nbcellar_process

MARKER_VARIABLE = "NBCELLAR_TEST_MARKER"


class Planted:
    """Whoever unpickles this touches the marker file."""

    def __init__(self) -> None:
        self.n = 1
        self.padding = b"x" * 20_000  # (a value too big to be kept inline: an object)

    def __setstate__(self, state: dict[str, Any]) -> None:
        pathlib.Path(os.environ[MARKER_VARIABLE]).touch()
        self.__dict__.update(state)


def cli_run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), terminal_width=200)


def init(url: str) -> str:
    result = cli_run("store", "init", "--shared", url)
    assert result.exit_code == 0, result.output
    return str(result.output)


def as_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    """From now on, act as another machine: a cache folder of its own (the key is shared)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / f"cache-{name}"))


def s3(bucket: str) -> Any:
    import boto3

    return boto3.client("s3")


def keys(bucket: str) -> list[str]:
    listed = s3(bucket).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def flip_byte(bucket: str, key: str, at: int = -1) -> None:
    client = s3(bucket)
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[at] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))


def save_and_record(store: Store, values: dict[str, Any], key: str = "k") -> str:
    snapshot = store.save_namespace(values)
    store.put_record("test", key, b"payload " + key.encode(), snapshot.id)
    return snapshot.id


def test_a_snapshot_saved_by_one_client_loads_in_another(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/team/store"
    init(url)
    array = np.arange(300_000, dtype=np.float64)  # out of band: a blob of its own
    as_client(monkeypatch, tmp_path, "a")
    first = open_store(url)
    assert shared_url(first.root) == url
    save_and_record(first, {"x": 1, "words": ["a", "b"], "array": array, "alias": array})
    first.close()
    stored = keys(s3_bucket)
    assert any(k.startswith("team/store/objects/") for k in stored)
    assert any(k.startswith("team/store/journal/") for k in stored)

    as_client(monkeypatch, tmp_path, "b")
    second = open_store(url)
    assert second.root != first.root
    record = second.get_record("test", "k")
    assert record is not None
    assert record.payload == b"payload k"
    assert record.snapshot_id is not None
    loaded = second.load_namespace(record.snapshot_id)
    assert loaded["x"] == 1
    assert loaded["words"] == ["a", "b"]
    np.testing.assert_array_equal(loaded["array"], array)
    assert loaded["alias"] is loaded["array"]
    second.close()


def test_a_record_put_a_moment_ago_elsewhere_is_found_on_a_miss(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    init(url)
    as_client(monkeypatch, tmp_path, "reader")
    reader = open_store(url)
    assert reader.get_record("test", "late") is None
    as_client(monkeypatch, tmp_path, "writer")
    writer = open_store(url)
    save_and_record(writer, {"v": 42}, "late")
    writer.close()
    import time

    time.sleep(1.1)  # (a miss syncs at most once a second)
    found = reader.get_record("test", "late")
    assert found is not None
    assert found.snapshot_id is not None
    assert reader.load_namespace(found.snapshot_id) == {"v": 42}
    reader.close()


def test_a_deleted_record_goes_from_every_client(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    init(url)
    as_client(monkeypatch, tmp_path, "a")
    first = open_store(url)
    save_and_record(first, {"v": 1}, "gone")
    first.flush()  # (sent now, not a moment later)
    as_client(monkeypatch, tmp_path, "b")
    second = open_store(url)
    assert second.get_record("test", "gone") is not None
    first.delete_records("test", ["gone"])
    first.close()
    second.mirror.sync(second.index)  # type: ignore[union-attr]
    assert second.list_records("test") == []
    second.close()


def test_the_same_store_on_a_shared_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "nfs").mkdir()
    url = f"file://{tmp_path}/nfs/store"
    init(url)
    as_client(monkeypatch, tmp_path, "a")
    first = open_store(url)
    save_and_record(first, {"array": np.ones(200_000), "n": 3})
    first.close()
    assert list((tmp_path / "nfs" / "store" / "journal").glob("*/*.json"))
    assert not list((tmp_path / "nfs").rglob("*.sqlite"))  # SQLite stays local
    as_client(monkeypatch, tmp_path, "b")
    second = open_store(url)
    record = second.get_record("test", "k")
    assert record is not None
    assert record.snapshot_id is not None
    loaded = second.load_namespace(record.snapshot_id)
    assert loaded["n"] == 3
    np.testing.assert_array_equal(loaded["array"], np.ones(200_000))
    second.close()


WRITER = """
import sys
import numpy as np
from nbcellar.store import open_store

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(url)
for i in range(count):
    snapshot = store.save_namespace({"who": name, "i": i, "data": np.full(5000, i)})
    store.put_record("test", f"{name}-{i}", name.encode(), snapshot.id)
store.close()
"""


def test_two_clients_write_at_once_and_a_third_reads_everything(
    s3_bucket: str, tmp_path: Path
) -> None:
    url = f"s3://{s3_bucket}/s"
    init(url)
    env = dict(os.environ)
    writers = []
    for name in ("a", "b"):
        env_of = {**env, "XDG_CACHE_HOME": str(tmp_path / f"cache-{name}")}
        writers.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, url, name, "12"],
                env=env_of,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache-c")
    reader = open_store(url)
    found = reader.list_records("test")
    assert sorted(r.key for r in found) == sorted(f"{n}-{i}" for n in "ab" for i in range(12))
    for record in found:
        assert record.snapshot_id is not None
        values = reader.load_namespace(record.snapshot_id)
        who, i = record.key.split("-")
        assert values["who"] == who
        assert values["i"] == int(i)
        np.testing.assert_array_equal(values["data"], np.full(5000, int(i)))
    reader.close()


def _planted_store(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    marker = tmp_path / "unpickled"
    monkeypatch.setenv(MARKER_VARIABLE, str(marker))
    init(url)
    as_client(monkeypatch, tmp_path, "writer")
    writer = open_store(url)
    snapshot_id = save_and_record(writer, {"planted": Planted(), "big": np.zeros(100_000)})
    value_key = writer.snapshot(snapshot_id)["planted"].value_key
    writer.close()
    assert value_key is not None
    as_client(monkeypatch, tmp_path, "reader")
    return marker, value_key


def test_a_tampered_object_is_refused_and_never_unpickled(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    marker, _ = _planted_store(url, tmp_path, monkeypatch)
    # Planted's value and the array's buffer are objects of their own: flip a byte in each.
    objects = [k for k in keys(s3_bucket) if "/objects/" in k]
    assert objects
    for key in objects:
        flip_byte(s3_bucket, key)
    reader = open_store(url)
    record = reader.get_record("test", "k")
    assert record is not None
    assert record.snapshot_id is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = reader.load_namespace(record.snapshot_id)
    assert "big" not in loaded
    assert "planted" not in loaded
    said = [str(w.message) for w in caught if issubclass(w.category, RestoreWarning)]
    assert any("bad signature" in s and url in s for s in said), said
    assert all("\n" not in s for s in said)
    assert not marker.exists()
    reader.close()


def test_a_tampered_journal_entry_is_refused_and_never_unpickled(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    marker, _ = _planted_store(url, tmp_path, monkeypatch)
    entries = [k for k in keys(s3_bucket) if "/journal/" in k]
    assert len(entries) == 1
    flip_byte(s3_bucket, entries[0], at=len("NBCJ1\n") + 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = open_store(url)
    said = [str(w.message) for w in caught if issubclass(w.category, SharedStoreWarning)]
    assert len(said) == 1
    assert "bad signature" in said[0]
    assert entries[0].partition("/journal/")[2] in said[0]
    assert reader.get_record("test", "k") is None
    assert reader.snapshots() == []
    assert not marker.exists()
    reader.close()


def test_an_unsigned_entry_is_refused(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    init(url)
    body = {
        "writer": "x",
        "changes": [
            {
                "op": "put",
                "kind": "test",
                "key": "k",
                "payload": "",
                "created": 1.0,
                "snapshot": None,
            }
        ],
    }
    from nbcellar.store.shared import entry_name

    s3(s3_bucket).put_object(
        Bucket=s3_bucket, Key=f"s/journal/{entry_name('x')}", Body=json.dumps(body).encode()
    )
    with pytest.warns(SharedStoreWarning, match="not signed"):
        reader = open_store(url)
    assert reader.get_record("test", "k") is None
    reader.close()


def one_line_error(*args: str) -> str:
    result = cli_run(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("nbcellar: error: ")
    assert "Traceback" not in result.output
    return lines[0]


def nothing_local(tmp_path: Path) -> None:
    shared = tmp_path / "cache" / "nbcellar" / "shared"
    assert not shared.exists() or not any(shared.iterdir())


def test_bad_input_is_one_line_and_writes_nothing(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    line = one_line_error("store", "info", "--store", url)
    assert "not an nbcellar store yet" in line
    assert "store init --shared" in line
    nothing_local(tmp_path)

    line = one_line_error("store", "info", "--store", "s3://no-such-bucket-here/s")
    assert "the bucket no-such-bucket-here does not exist" in line
    line = one_line_error("store", "init", "--shared", "s3://no-such-bucket-here/s")
    assert "does not exist" in line
    assert not list((tmp_path / "config").rglob("*.key"))

    init(url)
    written = keys(s3_bucket)
    key_files = list((tmp_path / "config").rglob("*.key"))
    assert len(key_files) == 1
    assert key_files[0].stat().st_mode & 0o777 == 0o600

    key_files[0].rename(tmp_path / "elsewhere.key")
    line = one_line_error("store", "info", "--store", url)
    assert "no key" in line
    assert "NBCELLAR_STORE_KEY" in line
    monkeypatch.setenv("NBCELLAR_STORE_KEY", "not the key")
    line = one_line_error("store", "info", "--store", url)
    assert "is not the key of" in line
    line = one_line_error("store", "init", "--shared", url)
    assert "another key" in line
    monkeypatch.setenv("NBCELLAR_STORE_KEY", (tmp_path / "elsewhere.key").read_text().strip())
    assert cli_run("store", "info", "--store", url).exit_code == 0
    nothing_after_open = keys(s3_bucket)
    assert nothing_after_open == written

    description = json.loads(
        s3(s3_bucket).get_object(Bucket=s3_bucket, Key="s/store.json")["Body"].read()
    )
    s3(s3_bucket).put_object(
        Bucket=s3_bucket,
        Key="s/store.json",
        Body=json.dumps({**description, "format": 99}).encode(),
    )
    (tmp_path / "nb.py").write_text("# %%\nx = 1\n")
    # (a new command: this process checked the store a moment ago and trusts that a while)
    done = nbcellar_process("run", str(tmp_path / "nb.py"), "--store", url)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "newer nbcellar" in lines[0]
    assert keys(s3_bucket) == written

    line = one_line_error("store", "info", "--store", "nosuchscheme://x/y")
    assert "no file system is known" in line


def test_a_scheme_whose_package_is_missing_says_which(tmp_path: Path) -> None:
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    line = one_line_error("store", "info", "--store", "gs://bucket/store")
    assert "pip install gcsfs" in line


def test_store_info_and_verify_name_the_url(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    init(url)
    as_client(monkeypatch, tmp_path, "a")
    first = open_store(url)
    save_and_record(first, {"array": np.ones(100_000)})
    first.close()
    as_client(monkeypatch, tmp_path, "b")
    info = cli_run("store", "info", "--store", url)
    assert info.exit_code == 0, info.output
    assert f"shared:     {url}" in info.output
    verify = cli_run("store", "verify", "--store", url)
    assert verify.exit_code == 0, verify.output
    assert url in verify.output
    assert "store is intact" in verify.output
    gc = cli_run("store", "gc", "--store", url)
    assert gc.exit_code == 0, gc.output
    assert "from the local copy only" in gc.output
    assert any("/objects/" in k for k in keys(s3_bucket))


def recorded(store: Store, key: str) -> dict[str, Any]:
    """The values of the record ``key`` (kind ``test``) as ``store`` loads them."""
    record = store.get_record("test", key)
    assert record is not None
    assert record.snapshot_id is not None
    return store.load_namespace(record.snapshot_id)


def objects(bucket: str) -> set[str]:
    """The objects of the store at s3://bucket/s, by key."""
    found = (k.split("/objects/", 1)[1].replace("/", "") for k in keys(bucket) if "/objects/" in k)
    return set(found)


def blobs_of(store: Store, snapshot_id: str) -> set[str]:
    """The objects a snapshot's values are kept in (a value's own, an array's buffer)."""
    db = store.index.db
    values = [k for (k,) in db.execute("SELECT v.value_key FROM variables v JOIN stored_values s "
                                       "ON s.key = v.value_key WHERE v.snapshot_id = ? AND "
                                       "s.data IS NULL", (snapshot_id,))]  # fmt: skip
    marks = ",".join("?" * len(values))
    query = f"SELECT blob_key FROM value_blobs WHERE value_key IN ({marks})"
    return {*values, *(k for (k,) in db.execute(query, values))}


def test_gc_remote_deletes_only_what_no_client_uses(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    init(url)
    as_client(monkeypatch, tmp_path, "a")
    first = open_store(url)
    old = save_and_record(first, {"old": np.arange(100_000) * 2}, "old")
    kept = save_and_record(first, {"kept": np.arange(100_000) * 3}, "kept")
    run = first.root / "runs" / "r1"  # a run's files are objects too
    run.mkdir(parents=True)
    (run / "executed.ipynb").write_text('{"cells": []}')
    first.put_record("run", "r1", b"{}")
    first.flush()
    old_blobs, kept_blobs = blobs_of(first, old), blobs_of(first, kept)
    assert old_blobs
    assert kept_blobs
    assert old_blobs <= objects(s3_bucket)

    as_client(monkeypatch, tmp_path, "b")
    second = open_store(url)  # another client forgets a record: every client does
    second.delete_records("test", ["old"])
    second.close()
    report = first.gc(remote=True, grace=0)
    assert report.shared_removed == len(old_blobs)
    assert report.shared_freed_bytes > 800_000
    left = objects(s3_bucket)
    assert not old_blobs & left
    assert kept_blobs <= left
    fresh_key = "ab" * 32  # an unused object written a moment ago (on its way for a record)
    first.mirror.remote.put_object(fresh_key, b"x" * 100)  # type: ignore[union-attr]
    assert first.gc(remote=True, grace=60).shared_removed == 0
    assert fresh_key in objects(s3_bucket)
    assert first.gc(remote=True, grace=0).shared_removed == 1  # (no longer within the grace)
    assert fresh_key not in objects(s3_bucket)
    first.close()

    as_client(monkeypatch, tmp_path, "c")
    third = open_store(url)
    np.testing.assert_array_equal(recorded(third, "kept")["kept"], np.arange(100_000) * 3)
    assert (third.root / "runs" / "r1" / "executed.ipynb").read_text() == '{"cells": []}'
    assert third.verify().ok
    third.close()


def test_a_writer_sends_again_what_a_collection_took(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client remembers which objects it sent; after another client's collection took one,
    a record naming it again (the same bytes: a cell computed again) sends it again."""
    url = f"s3://{s3_bucket}/s"
    init(url)
    as_client(monkeypatch, tmp_path, "a")
    first = open_store(url)
    values = {"v": np.arange(100_000) * 5}
    save_and_record(first, values, "one")
    first.delete_records("test", ["one"])
    first.flush()
    as_client(monkeypatch, tmp_path, "b")
    collector = open_store(url)
    assert collector.gc(remote=True, grace=0).shared_removed >= 1
    collector.close()

    snapshot = save_and_record(first, values, "two")  # (the same bytes as before)
    sent = blobs_of(first, snapshot)
    first.close()
    assert sent
    assert sent <= objects(s3_bucket)
    as_client(monkeypatch, tmp_path, "c")
    reader = open_store(url)
    np.testing.assert_array_equal(recorded(reader, "two")["v"], values["v"])
    reader.close()


def test_gc_remote_from_the_command_line(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/s"
    init(url)
    first = open_store(url)
    save_and_record(first, {"a": np.ones(100_000)}, "a")
    first.delete_records("test", ["a"])
    first.close()
    collected = cli_run("store", "gc", "--remote", "--grace", "0s", "--store", url)
    assert collected.exit_code == 0, collected.output
    assert f"{url}: removed 2 objects no record uses" in collected.output  # (value, array)
    assert not objects(s3_bucket)
    local = cli_run("store", "gc", "--remote", "--store", str(tmp_path / "plain"))
    assert local.exit_code == 0  # (no store there: nothing to collect)
    open_store(tmp_path / "plain").close()
    local = cli_run("store", "gc", "--remote", "--store", str(tmp_path / "plain"))
    assert local.exit_code != 0
    assert "is not a shared store" in local.output
    assert len(local.output.strip().splitlines()) == 1
