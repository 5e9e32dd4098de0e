"""Random SQL workloads that exercise every way SQLite writes a WAL.

A workload is a list of units; each unit is the SQL a host runs in one go
(a committed transaction, a rolled-back one, a savepoint dance, a
checkpoint, a VACUUM). Generated from a seed, so a failure names the seed
that reproduces it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CHECKPOINT_MODES = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")


@dataclass(frozen=True)
class Unit:
    """SQL run as one piece; ``kind`` says what it exercises."""

    kind: str
    sql: str


@dataclass(frozen=True)
class Workload:
    seed: int
    page_size: int
    cache_size: int
    setup: str
    units: list[Unit]


def _payload(rng: random.Random, page_size: int) -> str:
    # Mostly small rows, sometimes overflow chains (several pages at small
    # page sizes), bounded so a 64 KiB-page workload stays quick.
    size = rng.choice([8, 40, 200, min(page_size // 2, 3000), min(page_size * 3, 9000)])
    return f"randomblob({size})"


def _writes(rng: random.Random, page_size: int, n: int) -> list[str]:
    out: list[str] = []
    for _ in range(n):
        op = rng.random()
        if op < 0.6:
            out.append(f"INSERT INTO t(k, v) VALUES ({rng.randrange(10**6)}, {_payload(rng, page_size)});")
        elif op < 0.8:
            out.append(f"UPDATE t SET v = {_payload(rng, page_size)} WHERE id % {rng.randint(2, 9)} = 0;")
        elif op < 0.95:
            out.append(f"DELETE FROM t WHERE id % {rng.randint(3, 13)} = 1;")
        else:
            out.append(f"INSERT INTO u(x) VALUES ({rng.randrange(10**6)});")
    return out


def generate(seed: int, units: int = 25) -> Workload:
    rng = random.Random(seed)
    page_size = rng.choice([512, 1024, 4096, 4096, 8192, 65536])
    # A tiny cache makes big transactions spill frames before they commit.
    cache_size = rng.choice([10, 2000])
    setup = f"PRAGMA page_size={page_size};\nPRAGMA journal_mode=wal;\n"
    out: list[Unit] = [
        Unit(
            "schema",
            "CREATE TABLE t(id INTEGER PRIMARY KEY, k INT, v BLOB);\nCREATE TABLE u(x INT);\nCREATE INDEX t_k ON t(k);",
        ),
    ]
    for _ in range(units):
        r = rng.random()
        if r < 0.45:
            out.append(Unit("commit", "BEGIN;\n" + "\n".join(_writes(rng, page_size, rng.randint(1, 6))) + "\nCOMMIT;"))
        elif r < 0.55:
            big = "\n".join(_writes(rng, page_size, rng.randint(40, 120)))
            out.append(Unit("big", "BEGIN;\n" + big + "\nCOMMIT;"))
        elif r < 0.65:
            out.append(
                Unit("rollback", "BEGIN;\n" + "\n".join(_writes(rng, page_size, rng.randint(1, 60))) + "\nROLLBACK;")
            )
        elif r < 0.77:
            sql = [
                "BEGIN;",
                *_writes(rng, page_size, 3),
                "SAVEPOINT a;",
                *_writes(rng, page_size, rng.randint(1, 50)),
                "ROLLBACK TO a;",
                *_writes(rng, page_size, 2),
                "RELEASE a;",
                "COMMIT;",
            ]
            out.append(Unit("savepoint", "\n".join(sql)))
        elif r < 0.90:
            out.append(Unit("checkpoint", f"PRAGMA wal_checkpoint({rng.choice(CHECKPOINT_MODES)});"))
        elif r < 0.94:
            out.append(Unit("vacuum", "VACUUM;"))
        elif r < 0.97:
            out.append(Unit("autocommit", _writes(rng, page_size, 1)[0]))
        else:
            out.append(
                Unit("ddl", rng.choice(["CREATE INDEX IF NOT EXISTS t_v ON t(v);", "DROP INDEX IF EXISTS t_v;"]))
            )
    return Workload(seed, page_size, cache_size, setup, out)
