"""Command line: thin click commands over the library; no logic of their own."""

from __future__ import annotations
