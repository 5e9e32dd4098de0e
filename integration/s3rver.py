"""s3rver (npm): a second, independent S3 server for the integration suite.

``python integration/s3rver.py install`` puts s3rver into a cache folder
(``BOTTOMLESS_S3RVER_CACHE``, default ``~/.cache/bottomless/s3rver``); it is
quick and does nothing the second time. The suite's fixture (``conftest.py``,
``BOTTOMLESS_TEST_SERVER=s3rver``) installs it the same way if needed and
starts it with ``running()``.

s3rver's own bugs are dealt with here, not in the tests:

- its ListObjectsV2 continuation token is DES-encrypted, which Node 17+
  refuses without the legacy OpenSSL provider (every listing past 1,000
  keys would be a 500): it runs with ``NODE_OPTIONS=--openssl-legacy-provider``;
- a DeleteObjects that empties a "folder" can answer 500: it deletes the
  keys concurrently, and each then removes the folder if it looks empty, so
  one ``rmdir`` fails with ENOENT. ``bottomless.s3`` retries a 5xx (as on
  any server), but the extra request would show in tests that count them,
  so ``install()`` patches that loop in the cached copy to tolerate a folder
  already gone (``_patch_folder_cleanup``), and checks the patch applied.

What it lacks by design (it ignores ``If-None-Match`` and ``If-Match``) is
not worked around: the replicator's refusal to start is what the suite checks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

VERSION = "3.7.1"
# The fault proxy plays servers that drop conditional headers by stripping
# them, which breaks the request's signature; moto checks none, s3rver must
# be told to accept well-formed ones that do not match (a wrong access key
# is still refused).
SIGNATURES = ("--allow-mismatched-signatures",)
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"


def cache_dir() -> Path:
    configured = os.environ.get("BOTTOMLESS_S3RVER_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "bottomless" / "s3rver"


def binary(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "node_modules" / ".bin" / "s3rver"


_CLEANUP_BUGGY = """    while (
      parts.length &&
      !fs.readdirSync(path.join(bucketPath, ...parts)).length
    ) {
      await fs.rmdir(path.join(bucketPath, ...parts));
      parts.pop();
    }"""
_CLEANUP_FIXED = """    // patched by bottomless (integration/s3rver.py): concurrent deletes race here
    while (parts.length) {
      try {
        if (fs.readdirSync(path.join(bucketPath, ...parts)).length) break;
        await fs.rmdir(path.join(bucketPath, ...parts));
      } catch (err) {
        if (err.code === 'ENOTEMPTY') break;
        if (err.code !== 'ENOENT') throw err;
      }
      parts.pop();
    }"""


def _patch_folder_cleanup(cache: Path) -> None:
    store = cache / "node_modules" / "s3rver" / "lib" / "stores" / "filesystem.js"
    source = store.read_text()
    if _CLEANUP_FIXED in source:
        return
    if _CLEANUP_BUGGY not in source:
        raise RuntimeError(f"{store} is not the s3rver {VERSION} this suite knows how to patch")
    store.write_text(source.replace(_CLEANUP_BUGGY, _CLEANUP_FIXED))


def install(cache: Path | None = None) -> Path:
    """s3rver's executable, installed with npm into ``cache`` unless it is
    there, with its folder clean-up race patched."""
    cache = cache or cache_dir()
    exe = binary(cache)
    if exe.exists():
        _patch_folder_cleanup(cache)
        return exe
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: install Node.js 18+ (with npm) to run the suite against s3rver")
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(cache), f"s3rver@{VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 or not exe.exists():
        raise RuntimeError(f"npm install s3rver@{VERSION} into {cache} failed:\n{proc.stdout}\n{proc.stderr}")
    _patch_folder_cleanup(cache)
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(exe: Path | None = None) -> Iterator[str]:
    """An s3rver on a free loopback port with a fresh data folder; yields its endpoint."""
    exe = exe or install()
    port = _free_port()
    env = dict(os.environ)
    options = env.get("NODE_OPTIONS", "")
    env["NODE_OPTIONS"] = f"{options} --openssl-legacy-provider".strip()
    with tempfile.TemporaryDirectory(prefix="s3rver-") as data:
        proc = subprocess.Popen(
            [str(exe), "-d", data, "-p", str(port), "--address", "127.0.0.1", "--silent", *SIGNATURES],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(endpoint, proc)
            yield endpoint
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def _wait_until_up(endpoint: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"s3rver exited with {proc.returncode} before answering:\n{err}")
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"s3rver did not answer at {endpoint} within {timeout:.0f}s")


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit(f"usage: {sys.argv[0]} install")
    print(install())
