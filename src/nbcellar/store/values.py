"""Stored values: a pickle stream plus the blobs of its out-of-band buffers, as one blob.

A value blob is ``NBCV2\\n``, the pickle stream, then a JSON line listing its buffers (key and
size, in order) and that line's length as 4 little-endian bytes. The list comes last so that a
value's key (the hash of its blob) is computed while it is pickled, without holding the stream.
Blobs of the first layout (``NBCV1\\n``, the list, then the stream) are still read. A blob names
everything it needs, so a store can be checked from its files alone.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbcellar.store.blobs import BlobStore, CorruptObject, ObjectKey, Spill, hash_bytes
from nbcellar.store.pickling import (
    Dumped,
    Stream,
    dump_values,
    hash_stream,
    load_values,
)

MAGIC_V1 = b"NBCV1\n"
MAGIC = b"NBCV2\n"
INLINE_LIMIT = 4096
"""Value blobs up to this size, with no buffers, are kept in the index rather than as files."""


@dataclass(frozen=True)
class PreparedValue:
    """A value ready to write: its key, its blob in parts (never joined when large) and the
    buffers it refers to. A value whose stream was spilled has no parts: its ``spilled`` file
    holds the blob but the ``tail``."""

    key: ObjectKey
    parts: tuple[bytes, ...]
    size: int  # bytes in the value blob itself
    buffers: tuple[tuple[ObjectKey, int], ...]
    views: tuple[memoryview, ...]
    spilled: Spill | None = None
    tail: bytes = b""

    @property
    def blob(self) -> bytes:
        return b"".join(self.parts)

    @property
    def nbytes(self) -> int:
        return self.size + sum(size for _, size in self.buffers)

    @property
    def inline(self) -> bool:
        return not self.buffers and self.size <= INLINE_LIMIT


KEEP_LIMIT = 8 << 20
"""With a place to spill to, streams longer than this are written to a blob's temporary file as
they are pickled, not kept in memory (see :meth:`BlobStore.spill`)."""


def dump(
    values: Mapping[str, Any],
    shared_roots: Iterable[int] = (),
    external: Mapping[int, str] | None = None,
    spill: Callable[[], Spill] | None = None,
) -> Dumped:
    """Pickle ``values`` for the store (see :func:`nbcellar.store.pickling.dump_values`).

    With ``spill`` a long stream is written out while it is pickled: holding tens of megabytes
    of fresh memory until a background write, or pickling again then, costs more.
    """
    limit = KEEP_LIMIT if spill is not None else None
    return dump_values(values, shared_roots, external, prefix=MAGIC, keep_limit=limit, spill=spill)


def _tail(buffers: tuple[tuple[ObjectKey, int], ...]) -> bytes:
    header = json.dumps({"buffers": [list(b) for b in buffers]}, separators=(",", ":"))
    line = header.encode("ascii") + b"\n"
    return line + struct.pack("<I", len(line))


def _finish(
    stream: Stream, views: Sequence[memoryview]
) -> tuple[ObjectKey, bytes, tuple[tuple[ObjectKey, int], ...]]:
    if stream.prefix != MAGIC:
        raise ValueError("the stream was not pickled for the store (use values.dump)")
    buffers = tuple((hash_bytes(view), view.nbytes) for view in views)
    tail = _tail(buffers)
    digest = stream.digest.copy()
    digest.update(tail)
    return ObjectKey(digest.hexdigest()), tail, buffers


def prepare(dumped: Dumped) -> PreparedValue:
    """Hash every buffer and finish the value blob's key (nothing is written yet)."""
    key, tail, buffers = _finish(dumped.stream, dumped.buffers)
    size = len(MAGIC) + dumped.stream.size + len(tail)
    if dumped.stream.sink is not None:
        return PreparedValue(
            key, (), size, buffers, tuple(dumped.buffers), spilled=dumped.stream.sink, tail=tail
        )
    parts = (MAGIC, *dumped.stream.chunks, tail)
    return PreparedValue(key, parts, size, buffers, tuple(dumped.buffers))


def fingerprint_key(values: Mapping[str, Any]) -> ObjectKey:
    """The key :func:`prepare` gives ``values`` pickled with no outside references, found
    without keeping the stream."""
    stream, views = hash_stream(values, prefix=MAGIC)
    return _finish(stream, views)[0]


def is_value_blob(blob: bytes) -> bool:
    return blob.startswith((MAGIC, MAGIC_V1))


def parse(blob: bytes, key: str) -> tuple[list[tuple[str, int]], bytes]:
    """The buffer list and pickle stream of a value blob."""
    try:
        if blob.startswith(MAGIC):
            (length,) = struct.unpack("<I", blob[-4:])
            start = len(blob) - 4 - length
            if start < len(MAGIC):
                raise ValueError("header longer than the blob")
            header = json.loads(blob[start : len(blob) - 4])
            stream = blob[len(MAGIC) : start]
        elif blob.startswith(MAGIC_V1):
            end = blob.index(b"\n", len(MAGIC_V1))
            header = json.loads(blob[len(MAGIC_V1) : end])
            stream = blob[end + 1 :]
        else:
            raise CorruptObject(key, "is not a stored value")
        return [(str(k), int(n)) for k, n in header["buffers"]], stream
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise CorruptObject(key, f"has a damaged value header ({exc})") from None


def read_value(
    blobs: BlobStore,
    key: str,
    signatures: dict[str, int],
    inline: bytes | None = None,
    external: Mapping[str, Any] | None = None,
    namespace: MutableMapping[str, Any] | None = None,
) -> dict[str, object]:
    """Load a stored value (a mapping of names) with its buffers memory-mapped; functions in
    it read ``namespace`` as their globals (see :func:`nbcellar.store.pickling.load_values`)."""
    if inline is not None and hash_bytes(inline) != key:
        raise CorruptObject(key, "content does not match its hash (the index was damaged)")
    blob = inline if inline is not None else blobs.read(key)
    buffer_list, stream = parse(blob, key)
    views = [blobs.load_buffer(k, n, signatures.get(k)) for k, n in buffer_list]
    return load_values(stream, views, external, namespace)
