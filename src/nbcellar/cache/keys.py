"""Cell keys: the normalised code of a cell plus the versions of everything it reads.

Same key, same effect: a cell whose key has an entry is restored instead of run. A value's
version is the key of the cell run that produced it, or a content fingerprint when nbcellar did
not see it being made; names a cell reads that do not exist count as ``absent``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NewType

CellKey = NewType("CellKey", str)
ABSENT = "absent"

KEY_VERSION = 1


@dataclass(frozen=True)
class KeyInputs:
    """Everything a cell key is made of, kept so a miss can say which input changed."""

    code_hash: str
    silent: bool = False
    names: Mapping[str, str] = field(default_factory=dict)
    modules: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "code_hash": self.code_hash,
            "silent": self.silent,
            "names": dict(sorted(self.names.items())),
            "modules": dict(sorted(self.modules.items())),
            "files": dict(sorted(self.files.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> KeyInputs:
        def mapping(name: str) -> dict[str, str]:
            value = data.get(name) or {}
            assert isinstance(value, dict)
            return {str(k): str(v) for k, v in value.items()}

        return cls(
            code_hash=str(data["code_hash"]),
            silent=bool(data.get("silent")),
            names=mapping("names"),
            modules=mapping("modules"),
            files=mapping("files"),
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
        for label, now, then in (
            ("input", self.names, earlier.names),
            ("module", self.modules, earlier.modules),
            ("file", self.files, earlier.files),
        ):
            for name in sorted(set(now) | set(then)):
                if now.get(name) != then.get(name):
                    found.append(f"{label} {name} changed")
        return found
