"""bottomless: continuous backup of SQLite/libSQL databases to S3."""

from bottomless._paths import extension_path

__all__ = ["extension_path"]
