"""Imported first by each worker of a cluster nbcellar starts itself: the workers of
``--executor dask``'s LocalCluster (a Dask preload) and the engines of ``--executor
ipyparallel``'s Cluster (their startup command). Those processes are nbcellar's own, so they
skip what the ``nbcellar`` command skips for itself: compiling grammars for a schema format no
notebook uses (see :func:`nbcellar.notebook.formats.skip_iri_grammars`), 0.8 s of the first run
on each worker. A cluster of the user's is left as it is."""

from __future__ import annotations

from nbcellar.notebook.formats import skip_iri_grammars

skip_iri_grammars()

STARTUP = f"import {__name__}"
"""The line that makes a process one of these workers."""
