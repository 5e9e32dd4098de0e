"""Which encryption key each generation was started with, remembered in the
side folder: the fingerprint (``Cipher.key_id``), never the key. When the
configured key differs from the current generation's, the rest of the
history goes into a new generation (``start_decision.py``)."""

from __future__ import annotations

import json
import os

from bottomless.crypto import Cipher
from bottomless.side_files import SideFolder


def key_id(cipher: Cipher | None) -> str | None:
    """The fingerprint of ``cipher``'s key (None: not encrypted)."""
    return cipher.key_id if cipher is not None else None


def generation_key_id(side: SideFolder, generation: str) -> str | None:
    """Fingerprint of the key ``generation`` was started with (None: not
    encrypted, or not recorded here)."""
    try:
        raw = json.loads(side.encryption.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("generation") != generation:
        return None
    found = raw.get("key_id")
    return str(found) if found else None


def record_key_id(side: SideFolder, generation: str, key: str | None) -> None:
    path = side.encryption
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"generation": generation, "key_id": key}, f)
    side.adopt(tmp)
    os.replace(tmp, path)
