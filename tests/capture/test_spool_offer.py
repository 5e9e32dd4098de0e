"""What the next batch is offered (bottomless_spool_offer): one scan in the
core passes over records already in S3 and stops where a batch must end,
saying why, with the record it stopped at."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bottomless.frames import frame_size
from bottomless.spool import OfferStop, Spool
from bottomless.sqlite_vfs import register_python_sqlite

NO_LIMIT = 1 << 40


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """A database with five committed transactions, the last one later."""
    register_python_sqlite()
    path = tmp_path / "offer.db"
    conn = sqlite3.connect(f"file:{path}?vfs=bottomless", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t(x)")
        for v in range(3):
            conn.execute("INSERT INTO t VALUES (?)", (v,))
        time.sleep(0.3)
        conn.execute("INSERT INTO t VALUES (99)")
        yield path
    finally:
        conn.close()


def test_everything_unshipped_is_offered(db: Path) -> None:
    with Spool(str(db)) as spool:
        recs = list(spool.records())
        offer = spool.offer(0, recs[0].page_size, NO_LIMIT, NO_LIMIT)
        assert offer.stop is OfferStop.END and offer.skipped is None and offer.next is None
        assert offer.run is not None
        assert (offer.run.offset, offer.run.count) == (recs[0].offset, len(recs))
        assert offer.run.raw_bytes == sum(r.n_pages for r in recs) * frame_size(recs[0].page_size)
        assert offer.run.max_pages == max(r.n_pages for r in recs)
        assert offer.run.offset_of(len(recs) - 1) == recs[-1].offset


def test_records_already_in_s3_are_passed_over_and_named(db: Path) -> None:
    with Spool(str(db)) as spool:
        recs = list(spool.records())
        offer = spool.offer(recs[1].seq, recs[0].page_size, NO_LIMIT, NO_LIMIT)
        assert offer.skipped is not None and offer.skipped.seq == recs[1].seq
        spool.ack(offer.skipped)  # the record comes back as the core's own struct
        assert offer.run is not None and offer.run.offset == recs[2].offset
        assert offer.run.count == len(recs) - 2
        assert spool.offer(recs[-1].seq, recs[0].page_size, NO_LIMIT, NO_LIMIT).run is None


def test_the_first_record_is_always_taken_then_the_bytes_limit_ends_it(db: Path) -> None:
    with Spool(str(db)) as spool:
        recs = list(spool.records())
        offer = spool.offer(0, recs[0].page_size, 1, NO_LIMIT)
        assert offer.run is not None and offer.run.count == 1
        assert offer.stop is OfferStop.FULL and offer.next is not None and offer.next.seq == recs[1].seq


def test_commits_further_apart_than_the_span_are_offered_apart(db: Path) -> None:
    with Spool(str(db)) as spool:
        recs = list(spool.records())
        offer = spool.offer(0, recs[0].page_size, NO_LIMIT, 200)
        assert offer.run is not None and offer.run.count == len(recs) - 1
        assert offer.stop is OfferStop.FULL and offer.next is not None and offer.next.seq == recs[-1].seq


def test_another_page_size_is_not_offered(db: Path) -> None:
    with Spool(str(db)) as spool:
        recs = list(spool.records())
        offer = spool.offer(0, recs[0].page_size // 2, NO_LIMIT, NO_LIMIT)
        assert offer.run is None and offer.stop is OfferStop.PAGE_SIZE
        assert offer.next is not None and offer.next.seq == recs[0].seq
