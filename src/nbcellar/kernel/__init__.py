"""What lives inside a kernel: the IPython extension that caches cells."""

from __future__ import annotations
