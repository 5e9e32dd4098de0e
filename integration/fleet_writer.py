"""Writer for test_fleet: commits numbered rows into random databases among
those given, through the bottomless VFS with no replicator of its own (the
multi-database replicator ships them), printing ``committed DB ID`` after
each commit, one into each database first, then into random ones. Stops after COUNT commits, or when killed.

usage: python fleet_writer.py COUNT SEED PAUSE DB...  (PAUSE: seconds between commits)
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time

from bottomless.snapshot import ensure_wal
from bottomless.sqlite_vfs import register_python_sqlite


def main() -> None:
    count, seed, pause, dbs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    rng = random.Random(seed)
    register_python_sqlite()
    conns: dict[str, sqlite3.Connection] = {}
    for db in dbs:
        ensure_wal(db)
        conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None, timeout=30)
        conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, pad BLOB)")
        conns[db] = conn
    for n in range(count):
        db = dbs[n] if n < len(dbs) else rng.choice(dbs)  # each one gets a commit first
        conn = conns[db]
        next_id = (conn.execute("SELECT max(id) FROM t").fetchone()[0] or 0) + 1
        conn.execute("INSERT INTO t(id, pad) VALUES (?, randomblob(?))", (next_id, rng.choice([10, 200, 3000])))
        print(f"committed {db} {next_id}", flush=True)
        time.sleep(pause)
    for conn in conns.values():
        conn.close()


if __name__ == "__main__":
    main()
