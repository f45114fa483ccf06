"""Stored values: a pickle stream plus the blobs of its out-of-band buffers, as one blob.

A value blob is ``NBCV1\\n``, a JSON line listing its buffers (key and size, in order), and the
pickle stream. It names everything it needs, so a store can be checked from its files alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbcellar.store.blobs import BlobStore, CorruptObject, ObjectKey, hash_bytes
from nbcellar.store.pickling import Dumped, load_values

MAGIC = b"NBCV1\n"
INLINE_LIMIT = 4096
"""Value blobs up to this size, with no buffers, are kept in the index rather than as files."""


@dataclass(frozen=True)
class PreparedValue:
    """A value ready to write: its key, its blob (in two parts: the ``NBCV1`` and buffer-list
    lines, then the pickle stream, which is not copied into one piece) and the buffers it
    refers to."""

    key: ObjectKey
    head: bytes
    stream: bytes | memoryview
    buffers: tuple[tuple[ObjectKey, int], ...]
    views: tuple[memoryview, ...]

    @property
    def parts(self) -> tuple[bytes | memoryview, ...]:
        return (self.head, self.stream)

    @property
    def size(self) -> int:
        """Bytes in the value blob itself."""
        return len(self.head) + memoryview(self.stream).nbytes

    @property
    def blob(self) -> bytes:
        return self.head + bytes(self.stream)

    @property
    def nbytes(self) -> int:
        return self.size + sum(size for _, size in self.buffers)

    @property
    def inline(self) -> bool:
        return not self.buffers and self.size <= INLINE_LIMIT


def _head(buffers: tuple[tuple[ObjectKey, int], ...]) -> bytes:
    header = json.dumps({"buffers": [list(b) for b in buffers]}, separators=(",", ":"))
    return MAGIC + header.encode("ascii") + b"\n"


def _key(head: bytes, stream: bytes | memoryview) -> ObjectKey:
    import xxhash

    digest = xxhash.xxh3_128()
    digest.update(head)
    digest.update(stream)
    return ObjectKey(digest.hexdigest())  # the same as hash_bytes(head + stream)


def prepare(dumped: Dumped) -> PreparedValue:
    """Hash every buffer and the value blob (nothing is written yet)."""
    buffers = tuple((hash_bytes(view), view.nbytes) for view in dumped.buffers)
    head = _head(buffers)
    return PreparedValue(
        _key(head, dumped.stream), head, dumped.stream, buffers, tuple(dumped.buffers)
    )


def value_key(stream: bytes | memoryview, views: Sequence[memoryview]) -> ObjectKey:
    """The key :func:`prepare` gives a value with this stream and these buffers."""
    return _key(_head(tuple((hash_bytes(v), v.nbytes) for v in views)), stream)


def parse(blob: bytes, key: str) -> tuple[list[tuple[str, int]], bytes]:
    """The buffer list and pickle stream of a value blob."""
    if not blob.startswith(MAGIC):
        raise CorruptObject(key, "is not a stored value")
    end = blob.index(b"\n", len(MAGIC))
    header = json.loads(blob[len(MAGIC) : end])
    return [(str(k), int(n)) for k, n in header["buffers"]], blob[end + 1 :]


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
