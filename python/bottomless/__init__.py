"""bottomless: continuous backup of SQLite/libSQL databases to S3.

The public names are loaded on first use: ``import bottomless`` must stay
cheap, because the extension runs the CLI each time a shell opens a
database, and boto3 alone costs about half a second of CPU to import.
(No submodule may be named like a public name: importing it would replace
the name on the package.)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bottomless._paths import extension_path

if TYPE_CHECKING:
    from bottomless.connection import Connection, connect, connect_apsw
    from bottomless.replicator import Replicator, wait_durable

_LAZY = {
    "Connection": "bottomless.connection",
    "connect": "bottomless.connection",
    "connect_apsw": "bottomless.connection",
    "Replicator": "bottomless.replicator",
    "wait_durable": "bottomless.replicator",
}

__all__ = ["Connection", "Replicator", "connect", "connect_apsw", "extension_path", "wait_durable"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bottomless' has no attribute {name!r}")
    return getattr(import_module(module), name)
