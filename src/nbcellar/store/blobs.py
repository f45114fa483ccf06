"""Content-addressed blobs on disk: ``objects/ab/cdef…`` named by the xxh3-128 of their bytes.

A blob is written to a private temporary file and renamed into place, so a reader never sees a
partial blob and a writer killed at any point leaves at worst a stray temporary file. Writing a
blob that already exists costs a ``stat``. Large blobs are read back as copy-on-write memory maps:
the caller gets writable memory that costs nothing until touched and never changes the file.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NewType

ObjectKey = NewType("ObjectKey", str)

MAP_THRESHOLD = 1 << 20
"""Blobs at least this large are memory-mapped on read; smaller ones are read into memory."""


class CorruptObject(Exception):
    """A blob's bytes no longer hash to its key, or the blob is missing."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"object {key}: {problem}")


def hash_bytes(data: bytes | bytearray | memoryview) -> ObjectKey:
    import xxhash

    return ObjectKey(xxhash.xxh3_128_hexdigest(data))


_BOUNCE_SIZE = 4 << 20
_BLOCK = 4096
_spare: list[mmap.mmap] = []  # page-aligned bounce buffers not in use, shared by every thread
_spare_lock = threading.Lock()


def _take_buffer() -> mmap.mmap:
    with _spare_lock:
        if _spare:
            return _spare.pop()
    return mmap.mmap(-1, _BOUNCE_SIZE)


def _give_back(buffer: mmap.mmap) -> None:
    with _spare_lock:
        if len(_spare) < 4:
            _spare.append(buffer)


def _direct(fd: int, on: bool) -> bool:
    """Turn direct I/O (past the page cache) on or off for ``fd``; False if it cannot be."""
    import fcntl

    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | flag if on else flags & ~flag)
    except OSError:
        return False
    return True


class _BlockWriter:
    """Writes a blob's file through a pooled page-aligned buffer and hashes exactly the bytes
    written (what another thread changes afterwards cannot slip in unhashed).

    A blob of at least one buffer's length is written in whole blocks with direct I/O where the
    file system allows it: a cache write then costs a copy, not the allocation of a fresh
    page-cache page for every 4 KiB (more CPU than the copy, taken from the cells running
    meanwhile) nor the eviction of pages the user's own work is reading. The blob is read back
    later through a memory map. Smaller blobs go through the page cache.
    """

    def __init__(self, handle: BinaryIO, hashing: bool = True) -> None:
        import xxhash

        self.handle = handle
        self.digest = xxhash.xxh3_128()
        self._hashing = hashing
        self._buffer = _take_buffer()
        self._whole = memoryview(self._buffer)
        self._used = 0
        self._direct: bool | None = None  # decided when the first buffer is full

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        size, taken = view.nbytes, 0
        while taken < size:
            part = min(size - taken, _BOUNCE_SIZE - self._used)
            _copy(self._whole[self._used : self._used + part], view[taken : taken + part])
            self._used += part
            taken += part
            if self._used == _BOUNCE_SIZE:
                if self._direct is None:
                    self._direct = _direct(self.handle.fileno(), True)
                self._flush()
        return size

    def _flush(self) -> None:
        data = self._whole[: self._used]
        if self._hashing:
            self.digest.update(data)
        if self._direct:
            aligned = data.nbytes - data.nbytes % _BLOCK
            before = self.handle.tell()
            try:
                _write_all(self.handle, data[:aligned])
            except OSError as exc:  # a file system that takes the flag but not the writes
                if exc.errno != errno.EINVAL:
                    raise
                self.handle.seek(before)
                aligned = 0
            data = data[aligned:]
            if data.nbytes:  # a partial block, or direct writes refused: the rest buffered
                self._direct = False
                _direct(self.handle.fileno(), False)
        _write_all(self.handle, data)
        self._used = 0

    def close(self) -> str:
        """Write what is left; the hash of everything written."""
        self._flush()
        self.discard()
        return str(self.digest.hexdigest())

    def discard(self) -> None:
        """Give the buffer back (the file is not wanted)."""
        _give_back(self._buffer)


def file_signature(stat: os.stat_result) -> int:
    """What changes whenever a file's bytes may have: its inode (another file moved in its
    place), its change time (any write; no tool can set it back) and its modification time."""
    mixed = (stat.st_ino * 0x9E3779B97F4A7C15) ^ stat.st_ctime_ns ^ (stat.st_mtime_ns << 1)
    return mixed & ((1 << 63) - 1)  # (an SQLite integer)


def _copy(target: memoryview, source: memoryview) -> None:
    numpy = sys.modules.get("numpy")  # its copy lets other threads run; a memoryview's does not
    if numpy is not None and source.nbytes >= 1 << 16:
        numpy.copyto(numpy.frombuffer(target, numpy.uint8), numpy.frombuffer(source, numpy.uint8))
    else:
        target[:] = source


def _write_all(handle: BinaryIO, data: memoryview) -> None:
    written = 0
    while written < data.nbytes:
        written += handle.write(data[written:])


class Spill:
    """A blob's temporary file, written while its value is still being pickled (the key is not
    known until the end): :meth:`commit` moves it into place, and a spill dropped without a
    commit removes its file."""

    def __init__(self, folder: Path, mode: int = 0o600) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix="spill.")
        if mode != 0o600:
            os.fchmod(fd, mode)
        self.path = Path(name)
        handle = os.fdopen(fd, "wb", buffering=0)
        self._writer = _BlockWriter(handle, hashing=False)
        self._drop = weakref.finalize(self, _drop_spill, self._writer, self.path)

    def write(self, data: Any) -> int:
        return self._writer.write(data)

    def commit(self, target: Path, tail: bytes) -> None:
        """Write ``tail`` and rename the file to ``target`` (dropped if that exists already)."""
        if target.exists():
            self.discard()
            return
        self._writer.write(tail)
        self._writer.close()
        self._writer.handle.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        self._drop.detach()

    def discard(self) -> None:
        self._drop()


def _drop_spill(writer: _BlockWriter, path: Path) -> None:
    writer.discard()
    writer.handle.close()
    path.unlink(missing_ok=True)


class BlobStore:
    """The ``objects/`` folder of a store."""

    def __init__(self, root: Path, fsync: bool = False, mode: int = 0o600) -> None:
        self.root = root
        self.fsync = fsync
        self.tmp = root / "tmp"
        self.mode = mode  # of each object file (temporary files are made 0600)
        # Brings a blob that is not here from elsewhere (a shared store), checked; or raises
        # CorruptObject. None: a blob not here is missing.
        self.fetch: Callable[[str], None] | None = None

    def _fetched(self, key: str) -> bool:
        """Whether a blob not found here was brought in by :attr:`fetch`."""
        if self.fetch is None:
            return False
        self.fetch(key)
        return self.path(key).exists()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:]

    def has(self, key: str) -> bool:
        return self.path(key).exists() and key not in self.damaged()

    # -- objects found damaged (by ``store verify``, or a load): never handed to a cell, and
    # written anew by the next write of the same object ----------------------------------------

    @property
    def _damaged_list(self) -> Path:
        return self.root / "damaged"

    def damaged(self) -> frozenset[str]:
        try:
            stamp = self._damaged_list.stat().st_mtime_ns
        except FileNotFoundError:
            return frozenset()
        known = self.__dict__.get("_damaged_cache")
        if known is None or known[0] != stamp:
            keys = frozenset(self._damaged_list.read_text().split())
            self.__dict__["_damaged_cache"] = known = (stamp, keys)
        return known[1]

    def mark_damaged(self, keys: Iterable[str]) -> None:
        found = set(self.damaged()) | set(keys)
        if found:
            self.set_damaged(found)

    def _healed(self, key: str) -> None:
        if key in self.damaged():
            self.set_damaged(set(self.damaged()) - {key})

    def set_damaged(self, keys: set[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self._damaged_list.with_name(f"damaged.{os.getpid()}.tmp")
        temporary.write_text("".join(f"{k}\n" for k in sorted(keys)))
        os.replace(temporary, self._damaged_list)
        self.__dict__.pop("_damaged_cache", None)

    def _refuse_damaged(self, key: str) -> None:
        if key in self.damaged():
            raise CorruptObject(key, "damaged (found by 'nbcellar store verify'); the cell runs "
                                     "again and writes it anew")  # fmt: skip

    def spill(self) -> Spill:
        """A temporary file for a blob whose key is not known yet (see :class:`Spill`)."""
        return Spill(self.tmp, self.mode)

    def put(self, data: bytes | bytearray | memoryview, key: ObjectKey | None = None) -> ObjectKey:
        """Store ``data`` (any C-contiguous buffer) and return its key; no copy is made."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        return self.put_parts((view,), key or hash_bytes(view))

    def put_parts(
        self, parts: Sequence[bytes | bytearray | memoryview], key: ObjectKey
    ) -> ObjectKey:
        """Store the concatenation of ``parts`` under ``key`` (its hash), without joining them."""
        self._write_parts(parts, key)
        return key

    def put_checked(self, data: bytes | bytearray | memoryview, key: ObjectKey) -> bool:
        """Store ``data`` only if it still hashes to ``key``: for memory another thread may be
        changing. The bytes written are the bytes hashed (each piece is copied to a private
        buffer first), so the check is exact; on a mismatch nothing is stored (False)."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)

        def fill(handle: BinaryIO) -> bool:
            writer = _BlockWriter(handle)
            writer.write(view)
            return writer.close() == key

        return self._write(key, fill)

    def put_produced(self, key: ObjectKey, produce: Callable[[Any], None]) -> bool:
        """Store what ``produce`` writes to the writer it is given, if that hashes to ``key``;
        False (nothing stored) otherwise, or if ``produce`` raises an ``Exception``."""

        def fill(handle: BinaryIO) -> bool:
            writer = _BlockWriter(handle)
            try:
                produce(writer)
            except Exception:  # the values changed under it: not what was hashed
                writer.discard()
                return False
            return writer.close() == key

        return self._write(key, fill)

    def _write_parts(self, parts: Sequence[bytes | bytearray | memoryview], key: ObjectKey) -> bool:
        views = [
            memoryview(p).cast("B") if not isinstance(p, bytes) else memoryview(p) for p in parts
        ]

        def fill(handle: BinaryIO) -> bool:
            for view in views:
                written = 0
                while written < view.nbytes:
                    written += handle.write(view[written : written + (256 << 20)])
            return True

        return self._write(key, fill)

    def _write(self, key: ObjectKey, fill: Callable[[BinaryIO], bool]) -> bool:
        """Write the blob ``key`` through a temporary file that ``fill`` writes and approves
        (True); renamed into place only then, so no reader ever sees a partial or wrong blob."""
        target = self.path(key)
        if target.exists() and key not in self.damaged():
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=key[:8] + ".")
        try:
            if self.mode != 0o600:
                os.fchmod(fd, self.mode)
            with os.fdopen(fd, "wb", buffering=0) as handle:
                same = fill(handle)
                if same and self.fsync:
                    os.fsync(handle.fileno())
            if not same:
                Path(tmp_name).unlink()
                return False
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        self._healed(key)
        return True

    def read(self, key: str, verify: bool = True) -> bytes:
        """The whole blob in memory, checked against its key unless ``verify`` is False."""
        self._refuse_damaged(key)
        if not self.path(key).exists():
            self._fetched(key)
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            raise CorruptObject(key, "missing from the store") from None
        if verify and hash_bytes(data) != key:
            raise CorruptObject(key, "content does not match its hash (the file was damaged)")
        return data

    def load_buffer(self, key: str, size: int, signature: int | None = None) -> memoryview:
        """A writable view of the blob: a private copy-on-write map when large, else a copy.

        Small blobs are always checked against their key. A large blob is hashed only when its
        file's signature (inode, change and modification times) differs from ``signature``
        (recorded when it was written), so a restore does not read gigabytes; a rewrite of the
        file, or another file moved in its place, is caught even when size and modification
        time were kept. A blob ``store verify`` found damaged is refused.
        """
        self._refuse_damaged(key)
        path = self.path(key)
        if not path.exists():
            self._fetched(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below; the map outlives it
        except FileNotFoundError:
            raise CorruptObject(key, "missing from the store") from None
        with handle:
            stat = os.fstat(handle.fileno())
            if stat.st_size != size:
                raise CorruptObject(key, f"has {stat.st_size} bytes, expected {size} (truncated?)")
            if size < MAP_THRESHOLD:
                view = memoryview(bytearray(handle.read()))
                verify = True
            else:
                view = memoryview(mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY))
                verify = signature != file_signature(stat)
        if verify and hash_bytes(view) != key:
            raise CorruptObject(key, "content does not match its hash (the file was damaged)")
        return view

    def intact(self, key: str) -> bool:
        """Whether the blob's file hashes to its key (read through a map: no copy)."""
        path = self.path(key)
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return hash_bytes(b"") == key
            with mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ) as mapped:
                return hash_bytes(memoryview(mapped)) == key

    def head(self, key: str, size: int) -> bytes:
        """The first ``size`` bytes of the blob's file."""
        with open(self.path(key), "rb") as handle:
            return handle.read(size)

    def signature(self, key: str) -> int:
        """The blob file's signature (see :func:`file_signature`)."""
        return file_signature(self.path(key).stat())

    def delete(self, key: str) -> int:
        """Remove a blob; return the bytes freed (0 if it was already gone)."""
        path = self.path(key)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def iter_keys(self) -> Iterator[ObjectKey]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                if not entry.name.startswith("."):
                    yield ObjectKey(folder.name + entry.name)

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def stale_temporaries(self, older_than: float) -> list[Path]:
        """Temporary files left by writers that died, older than ``older_than`` (epoch seconds)."""
        if not self.tmp.is_dir():
            return []
        stale = []
        for path in self.tmp.iterdir():
            try:
                if path.stat().st_mtime < older_than:
                    stale.append(path)
            except FileNotFoundError:  # renamed into place meanwhile
                continue
        return stale
