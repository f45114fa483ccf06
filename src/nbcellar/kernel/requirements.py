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

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any


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


def imported_distributions(
    before: Iterable[str], sources: Iterable[str], records: Any = None
) -> dict[str, str]:
    """``{distribution: version}`` of the modules imported since ``before`` (module names)
    and of those the cells' ``sources`` import. ``records``: the store, which keeps what
    distribution each module belongs to for this environment (see _owners)."""
    import importlib.metadata as metadata

    from nbcellar.analysis import analyze_cell

    earlier = set(before)
    named = {m.partition(".")[0] for s in sources for m in analyze_cell(s).imports}
    top = {n.partition(".")[0] for n in list(sys.modules) if n not in earlier} | named
    owners = _owners(records)
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


KIND = "installed"
"""Store records: per Python environment, the distributions each module belongs to."""


def _owners(records: Any) -> Mapping[str, list[str]]:
    """importlib.metadata.packages_distributions(), kept in the store (``records``) for this
    environment: it reads every installed distribution's list of files (0.15 s a run for 200
    distributions), and what it finds changes only when the distributions installed do, which
    the names of their metadata folders say (name and version)."""
    import importlib.metadata as metadata

    import xxhash

    if records is None:
        return metadata.packages_distributions()
    key = xxhash.xxh3_128_hexdigest(f"{sys.prefix}\0{sys.executable}".encode())
    now = xxhash.xxh3_128_hexdigest("\0".join(installed()).encode())
    try:
        found = records.get_record(KIND, key)
        kept = json.loads(found.payload) if found is not None else {}
    except Exception:  # (a store that cannot be read: found again, as without one)
        kept = {}
    if isinstance(kept, dict) and kept.get("installed") == now:
        owners = kept.get("owners")
        if isinstance(owners, dict):
            return owners
    owners = {k: list(v) for k, v in metadata.packages_distributions().items()}
    payload = json.dumps({"installed": now, "owners": owners}, separators=(",", ":"))
    with contextlib.suppress(Exception):  # (a store that cannot be written: found again)
        records.put_record(KIND, key, payload.encode())
    return owners


def installed() -> list[str]:
    """The metadata folders of the distributions on ``sys.path``, with where they are."""
    names: list[str] = []
    for folder in sys.path:
        try:
            with os.scandir(folder or ".") as entries:
                found = [e.name for e in entries if e.name.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
        names.extend(f"{folder}/{name}" for name in sorted(found))
    return names


def _local_url(distribution: str) -> str | None:
    """The ``file://`` URL of the folder a distribution was installed from (the project's own
    package, installed editable), or None for one from an index (PEP 610's direct_url.json)."""
    import importlib.metadata as metadata

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
