"""Cell keys: the normalised code of a cell plus the versions of everything it reads.

Same key, same effect: a cell whose key has an entry is restored instead of run. What a key is
made of (:class:`KeyInputs`) is kept with the entry, so a miss can say which input changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

from nbcellar.cache.versions import Version

CellKey = NewType("CellKey", str)

KEY_VERSION = 2
HOLDS = "holds "  # in KeyInputs.aliases: a variable whose object the value holds


@dataclass(frozen=True)
class KeyInputs:
    """Everything a cell key is made of.

    ``names``: the versions of the variables the cell reads (and of the globals the functions
    it calls read); ``aliases``: for a value the cell may change in place, the other names
    bound to that same object (changing it changes them too), then ``holds NAME`` for the
    variables whose objects it holds; ``modules``: the versions of the
    modules it imports; ``files``: of the files its tags name; ``ambient``: of the kernel state
    outside its variables that earlier cells changed (see nbcellar.cache.ambient).
    """

    code_hash: str
    silent: bool = False
    names: Mapping[str, Version] = field(default_factory=dict)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    modules: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    ambient: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "code_hash": self.code_hash,
            "silent": self.silent,
            "names": {n: v.to_json() for n, v in sorted(self.names.items())},
            "aliases": {n: list(a) for n, a in sorted(self.aliases.items())},
            "modules": dict(sorted(self.modules.items())),
            "files": dict(sorted(self.files.items())),
            "ambient": dict(sorted(self.ambient.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyInputs:
        def strings(name: str) -> dict[str, str]:
            value = data.get(name) or {}
            return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

        names = data.get("names") or {}
        aliases = data.get("aliases") or {}
        return cls(
            code_hash=str(data["code_hash"]),
            silent=bool(data.get("silent")),
            names={str(k): Version.from_json(v) for k, v in names.items()},
            aliases={str(k): tuple(str(n) for n in v) for k, v in aliases.items()},
            modules=strings("modules"),
            files=strings("files"),
            ambient=strings("ambient"),
        )

    def key(self) -> CellKey:
        import xxhash

        text = json.dumps([KEY_VERSION, self.to_json()], sort_keys=True, separators=(",", ":"))
        return CellKey(xxhash.xxh3_128_hexdigest(text.encode("utf-8")))

    def differences(self, earlier: KeyInputs) -> list[str]:
        """What changed since ``earlier`` (the inputs of a previous run of this cell), in words."""
        if self.code_hash != earlier.code_hash:
            return ["its code changed"]
        found: list[str] = []
        if self.silent != earlier.silent:
            found.append("its trailing ';' changed")
        compared: tuple[tuple[str, Mapping[str, object], Mapping[str, object]], ...] = (
            ("input", self.names, earlier.names),
            ("module", self.modules, earlier.modules),
            ("file", self.files, earlier.files),
            ("kernel state:", self.ambient, earlier.ambient),
        )
        for label, now, then in compared:
            for name in sorted(set(now) | set(then)):
                if now.get(name) != then.get(name):
                    found.append(f"{label} {name} changed")
        for name in sorted(set(self.aliases) | set(earlier.aliases)):
            now_names, then_names = self.aliases.get(name, ()), earlier.aliases.get(name, ())
            if [n for n in now_names if not n.startswith(HOLDS)] != [
                n for n in then_names if not n.startswith(HOLDS)
            ]:
                found.append(f"the names bound to {name}'s object changed")
            elif now_names != then_names:
                found.append(f"the variables {name} holds changed")
        return found

    def without_aliases(self) -> KeyInputs:
        """The same inputs but for which names share objects (what only a kernel sees)."""
        return KeyInputs(
            self.code_hash, self.silent, self.names, {}, self.modules, self.files, self.ambient
        )
