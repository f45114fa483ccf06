"""Stored values: a pickle stream plus the blobs of its out-of-band buffers, as one blob.

A value blob is ``NBCV1\\n``, a JSON line listing its buffers (key and size, in order), and the
pickle stream. It names everything it needs, so a store can be checked from its files alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbcellar.store.blobs import BlobStore, CorruptObject, ObjectKey, hash_bytes
from nbcellar.store.pickling import Dumped, load_values

MAGIC = b"NBCV1\n"
INLINE_LIMIT = 4096
"""Value blobs up to this size, with no buffers, are kept in the index rather than as files."""


@dataclass(frozen=True)
class PreparedValue:
    """A value ready to write: its blob bytes, key, and the buffers it refers to."""

    key: ObjectKey
    blob: bytes
    buffers: tuple[tuple[ObjectKey, int], ...]
    views: tuple[memoryview, ...]

    @property
    def nbytes(self) -> int:
        return len(self.blob) + sum(size for _, size in self.buffers)

    @property
    def inline(self) -> bool:
        return not self.buffers and len(self.blob) <= INLINE_LIMIT


def prepare(dumped: Dumped) -> PreparedValue:
    """Hash every buffer and build the value blob (nothing is written yet)."""
    buffers = tuple((hash_bytes(view), view.nbytes) for view in dumped.buffers)
    header = json.dumps({"buffers": [list(b) for b in buffers]}, separators=(",", ":"))
    blob = MAGIC + header.encode("ascii") + b"\n" + dumped.stream
    return PreparedValue(hash_bytes(blob), blob, buffers, tuple(dumped.buffers))


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
