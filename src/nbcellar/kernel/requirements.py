"""What a run imported, as pinned requirements (``nbcellar show RUN --requirements``).

pipreqs guesses a project's requirements from its ``import`` lines; a run knows better: the
modules in its kernel's ``sys.modules`` that came after the extension loaded (what the cells
imported, and what those imported in turn, restored cells included: unpickling a module imports
it), and those the cells' code names, mapped to their installed distributions and versions.
nbcellar's own machinery (nbcellar and what it requires) counts only where a cell imports it.
A distribution installed from a folder (the project's own package, installed editable) is
recorded with where it came from, as the direct reference ``name @ file:///...`` (PEP 440/508).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _own() -> set[str]:
    """nbcellar and the distributions it requires (its machinery, not the notebook's)."""
    import importlib.metadata as metadata

    names = {"nbcellar"}
    try:
        for line in metadata.requires("nbcellar") or []:
            if "extra ==" not in line:
                names.add(_canonical(re.split(r"[\s;<>=!~\[]", line, maxsplit=1)[0]))
    except metadata.PackageNotFoundError:
        pass
    # (pandas is one too, but only for the DataFrames it hands the notebook: a run that has
    # it imported imported it for the notebook's own use.)
    return names - USER_LIBRARIES


USER_LIBRARIES = frozenset({"pandas"})


def imported_distributions(before: Iterable[str], sources: Iterable[str]) -> dict[str, str]:
    """``{distribution: version}`` of the modules imported since ``before`` (module names)
    and of those the cells' ``sources`` import."""
    import importlib.metadata as metadata

    from nbcellar.analysis import analyze_cell

    earlier = set(before)
    named = {m.partition(".")[0] for s in sources for m in analyze_cell(s).imports}
    top = {n.partition(".")[0] for n in list(sys.modules) if n not in earlier} | named
    owners = metadata.packages_distributions()
    own = _own()
    found: dict[str, str] = {}
    for module in sorted(top):
        if module.startswith("_") or module in sys.stdlib_module_names:
            continue
        # (A package installed editable may be missing from that mapping: the distribution
        # of its own name, if there is one.)
        for distribution in owners.get(module) or _named(module):
            if _canonical(distribution) in own and module not in named:
                continue
            try:
                found[distribution] = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                continue
            local = _local_url(distribution)
            if local is not None:  # (no index has it: where it came from)
                found[distribution] = f"{found[distribution]} @ {local}"
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _local_url(distribution: str) -> str | None:
    """The ``file://`` URL of the folder a distribution was installed from (the project's own
    package, installed editable), or None for one from an index (PEP 610's direct_url.json)."""
    import importlib.metadata as metadata
    import json

    try:
        text = metadata.distribution(distribution).read_text("direct_url.json")
        found = json.loads(text) if text else {}
    except (metadata.PackageNotFoundError, ValueError):
        return None
    url = found.get("url") if isinstance(found, dict) else None
    if isinstance(url, str) and url.startswith("file://") and "dir_info" in found:
        return url
    return None


def _named(module: str) -> list[str]:
    """The installed distribution named as the module, if any."""
    import importlib.metadata as metadata

    try:
        return [metadata.distribution(module).metadata["Name"] or module]
    except metadata.PackageNotFoundError:
        return []
