"""Sanity checks of a snapshot (a page-exact copy of a SQLite database file)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100


@dataclass(frozen=True)
class DbHeader:
    page_size: int
    change_counter: bytes  # bytes 24..27, as ``.changecounter`` stores them
    page_count: int | None  # in-header size, None when SQLite would not trust it


def parse_header(data: bytes) -> DbHeader:
    """Parse a SQLite database header; ValueError when it is not one."""
    if len(data) < HEADER_SIZE or not data.startswith(SQLITE_MAGIC):
        raise ValueError("not a SQLite database file (bad header)")
    (raw_page_size,) = struct.unpack_from(">H", data, 16)
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    counter = data[24:28]
    (page_count,) = struct.unpack_from(">I", data, 28)
    valid_for = data[92:96]
    trusted = page_count if page_count and valid_for == counter else None
    return DbHeader(page_size, bytes(counter), trusted)


def snapshot_pages(data: bytes, page_size: int) -> int:
    """Number of pages in a snapshot, after checking it is whole.

    ValueError when the snapshot is not a database of ``page_size`` pages or
    is shorter than its own header says.
    """
    if not data:
        return 0
    header = parse_header(data)
    if header.page_size != page_size:
        raise ValueError(f"page size {header.page_size} differs from .meta's {page_size}")
    if len(data) % page_size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {page_size}-byte pages")
    pages = len(data) // page_size
    if header.page_count is not None and pages < header.page_count:
        raise ValueError(f"truncated: {pages} pages, the header says {header.page_count}")
    return header.page_count or pages
