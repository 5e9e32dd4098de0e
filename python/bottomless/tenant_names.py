"""The ``<db-name>`` in the bucket of a database found under a replicated
directory, and back.

A directory holds databases at relative paths such as ``acme/app.db``; a
``<db-name>`` may hold no ``/``, no ``..``, no control character and may
not start with ``~`` (layout.validate_db_name). The name is the relative
path, POSIX-separated, percent-encoded (RFC 3986, UTF-8) with these
characters left as they are: ASCII letters and digits, ``_``, ``-``, and
``.`` where it neither starts the name nor follows another ``.``. So
``acme/app.db`` is ``acme%2Fapp.db`` and ``a..b.db`` is ``a.%2Eb.db``.

Every ``%`` of the path is itself encoded, so decoding is unambiguous and
two different paths never get the same name; ``path_of(name_of(p)) == p``
for every relative path.
"""

from __future__ import annotations

from pathlib import PurePath, PurePosixPath
from urllib.parse import unquote

from bottomless.errors import LayoutError
from bottomless.layout import validate_db_name

_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def name_of(relative: PurePath) -> str:
    """The ``<db-name>`` of the database at ``relative`` (inside the
    replicated directory)."""
    parts = relative.parts
    if relative.is_absolute() or not parts or any(p in ("", ".", "..") for p in parts):
        raise LayoutError(f"{str(relative)!r} is not a path inside the replicated directory")
    text = "/".join(parts)
    out: list[str] = []
    for i, ch in enumerate(text):
        plain = ch in _PLAIN or (ch == "." and i > 0 and text[i - 1] != ".")
        out.append(ch if plain else "".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return validate_db_name("".join(out))


def path_of(name: str) -> PurePosixPath:
    """The relative path whose ``<db-name>`` is ``name``."""
    try:
        text = unquote(name, errors="strict")
    except UnicodeDecodeError:
        raise LayoutError(f"{name!r} is not the name of a database in a replicated directory") from None
    path = PurePosixPath(text)
    if name_of(path) != name:
        raise LayoutError(f"{name!r} is not the name of a database in a replicated directory")
    return path
