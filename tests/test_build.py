"""Packaging and build outcomes: the library is there, it is the right kind of
binary, cross-compilation works, the CLI is installed, and the extension
loads into a stock sqlite3 shell."""

from __future__ import annotations

import os
import platform
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import bottomless

# ELF e_machine values.
EM_X86_64 = 62
EM_AARCH64 = 183
ET_DYN = 3
# Mach-O.
MH_MAGIC_64 = 0xFEEDFACF
MH_DYLIB = 6
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM64 = 0x0100000C

HOST_ELF_MACHINE = {
    "x86_64": EM_X86_64,
    "amd64": EM_X86_64,
    "aarch64": EM_AARCH64,
    "arm64": EM_AARCH64,
}
HOST_MACHO_CPU = {"x86_64": CPU_TYPE_X86_64, "arm64": CPU_TYPE_ARM64}


def read_elf_header(path: Path) -> dict[str, int]:
    data = path.read_bytes()[:64]
    assert data[:4] == b"\x7fELF", f"{path} is not an ELF file (starts {data[:4]!r})"
    ei_class, ei_data = data[4], data[5]
    assert ei_class == 2, f"{path} is not a 64-bit ELF (EI_CLASS={ei_class})"
    endian = "<" if ei_data == 1 else ">"
    e_type, e_machine = struct.unpack_from(endian + "HH", data, 16)
    return {"type": e_type, "machine": e_machine}


def read_macho_header(path: Path) -> dict[str, int]:
    data = path.read_bytes()[:32]
    magic, cputype, _subtype, filetype = struct.unpack_from("<IiiI", data, 0)
    return {"magic": magic, "cputype": cputype & 0xFFFFFFFF, "filetype": filetype}


def zig_build(repo_root: Path, prefix: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "ziglang", "build", "--prefix", str(prefix), *args]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"


# ---- the library the package uses -----------------------------------------


def test_extension_path_is_a_host_shared_library() -> None:
    path = Path(bottomless.extension_path())
    assert path.is_absolute()
    assert path.is_file()
    machine = platform.machine().lower()
    if sys.platform == "darwin":
        hdr = read_macho_header(path)
        assert hdr["magic"] == MH_MAGIC_64
        assert hdr["filetype"] == MH_DYLIB
        assert hdr["cputype"] == HOST_MACHO_CPU[machine]
    else:
        hdr = read_elf_header(path)
        assert hdr["type"] == ET_DYN, "not a shared object"
        assert hdr["machine"] == HOST_ELF_MACHINE[machine]


def test_extension_path_error_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from bottomless import _paths

    monkeypatch.setattr(_paths, "_candidates", lambda: [Path("/nonexistent/libbottomless.so")])
    with pytest.raises(FileNotFoundError, match="pip install"):
        _paths.extension_path()


# ---- cross-compilation (slow the first time: each target is a fresh build) --


@pytest.fixture(scope="module")
def aarch64_linux_lib(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("zig-aarch64-linux")
    zig_build(repo_root, prefix, "-Dtarget=aarch64-linux-gnu")
    return prefix / "lib" / "libbottomless.so"


@pytest.fixture(scope="module")
def x86_64_macos_lib(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("zig-x86_64-macos")
    zig_build(repo_root, prefix, "-Dtarget=x86_64-macos")
    return prefix / "lib" / "libbottomless.dylib"


@pytest.mark.slow
def test_cross_build_aarch64_linux(aarch64_linux_lib: Path) -> None:
    hdr = read_elf_header(aarch64_linux_lib)
    assert hdr["type"] == ET_DYN
    assert hdr["machine"] == EM_AARCH64


@pytest.mark.slow
def test_cross_build_x86_64_macos(x86_64_macos_lib: Path) -> None:
    hdr = read_macho_header(x86_64_macos_lib)
    assert hdr["magic"] == MH_MAGIC_64
    assert hdr["cputype"] == CPU_TYPE_X86_64
    assert hdr["filetype"] == MH_DYLIB


# ---- installed entry points ------------------------------------------------


def _cli_executable() -> str:
    # Prefer the script next to this interpreter (a venv), else PATH.
    here = Path(sys.executable).parent / "bottomless-cli"
    if here.is_file():
        return str(here)
    found = shutil.which("bottomless-cli")
    assert found, "bottomless-cli is not installed; run `pip install -e .`"
    return found


def test_cli_help_runs() -> None:
    proc = subprocess.run([_cli_executable(), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


# ---- the extension in a stock sqlite3 shell ---------------------------------


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 CLI not installed")
def test_loads_in_sqlite3_cli(tmp_path: Path) -> None:
    env = dict(os.environ, LIBSQL_BOTTOMLESS_AUTOSTART="false")
    proc = subprocess.run(
        ["sqlite3", ":memory:", f".load {bottomless.extension_path()}", "select 1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == "1"
