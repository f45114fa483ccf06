"""Cell cache: keys, versions, and the hit / miss / record decisions, independent of IPython."""

from __future__ import annotations
