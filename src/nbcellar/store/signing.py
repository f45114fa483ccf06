"""The key of a shared store and the MACs made with it.

Everything a shared store holds is signed with HMAC-SHA256 under a key kept outside the store
(``$NBCELLAR_STORE_KEY``, or a key file under the user's config folder), so that someone who
can write to the bucket but does not hold the key cannot get a pickle of theirs unpickled by a
teammate. The store itself only names the key by its fingerprint (``key_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from nbcellar.errors import NbcellarError

KEY_VARIABLE = "NBCELLAR_STORE_KEY"
MAC_SIZE = 32


class StoreKeyError(NbcellarError):
    """No key for a shared store, or not the key it was made with."""


def config_folder() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nbcellar"


def url_digest(url: str) -> str:
    """A short name for a store URL, for folders and files named after it."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def key_file(url: str) -> Path:
    """Where ``nbcellar store init --shared URL`` keeps the key of the store at ``url``."""
    return config_folder() / "keys" / f"{url_digest(url)}.key"


def key_id(key: bytes) -> str:
    """The key's fingerprint: what store.json records (never the key itself)."""
    return hashlib.sha256(b"nbcellar key id\n" + key).hexdigest()[:24]


def new_key() -> bytes:
    import secrets

    return secrets.token_hex(32).encode("ascii")


def find_key(url: str) -> tuple[bytes, str] | None:
    """The key of the store at ``url`` and where it came from; None if there is none."""
    given = os.environ.get(KEY_VARIABLE, "").strip()
    if given:
        return given.encode("utf-8"), f"${KEY_VARIABLE}"
    path = key_file(url)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreKeyError(f"cannot read the key file {path}: {exc.strerror}") from None
    if not text:
        raise StoreKeyError(f"the key file {path} is empty")
    return text.encode("utf-8"), str(path)


def write_key_file(url: str, key: bytes) -> Path:
    """Keep ``key`` in the store's key file, readable by its owner only; never overwritten."""
    path = key_file(url)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return path


def mac(key: bytes, label: bytes, data: bytes | memoryview) -> bytes:
    """The MAC of ``data`` bound to ``label`` (an object's digest, an entry's name): signed
    content moved under another name does not verify."""
    signer = hmac.new(key, label + b"\n", hashlib.sha256)
    signer.update(data)
    return signer.digest()


def verify_mac(key: bytes, label: bytes, data: bytes | memoryview, found: bytes) -> bool:
    return hmac.compare_digest(mac(key, label, data), found)
