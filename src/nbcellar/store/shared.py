"""A shared store's files at its URL (any fsspec URL: ``s3://bucket/prefix``, ``file:///nfs/x``).

Layout under the URL, every file written once and never changed (so no rename is needed):

- ``store.json``: the format version and the fingerprint of the key the store is signed with;
- ``objects/<2 hex>/<rest>``: blobs, named by the digest of their content, written
  put-if-absent (a writer that finds one there already wrote the same bytes: a dedup hit);
- ``journal/<yyyymmddhh>/<time>-<writer>.json``: one entry per change of a record, named so
  that names sort by time and a reader lists only the hours it has not seen;
- ``gc/<time>-<writer>.json``: one mark per collection of unused objects (``nbcellar store gc
  --remote``), written before it deletes anything: a writer that sees a mark newer than the
  last it saw stops trusting its memory of which objects are there (see nbcellar.store.mirror).

Each object and entry starts with a magic line and the HMAC-SHA256 of what follows (bound to
its name); a reader refuses, by name, anything whose MAC or digest does not match, before any
of it is unpickled.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from nbcellar.errors import NbcellarError
from nbcellar.store.signing import MAC_SIZE, StoreKeyError, find_key, key_file, key_id, mac
from nbcellar.store.signing import verify_mac as _verify_mac

FORMAT = 1
"""The layout version this nbcellar writes and reads; a newer store.json is refused."""
OBJECT_MAGIC = b"NBCO1\n"
ENTRY_MAGIC = b"NBCJ1\n"
CONNECT_SECONDS = 10
READ_SECONDS = 60

T = TypeVar("T")
U = TypeVar("U")


class SharedStoreError(NbcellarError):
    """A shared store cannot be reached or used (its URL, bucket, credentials, format)."""


class TamperedError(NbcellarError):
    """An object or journal entry of a shared store is unsigned, or its MAC or digest does
    not match: it is refused and nothing of it is unpickled."""

    def __init__(self, what: str, url: str, problem: str) -> None:
        self.what = what
        self.url = url
        self.problem = problem
        super().__init__(f"{what} of {url}: {problem} (refused, not unpickled)")


def is_url(text: str) -> bool:
    """Whether ``--store`` / ``$NBCELLAR_STORE`` names a shared store rather than a folder."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum() and len(scheme) > 1


def normal_url(url: str) -> str:
    """The URL without a trailing slash (two spellings of one store share one cache)."""
    return url.rstrip("/") if not url.endswith("://") else url


RECHECK_SECONDS = 60.0
_CHECKED: dict[tuple[str, bytes], tuple[int, float, Remote]] = {}
"""The stores this process checked, by URL and key: (process id, good until, the store)."""
_FILESYSTEMS: dict[str, tuple[int, Any, str]] = {}
"""The file systems this process made, by URL (and process id: a fork makes its own)."""


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path of the store in it (made once per
    process); one line if the scheme is unknown or its package is not installed."""
    known = _FILESYSTEMS.get(url)
    if known is not None and known[0] == os.getpid():
        return known[1], known[2]
    fs, path = _new_filesystem(url)
    _FILESYSTEMS[url] = (os.getpid(), fs, path)
    return fs, path


def _new_filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
        from fsspec.registry import known_implementations
    except ImportError:
        raise SharedStoreError(
            f"{url}: shared stores need fsspec (pip install fsspec, or 'nbcellar[s3]' for S3)"
        ) from None
    protocol = url.partition("://")[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise SharedStoreError(
            f"{url}: no file system is known for '{protocol}://' (use s3://, gs://, file://, "
            "or a scheme an installed fsspec package provides)"
        ) from None
    except ImportError:
        needed = str(known_implementations.get(protocol, {}).get("class", "")).partition(".")[0]
        package = {"s3fs": "s3fs (or nbcellar[s3])"}.get(needed, needed or "its fsspec package")
        raise SharedStoreError(f"{url}: '{protocol}://' needs the package {package}: pip "
                               f"install {needed or '...'}") from None  # fmt: skip
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        # Every call has a deadline, and listings are never served from a cache (the journal
        # grows under us). The endpoint, region and credentials come from botocore's usual
        # places ($AWS_ENDPOINT_URL, $AWS_PROFILE, ~/.aws), which kernels inherit too.
        options = {
            "use_listings_cache": False,
            "skip_instance_cache": True,
            "config_kwargs": {
                "connect_timeout": CONNECT_SECONDS,
                "read_timeout": READ_SECONDS,
                "retries": {"max_attempts": 3, "mode": "standard"},
            },
        }
    fs, path = fsspec.core.url_to_fs(url, **options)
    if protocol in ("s3", "s3a"):
        fs.retries = 2  # (s3fs's own retry loop, on top of botocore's)
    return fs, str(path).rstrip("/")


@contextmanager
def _reaching(url: str, what: str) -> Iterator[None]:
    """Turn the errors of a remote call into one line naming the store."""
    try:
        yield
    except (NbcellarError, FileExistsError):
        raise
    except PermissionError as exc:
        raise SharedStoreError(
            f"{url}: access denied while {what} ({_reason(exc)}); check the credentials "
            "(AWS_ACCESS_KEY_ID, AWS_PROFILE)"
        ) from None
    except FileNotFoundError as exc:
        if "bucket" in str(exc).lower():
            raise SharedStoreError(f"{url}: the bucket does not exist ({_reason(exc)}); "
                                   "create it, or fix the URL") from None  # fmt: skip
        raise
    except Exception as exc:  # botocore's and aiohttp's errors have no common base
        name = type(exc).__name__
        if "Credential" in name or "Signature" in str(exc) or "AccessDenied" in str(exc):
            raise SharedStoreError(f"{url}: the credentials were refused while {what} "
                                   f"({_reason(exc)})") from None  # fmt: skip
        raise SharedStoreError(f"{url}: cannot reach the store while {what} ({name}: "
                               f"{_reason(exc)})") from None  # fmt: skip


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@dataclass(frozen=True)
class StoreDescription:
    """What store.json says."""

    format: int
    key_id: str


def entry_name(writer: str, when: float | None = None) -> str:
    """A journal entry's path under ``journal/``: its hour folder, then a name that sorts by
    time (microseconds, UTC) and is unique by writer."""
    now = time.time() if when is None else when
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    return f"{stamp[:8]}{stamp[9:11]}/{stamp}-{writer}.json"


def hour_folder(when: float) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(when))


class Remote:
    """The files of one shared store, signed with its key."""

    def __init__(self, url: str, fs: Any, path: str, key: bytes) -> None:
        self.url = url
        self.fs = fs
        self.path = path
        self.key = key
        self.local = "file" in _protocols(fs)

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> Remote:
        """The store at ``url``, checked: reachable, made by ``store init --shared``, in a
        format this nbcellar reads, signed with the key we hold. Nothing is written.

        A command opens its store many times (a grid: several times a run): the file system
        (an S3 client costs a few hundred milliseconds to make) is made once per process, and
        a store found good is not checked again for :data:`RECHECK_SECONDS`."""
        found = find_key(url)
        known = _CHECKED.get((url, found[0] if found else b""))
        if known is not None and known[0] == os.getpid() and time.monotonic() < known[1]:
            return known[2]
        fs, path = _filesystem(url)
        with _reaching(url, "reading store.json"):
            try:
                raw = fs.cat_file(f"{path}/store.json")
            except FileNotFoundError:
                _check_bucket(fs, path, url)
                raise SharedStoreError(
                    f"{url} is not an nbcellar store yet (no store.json): make it with "
                    f"'nbcellar store init --shared {url}'"
                ) from None
        description = _parse_description(raw, url)
        if found is None:
            raise StoreKeyError(
                f"no key for the shared store {url}: set ${'NBCELLAR_STORE_KEY'} or put the key "
                f"file at {key_file(url)} (ask whoever ran 'nbcellar store init --shared')"
            )
        key, where = found
        if key_id(key) != description.key_id:
            raise StoreKeyError(
                f"the key from {where} is not the key of {url} (its fingerprint is "
                f"{key_id(key)}, the store's {description.key_id}); get the right key from "
                "whoever ran 'nbcellar store init --shared'"
            )
        remote = cls(url, fs, path, key)
        _CHECKED[url, key] = (os.getpid(), time.monotonic() + RECHECK_SECONDS, remote)
        return remote

    @staticmethod
    def initialise(url: str, key: bytes) -> bool:
        """Write store.json for a new store signed with ``key`` (put-if-absent); False if the
        store existed already with this key. Another key's store is one error."""
        fs, path = _filesystem(url)
        description = json.dumps(
            {"nbcellar": "shared store", "format": FORMAT, "key_id": key_id(key)}, indent=1
        ).encode("utf-8")
        with _reaching(url, "writing store.json"):
            _check_bucket(fs, path, url)
            try:
                _put_if_absent(fs, f"{path}/store.json", description, "file" in _protocols(fs))
            except FileExistsError:
                existing = _parse_description(fs.cat_file(f"{path}/store.json"), url)
                if existing.key_id != key_id(key):
                    raise StoreKeyError(
                        f"{url} exists already, signed with another key (fingerprint "
                        f"{existing.key_id}); get that key from whoever made the store and put "
                        f"it in ${'NBCELLAR_STORE_KEY'} or {key_file(url)}"
                    ) from None
                return False
        return True

    # -- objects ------------------------------------------------------------------------------

    def object_path(self, key: str) -> str:
        return f"{self.path}/objects/{key[:2]}/{key[2:]}"

    def put_object(self, key: str, data: bytes | memoryview) -> bool:
        """Upload a blob, signed; False if it was there already (same name, same bytes)."""
        signed = b"".join((OBJECT_MAGIC, mac(self.key, key.encode(), data), data))
        with _reaching(self.url, f"writing object {key}"):
            try:
                _put_if_absent(self.fs, self.object_path(key), signed, self.local)
            except FileExistsError:
                return False
        return True

    def has_object(self, key: str) -> bool:
        with _reaching(self.url, f"looking for object {key}"):
            return bool(self.fs.exists(self.object_path(key)))

    def get_object(self, key: str) -> bytes:
        """A blob's bytes, checked: its MAC, then its digest. Missing: FileNotFoundError."""
        from nbcellar.store.blobs import hash_bytes

        with _reaching(self.url, f"reading object {key}"):
            signed = self.fs.cat_file(self.object_path(key))
        data = _unsign(signed, OBJECT_MAGIC, self.key, key.encode(), f"object {key}", self.url)
        if hash_bytes(data) != key:
            raise TamperedError(f"object {key}", self.url, "its content does not match its digest")
        return bytes(data)

    def object_keys(self) -> set[str]:
        """Every object in the store (a full listing: for ``store verify``)."""
        found: set[str] = set()
        with _reaching(self.url, "listing objects"):
            try:
                for name in self.fs.find(f"{self.path}/objects"):
                    parts = str(name).rsplit("/", 2)
                    if len(parts) == 3 and len(parts[1]) == 2:
                        found.add(parts[1] + parts[2])
            except FileNotFoundError:
                pass
        return found

    def objects_written(self) -> dict[str, tuple[int, float]]:
        """Every object with its size and when it was written (seconds since the epoch; now,
        where the file system does not say)."""
        found: dict[str, tuple[int, float]] = {}
        with _reaching(self.url, "listing objects"):
            try:
                listed = self.fs.find(f"{self.path}/objects", detail=True)
            except FileNotFoundError:
                return found
        for name, info in listed.items():
            parts = str(name).rsplit("/", 2)
            if len(parts) == 3 and len(parts[1]) == 2 and not parts[2].startswith("."):
                found[parts[1] + parts[2]] = (int(info.get("size") or 0), _written(info))
        return found

    def delete_objects(self, keys: list[str]) -> None:
        """Delete objects (gone already: no matter), a thousand per request."""
        with _reaching(self.url, "deleting unused objects"):
            for start in range(0, len(keys), 1000):
                paths = [self.object_path(k) for k in keys[start : start + 1000]]
                with suppress(FileNotFoundError):
                    self.fs.rm(paths)

    def put_gc_mark(self, writer: str, body: bytes) -> str:
        """Say, before deleting anything, that a collection of unused objects runs now."""
        while True:
            name = entry_name(writer).partition("/")[2]
            with _reaching(self.url, "writing a collection mark"):
                try:
                    _put_if_absent(self.fs, f"{self.path}/gc/{name}", body, self.local)
                except FileExistsError:
                    continue
            return name

    def newest_gc_mark(self) -> str:
        """The name of the latest collection's mark ('' if none ran): names sort by time."""
        with _reaching(self.url, "listing collection marks"):
            try:
                listed = self.fs.ls(f"{self.path}/gc", detail=False)
            except FileNotFoundError:
                return ""
        names = [str(p).rpartition("/")[2] for p in listed]
        return max((n for n in names if n.endswith(".json")), default="")

    # -- journal ------------------------------------------------------------------------------

    def put_entry(self, writer: str, body: bytes) -> str:
        """Append an entry to the journal; its name."""
        while True:
            name = entry_name(writer)
            signed = b"".join((ENTRY_MAGIC, mac(self.key, name.encode(), body), body))
            with _reaching(self.url, "writing a journal entry"):
                try:
                    _put_if_absent(self.fs, f"{self.path}/journal/{name}", signed, self.local)
                except FileExistsError:  # (the same writer within a microsecond)
                    continue
            return name

    def list_entries(self, hours: list[str]) -> list[str]:
        """The names of the entries in these hour folders, sorted (oldest first)."""
        names: list[str] = []
        with _reaching(self.url, "listing the journal"):
            for hour in hours:
                try:
                    listed = self.fs.ls(f"{self.path}/journal/{hour}", detail=False)
                except FileNotFoundError:
                    continue
                names += [f"{hour}/{str(p).rpartition('/')[2]}" for p in listed]
        return sorted(n for n in names if n.endswith(".json"))

    def hours(self) -> list[str]:
        """Every hour folder of the journal (a listing that grows with the store's age: only
        when a client has been away for long)."""
        with _reaching(self.url, "listing the journal"):
            try:
                listed = self.fs.ls(f"{self.path}/journal", detail=False)
            except FileNotFoundError:
                return []
        return sorted(str(p).rstrip("/").rpartition("/")[2] for p in listed)

    def get_entries(self, names: list[str]) -> dict[str, bytes | TamperedError]:
        """The bodies of these entries, each checked against its MAC (fetched concurrently):
        for an entry that does not verify, the error saying so. One gone since it was listed
        is left out."""

        paths = {f"{self.path}/journal/{name}": name for name in names}
        with _reaching(self.url, "reading journal entries"):
            # (one call: an async file system such as s3fs fetches them all concurrently)
            found = self.fs.cat(list(paths), on_error="return") if paths else {}
        bodies: dict[str, bytes | TamperedError] = {}
        for path, signed in found.items():
            name = paths.get(str(path).partition("://")[2] or str(path))
            if name is None or isinstance(signed, FileNotFoundError):
                continue  # (gone since it was listed)
            if isinstance(signed, BaseException):
                with _reaching(self.url, f"reading journal entry {name}"):
                    raise signed
            try:
                bodies[name] = bytes(_unsign(signed, ENTRY_MAGIC, self.key, name.encode(),
                                             f"journal entry {name}", self.url))  # fmt: skip
            except TamperedError as exc:
                bodies[name] = exc
        return bodies


def _written(info: Mapping[str, Any]) -> float:
    """When a listed file was written: S3's LastModified, a file system's mtime."""
    stamp = info.get("LastModified", info.get("mtime", info.get("created")))
    if hasattr(stamp, "timestamp"):
        return float(stamp.timestamp())
    try:
        return float(stamp)
    except (TypeError, ValueError):
        return time.time()  # (not known: as if new, so kept)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _check_bucket(fs: Any, path: str, url: str) -> None:
    """One line if the bucket (or folder) the store would live in does not exist."""
    top = path.split("/", 1)[0] if "file" not in _protocols(fs) else os.path.dirname(path)
    if top and not fs.exists(top):
        what = "folder" if "file" in _protocols(fs) else "bucket"
        raise SharedStoreError(f"{url}: the {what} {top} does not exist; create it, or fix "
                               "the URL (nothing was written)")  # fmt: skip


def _put_if_absent(fs: Any, path: str, data: bytes, local: bool) -> None:
    """Write ``data`` at ``path`` unless something is there (FileExistsError): one
    conditional PUT on object stores; a private file hard-linked into place on file systems
    (atomic on NFS too: no reader sees a partial file)."""
    if not local:
        fs.pipe_file(path, data, mode="create")
        return
    import tempfile

    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644 & ~_umask())
        os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _parse_description(raw: bytes, url: str) -> StoreDescription:
    try:
        data = json.loads(raw)
        version, fingerprint = int(data["format"]), str(data["key_id"])
    except (ValueError, KeyError, TypeError):
        raise SharedStoreError(f"{url}/store.json is not an nbcellar store description") from None
    if version > FORMAT:
        raise SharedStoreError(
            f"{url} was written by a newer nbcellar (store format {version}, this one reads "
            f"{FORMAT}); upgrade nbcellar (nothing was written)"
        )
    return StoreDescription(version, fingerprint)


def _unsign(
    signed: bytes, magic: bytes, key: bytes, label: bytes, what: str, url: str
) -> memoryview:
    view = memoryview(signed)
    if not signed.startswith(magic) or len(signed) < len(magic) + MAC_SIZE:
        raise TamperedError(what, url, "not signed")
    found = bytes(view[len(magic) : len(magic) + MAC_SIZE])
    data = view[len(magic) + MAC_SIZE :]
    if not _verify_mac(key, label, data, found):
        raise TamperedError(
            what, url, "bad signature (changed after it was written, or signed with another key)"
        )
    return data


def in_parallel(work: Callable[[U], T], items: list[U], threads: int = 16) -> list[T]:
    """``work`` on each item, a few at a time (a remote call waits mostly on the network)."""
    if len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(work, items))
