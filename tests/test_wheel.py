"""The wheel a user installs holds every package of the source tree (an
editable install would hide one left out)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


@pytest.mark.slow
def test_wheel_ships_every_package_and_the_library(repo_root: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(repo_root)],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = tmp_path.glob("bottomless-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source = repo_root / "python"
    packages = {p.parent.relative_to(source).as_posix() for p in source.rglob("__init__.py")}
    assert {"bottomless", "bottomless_cli", "bottomless_cli/commands"} <= packages
    for package in packages:
        for module in (source / package).glob("*.py"):
            assert f"{package}/{module.name}" in names, f"the wheel lacks {package}/{module.name}"
    assert any(n.startswith("bottomless/_lib/libbottomless.") for n in names), sorted(names)
    assert "bottomless/_lib/bottomless.h" in names
