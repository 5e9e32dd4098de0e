"""The README's main job, `python -m bottomless.demo`, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys


def _demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LIBSQL_BOTTOMLESS_")}


def test_demo_writes_replicates_deletes_and_restores() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bottomless.demo"], env=_demo_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "embedded S3 server" in proc.stdout
    assert "5 rows restored, integrity check: ok" in proc.stdout, proc.stdout


def test_demo_without_moto_says_what_to_install() -> None:
    # As after a plain `pip install .`: moto (the demo extra) cannot be imported.
    hide_moto = (
        "import runpy, sys; sys.modules['moto'] = None; runpy.run_module('bottomless.demo', run_name='__main__')"
    )
    argv = [sys.executable, "-c", hide_moto]
    proc = subprocess.run(argv, env=_demo_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'bottomless[demo]'" in proc.stderr and "LIBSQL_BOTTOMLESS_ENDPOINT" in proc.stderr, proc.stderr
