"""Restore of libSQL's 2023 per-page layout (libsql-server/bottomless at
99cdaa7e097b): one gzip object per page, ``<frame>-<pgno>-<crc64>``.

The writer uploaded a transaction's pages at commit, then ``.consistent``
(the last committed frame), so pages of frames after it are from a commit
that did not finish and are left out, as libSQL's reader does. The CRC in
each name is CRC-64/ECMA-182 over the page, continuing the CRC of the frame
before; a writer process starts its chain at 0 and keeps it across the
generations it starts. libSQL's reader only warned on a mismatch; here a
page whose CRC continues neither the frame before nor a fresh chain fails
the restore, naming the object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bottomless import objects
from bottomless.catalog import Generation, Page
from bottomless.errors import LayoutError, RestoreError
from bottomless.s3 import S3Store
from bottomless.snapshot_check import parse_header

log = logging.getLogger(__name__)

_POLY = 0x42F0E1EBA9EA3693
_MASK = (1 << 64) - 1


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 56
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) & _MASK if crc & (1 << 63) else (crc << 1) & _MASK
        table.append(crc)
    return table


_TABLE = _table()


def crc64(data: bytes, initial: int = 0) -> int:
    """CRC-64/ECMA-182 (no reflection, no final xor) continuing ``initial``."""
    crc, table = initial, _TABLE
    for byte in data:
        crc = table[((crc >> 56) ^ byte) & 0xFF] ^ ((crc << 8) & _MASK)
    return crc


@dataclass(frozen=True)
class Applied:
    page_size: int
    db_size: int
    frames: int
    verified: int
    skipped: int  # pages after the last consistent frame


def apply_generation(
    store: S3Store,
    gen: Generation,
    tmp: str,
    verify: bool,
    chain_start: Callable[[], int | None],
    progress: Callable[[int, int], None] | None = None,
) -> Applied:
    """Write the generation's snapshot and pages into ``tmp``.
    ``chain_start`` gives the CRC an earlier generation's last page ended
    with (None when unknown), for a chain that a writer carried over."""
    try:
        consistent = objects.read_consistent(store, gen.db_name, gen.generation)
    except LayoutError as exc:
        raise RestoreError(str(exc)) from None
    last = consistent.frame if consistent else 0
    pages = [p for p in gen.pages if p.frame <= last]
    skipped = len(gen.pages) - len(pages)
    if skipped:
        log.warning(
            "generation %s: %d page(s) after the last consistent frame %d belong to an unfinished commit; left out",
            gen.prefix,
            skipped,
            last,
        )
    _check_frames(gen, pages, last)
    total = len(pages) + 1
    snapshot = b""
    if gen.snapshot is not None:
        assert gen.snapshot_compression is not None
        snapshot = _decoded(store, gen.snapshot.key, gen.snapshot_compression)
    with open(tmp, "wb") as out:
        out.write(snapshot)
    if progress:
        progress(1, total)
    page_size = parse_header(snapshot).page_size if snapshot else 0
    prev: int | None = None
    verified = 0
    with open(tmp, "r+b") as out:
        for done, page in enumerate(pages, start=2):
            data = _decoded(store, page.key, "gz")
            if page_size == 0:
                page_size = len(data)
            if len(data) != page_size:
                raise RestoreError(f"page object {page.key!r} holds {len(data)} bytes, the page size is {page_size}")
            if verify:
                _verify(page, data, prev, chain_start)
                verified += 1
            prev = page.crc
            out.seek((page.pgno - 1) * page_size)
            out.write(data)
            if progress:
                progress(done, total)
        out.seek(0)
        header = parse_header(out.read(100)) if page_size else None
        size = out.seek(0, 2)
        db_size = size // page_size if page_size else 0
        if header is not None and header.page_count:
            # The layout keeps no database size per commit; the header's own
            # count is what SQLite trusts, so pages beyond it are dropped.
            db_size = header.page_count
            out.truncate(db_size * page_size)
    if page_size == 0:
        raise RestoreError(f"generation {gen.prefix} holds neither a snapshot nor a committed page")
    return Applied(page_size, db_size, len(pages), verified, skipped)


def _check_frames(gen: Generation, pages: list[Page], last: int) -> None:
    """Frames 1..last, each once: anything else is a gap or a clash."""
    expected = 1
    for page in pages:
        if page.frame != expected:
            what = "a second page for frame" if page.frame < expected else "a gap before frame"
            raise RestoreError(f"{what} {page.frame} in generation {gen.prefix}: {page.key}")
        expected += 1
    if expected - 1 != last:
        raise RestoreError(
            f"generation {gen.prefix} is consistent up to frame {last} (.consistent), but its pages end at frame "
            f"{expected - 1}"
        )


def _verify(page: Page, data: bytes, prev: int | None, chain_start: Callable[[], int | None]) -> None:
    if prev is not None and crc64(data, prev) == page.crc:
        return
    if crc64(data) == page.crc:
        return  # a writer process (re)started its chain here
    if prev is None:
        start = chain_start()
        if start is not None and crc64(data, start) == page.crc:
            return
        if start is None:
            log.warning("cannot check the CRC of %s: its chain began in a generation no longer listed", page.key)
            return
    raise RestoreError(f"page object {page.key!r} fails its CRC-64 check")


def _decoded(store: S3Store, key: str, codec: str) -> bytes:
    try:
        return objects.decode_body(store.get(key), key, codec, None)
    except LayoutError as exc:
        raise RestoreError(str(exc)) from None
