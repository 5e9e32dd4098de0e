"""Where the native extension (libbottomless) and its C ABI header live.

A library and the ``bottomless.h`` it was built from always come from the
same place: beside the library in an installed package (``_lib/``), or the
build prefix's ``include/`` beside its ``lib/`` (``zig-out/``), which
``zig build`` installs together. A header of another build would bind the
library's calls with the wrong arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PKG_DIR = Path(__file__).resolve().parent
# python/bottomless/_paths.py -> the repository root, when running from a checkout.
_REPO_DIR = _PKG_DIR.parent.parent


def library_name() -> str:
    """File name of the native library on this platform."""
    return "libbottomless.dylib" if sys.platform == "darwin" else "libbottomless.so"


HEADER_NAME = "bottomless.h"


def header_of(library: str) -> str:
    """The ``bottomless.h`` of the build that made ``library``."""
    lib = Path(library).resolve()
    candidates = [lib.parent / HEADER_NAME, lib.parent.parent / "include" / HEADER_NAME]
    for path in candidates:
        if path.is_file():
            return str(path)
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"the C ABI header {HEADER_NAME} of {lib} is missing (looked in: {looked}); "
        "rebuild with `python -m ziglang build` or reinstall the package, which put the two side by side"
    )


def _candidates() -> list[Path]:
    name = library_name()
    found = [_PKG_DIR / "_lib" / name]
    if (_REPO_DIR / "build.zig").is_file():
        found.append(_REPO_DIR / "zig-out" / "lib" / name)
    return found


def extension_path() -> str:
    """Absolute path of the bottomless native library.

    Looks in the installed package (``bottomless/_lib/``) and, when running
    from a source checkout, in ``zig-out/lib/`` where ``zig build`` leaves
    it; the newer of the two wins. This is the path to give to ``.load`` in the sqlite3 or libsql
    shell.
    """
    candidates = _candidates()
    present = [p for p in candidates if p.is_file()]
    if present:
        # In a checkout both may exist; a fresh `zig build` must win over the
        # copy an earlier editable install left in the package.
        return str(max(present, key=lambda p: p.stat().st_mtime))
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"bottomless native library {library_name()} not found (looked in: {looked}). "
        "Install the package with `python -m pip install .` (it builds the library), "
        "or build it in the source tree with `python -m ziglang build`."
    )
