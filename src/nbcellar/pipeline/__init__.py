"""Pipelines: notebooks and percent scripts chained by what they produce, rebuilt cell by cell.

:mod:`~nbcellar.pipeline.spec` reads and checks the tasks (``pipeline.yaml``, or ``upstream``
in each task's parameters cell), :mod:`~nbcellar.pipeline.build` runs them (``nbcellar build``),
:mod:`~nbcellar.pipeline.upstream` gives a task what an earlier one produced, and
:mod:`~nbcellar.pipeline.manifests` is what passes between them.
"""
