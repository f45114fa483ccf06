"""Orchestration: executing notebooks in real kernels, parameters, grids and run records."""

from __future__ import annotations
