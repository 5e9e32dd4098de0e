"""Writer for test_crash_replication: commits numbered rows through
bottomless.connect, prints each id once committed and ``durable N`` once
flush() returned (every id up to N is then in S3). Runs until killed.

usage: python crash_writer.py DB FLUSH_EVERY SEED
"""

from __future__ import annotations

import random
import sys

import bottomless


def main() -> None:
    db, flush_every, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    conn = bottomless.connect(db, isolation_level=None, timeout=30)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, pad BLOB)")
    next_id = (conn.execute("SELECT max(id) FROM t").fetchone()[0] or 0) + 1
    while True:
        if rng.random() < 0.2:
            # Several rows in one transaction, sometimes with a page-heavy pad.
            ids = list(range(next_id, next_id + rng.randint(2, 6)))
            conn.execute("BEGIN")
            for i in ids:
                conn.execute("INSERT INTO t(id, pad) VALUES (?, randomblob(?))", (i, rng.choice([10, 3000, 9000])))
            conn.execute("COMMIT")
        else:
            ids = [next_id]
            conn.execute("INSERT INTO t(id, pad) VALUES (?, randomblob(?))", (next_id, rng.randint(0, 200)))
        for i in ids:
            print(i, flush=True)
        next_id = ids[-1] + 1
        if rng.random() < 1 / flush_every:
            conn.flush()
            print(f"durable {ids[-1]}", flush=True)


if __name__ == "__main__":
    main()
