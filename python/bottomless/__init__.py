"""bottomless: continuous backup of SQLite/libSQL databases to S3."""

from bottomless._paths import extension_path
from bottomless.connect import Connection, connect, connect_apsw
from bottomless.replicator import Replicator, wait_durable

__all__ = ["Connection", "Replicator", "connect", "connect_apsw", "extension_path", "wait_durable"]
