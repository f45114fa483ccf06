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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbcellar.store.blobs import BlobStore, CorruptObject, ObjectKey, hash_bytes
from nbcellar.store.pickling import (
    Dumped,
    Stream,
    dump_into,
    dump_values,
    hash_stream,
    load_values,
)

MAGIC_V1 = b"NBCV1\n"
MAGIC = b"NBCV2\n"
INLINE_LIMIT = 4096
"""Value blobs up to this size, with no buffers, are kept in the index rather than as files."""


@dataclass(frozen=True)
class Again:
    """What to pickle again to write a value whose stream was too long to keep."""

    values: Mapping[str, Any]
    shared_roots: frozenset[int]
    external: Mapping[int, str]


@dataclass(frozen=True)
class PreparedValue:
    """A value ready to write: its key, its blob in parts (never joined when large) and the
    buffers it refers to. A value whose stream was not kept has no parts but ``again``."""

    key: ObjectKey
    parts: tuple[bytes, ...]
    size: int  # bytes in the value blob itself
    buffers: tuple[tuple[ObjectKey, int], ...]
    views: tuple[memoryview, ...]
    again: Again | None = None

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
"""Streams longer than this are hashed as they are pickled but not kept, when the caller can
write them later by pickling again (see :func:`write_again`)."""


def dump(
    values: Mapping[str, Any],
    shared_roots: Iterable[int] = (),
    external: Mapping[int, str] | None = None,
    keep_all: bool = True,
) -> Dumped:
    """Pickle ``values`` for the store (see :func:`nbcellar.store.pickling.dump_values`).

    With ``keep_all`` False a long stream is not kept (nor its memory touched): holding tens
    of megabytes of fresh memory costs more than pickling again later, off the critical path.
    """
    limit = None if keep_all else KEEP_LIMIT
    return dump_values(values, shared_roots, external, prefix=MAGIC, keep_limit=limit)


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


def prepare(dumped: Dumped, again: Again | None = None) -> PreparedValue:
    """Hash every buffer and finish the value blob's key (nothing is written yet). A stream
    that was not kept needs ``again``: what was pickled, to pickle it again when written."""
    key, tail, buffers = _finish(dumped.stream, dumped.buffers)
    size = len(MAGIC) + dumped.stream.size + len(tail)
    if dumped.stream.overflowed:
        if again is None:
            raise ValueError("a stream that was not kept needs what to pickle again")
        return PreparedValue(key, (), size, buffers, tuple(dumped.buffers), again)
    parts = (MAGIC, *dumped.stream.chunks, tail)
    return PreparedValue(key, parts, size, buffers, tuple(dumped.buffers))


def write_again(blobs: BlobStore, value: PreparedValue) -> bool:
    """Write a value whose stream was not kept by pickling it again straight into its blob
    file; False (nothing stored) when what it pickles now is not what was hashed then."""
    again = value.again
    assert again is not None

    def produce(sink: Any) -> None:
        sink.write(MAGIC)
        views = dump_into(sink, again.values, again.shared_roots, again.external)
        sink.write(_tail(tuple((hash_bytes(v), v.nbytes) for v in views)))

    return blobs.put_produced(value.key, produce)


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
) -> dict[str, object]:
    """Load a stored value (a mapping of names) with its buffers memory-mapped."""
    if inline is not None and hash_bytes(inline) != key:
        raise CorruptObject(key, "content does not match its hash (the index was damaged)")
    blob = inline if inline is not None else blobs.read(key)
    buffer_list, stream = parse(blob, key)
    views = [blobs.load_buffer(k, n, signatures.get(k)) for k, n in buffer_list]
    return load_values(stream, views, external)
