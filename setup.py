"""Build step for the native extension.

All metadata lives in pyproject.toml. This file only adds what setuptools
cannot express there: before the Python packages are copied, compile the Zig
extension with the toolchain from PyPI (``python -m ziglang build``) and put
the shared library into the ``bottomless/_lib/`` package directory, both in
the build tree (what a wheel or ``pip install .`` ships) and in the source
tree (what an editable install, ``pip install -e .``, imports).

Environment knobs:
  BOTTOMLESS_ZIG_OPTIMIZE   Zig optimize mode (default ReleaseFast)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 ships its own bdist_wheel
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - older setuptools
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent
PKG_LIB_DIR = Path("bottomless") / "_lib"


def _lib_name() -> str:
    return "libbottomless.dylib" if sys.platform == "darwin" else "libbottomless.so"


def build_native() -> Path:
    """Run the Zig build into a temporary prefix; return the library path in
    the source tree's package directory (python/bottomless/_lib/)."""
    name = _lib_name()
    with tempfile.TemporaryDirectory(prefix="bottomless-zig-") as prefix:
        cmd = [
            sys.executable,
            "-m",
            "ziglang",
            "build",
            "-Doptimize=" + os.environ.get("BOTTOMLESS_ZIG_OPTIMIZE", "ReleaseFast"),
            "--prefix",
            prefix,
        ]
        print("bottomless: building the native extension:", " ".join(cmd), flush=True)
        try:
            subprocess.run(cmd, cwd=ROOT, check=True)
        except FileNotFoundError as exc:  # pragma: no cover
            raise SystemExit(f"bottomless: cannot run the Zig build: {exc}") from exc
        except subprocess.CalledProcessError as exc:
            raise SystemExit(
                f"bottomless: the Zig build failed (exit {exc.returncode}); "
                "see its output above"
            ) from exc
        built = Path(prefix) / "lib" / name
        if not built.is_file():
            raise SystemExit(f"bottomless: the Zig build did not produce {built}")
        dest_dir = ROOT / "python" / PKG_LIB_DIR
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / name
        # Replace atomically: a running process may have the old one mapped.
        tmp = dest_dir / (name + ".tmp")
        shutil.copyfile(built, tmp)
        os.replace(tmp, dest)
        # The cffi binding reads its declarations from the header beside the
        # library: the one this very build installed.
        header = Path(prefix) / "include" / "bottomless.h"
        if not header.is_file():
            raise SystemExit(f"bottomless: the Zig build did not install {header}")
        tmp = dest_dir / "bottomless.h.tmp"
        shutil.copyfile(header, tmp)
        os.replace(tmp, dest_dir / "bottomless.h")
    return dest


class BuildPyWithNative(build_py):
    """build_py that first compiles the native extension."""

    def run(self) -> None:
        lib = build_native()
        super().run()
        if not getattr(self, "editable_mode", False):
            out_dir = Path(self.build_lib) / PKG_LIB_DIR
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lib, out_dir / lib.name)
            shutil.copyfile(lib.parent / "bottomless.h", out_dir / "bottomless.h")


class PlatformWheel(bdist_wheel):
    """The wheel carries a native library but no CPython extension module:
    it works with any Python 3, on one platform only."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class NativeDistribution(Distribution):
    """Say the distribution has native code, so it installs into platlib and
    the wheel is not marked pure."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    distclass=NativeDistribution,
    cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel},
)
