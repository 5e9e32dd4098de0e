"""A writer process for crash and concurrency tests.

Usage: python -m tests.capture.writer_proc DB TAG COUNT SEED
Commits COUNT transactions through the bottomless VFS, each inserting rows
tagged (TAG, i); prints "committed TAG i" after SQLite reports each commit,
so a parent that kills it knows what must survive. Mixes in large
transactions and checkpoints of every mode.
"""

from __future__ import annotations

import random
import sqlite3
import sys

from bottomless.sqlite_vfs import register_python_sqlite


def main() -> None:
    db, tag, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    register_python_sqlite()
    conn = sqlite3.connect(f"file:{db}?vfs=bottomless", uri=True, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute(f"PRAGMA cache_size={rng.choice([10, 2000])}")
    for i in range(count):
        rows = rng.choice([1, 1, 3, 80])
        conn.execute("BEGIN IMMEDIATE")
        for r in range(rows):
            conn.execute(
                "INSERT INTO w(tag, i, r, v) VALUES (?, ?, ?, randomblob(?))", (tag, i, r, rng.choice([10, 500, 5000]))
            )
        conn.execute("COMMIT")
        print(f"committed {tag} {i}", flush=True)
        x = rng.random()
        if x < 0.05:
            conn.execute(f"PRAGMA wal_checkpoint({rng.choice(['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'])})")
    conn.close()


if __name__ == "__main__":
    main()
