"""Object keys of the S3 layout."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bottomless import layout
from bottomless.errors import LayoutError

GEN = uuid.UUID("e4eb3c21-ff53-7b2e-a6ea-ca396f4df9b1")


def test_keys() -> None:
    prefix = "test.db-e4eb3c21-ff53-7b2e-a6ea-ca396f4df9b1/"
    assert layout.snapshot_key("test.db", GEN, "zstd") == prefix + "db.zstd"
    assert layout.meta_key("test.db", GEN) == prefix + ".meta"
    assert layout.change_counter_key("test.db", GEN) == prefix + ".changecounter"
    assert layout.dep_key("test.db", GEN) == prefix + ".dep"
    assert (
        layout.batch_key("test.db", GEN, 1, 42, 1671783892, "gz") == prefix + "000000000001-000000000042-1671783892.gz"
    )


def test_batch_names_parse_and_reject() -> None:
    parsed = layout.parse_batch_name("000000000007-000000000009-1671783892.raw")
    assert parsed == layout.BatchName(7, 9, 1671783892, "raw")
    for bad in (
        "000000000009-000000000007-1.raw",  # last < first
        "000000000000-000000000001-1.raw",  # frames are 1-based
        "000000000001-000000000002-1.lz4",  # unknown codec
        "1-2-3.raw",  # not zero-padded
        "db.zstd",
        ".meta",
    ):
        assert layout.parse_batch_name(bad) is None, bad


def test_snapshot_names() -> None:
    assert layout.parse_snapshot_name("db.gz") == "gz"
    assert layout.parse_snapshot_name("db.lz4") is None
    assert layout.parse_snapshot_name("dbx.gz") is None


def test_generation_prefixes() -> None:
    prefix = f"my-app.db-{GEN}/"
    assert layout.parse_generation_prefix("my-app.db", prefix) == GEN
    assert layout.parse_generation_prefix("my", prefix) is None  # "app.db-<gen>" is no uuid
    assert layout.split_generation_prefix(prefix) == ("my-app.db", GEN)
    assert layout.split_generation_prefix("random/") is None
    assert layout.split_generation_prefix(f"{GEN}/") is None  # no name


@pytest.mark.parametrize("name", ["", "a/b", "a\\b", "..", "x..y", "a\nb"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(LayoutError):
        layout.validate_db_name(name)


def test_db_name_for_path_and_dep() -> None:
    assert layout.db_name_for_path("/var/lib/app/test.db") == "test.db"
    assert layout.decode_dep(layout.encode_dep(GEN)) == GEN
    with pytest.raises(ValueError):
        layout.decode_dep(b"short")


@given(
    first=st.integers(1, 10**12 - 1),
    length=st.integers(0, 10**6),
    secs=st.integers(0, 2**40),
    codec=st.sampled_from(["zstd", "gz", "raw"]),
)
def test_batch_keys_round_trip(first: int, length: int, secs: int, codec: str) -> None:
    key = layout.batch_key("db", GEN, first, first + length, secs, codec)
    prefix, _, name = key.rpartition("/")
    assert layout.split_generation_prefix(prefix + "/") == ("db", GEN)
    assert layout.parse_batch_name(name) == layout.BatchName(first, first + length, secs, codec)
    # zero padding keeps listing order equal to frame order
    later = layout.batch_key("db", GEN, first + length + 1, first + length + 1, 0, codec)
    assert later > key or first + length + 1 >= 10**12


def test_merged_keys_parse_here_and_not_in_libsqls_parser() -> None:
    key = layout.merged_batch_key("db", GEN, 1, 64, 1700000000, "zstd")
    name = key.rpartition("/")[2]
    assert name == "000000000001-000000000064-1700000000.merged.zstd"
    assert layout.parse_batch_name(name) == layout.BatchName(1, 64, 1700000000, "zstd", merged=True)
    # libSQL's parse_frame_range reads the time up to the last '.', which
    # must fail to parse as an integer for it to pass the object over.
    stem = name[: name.rfind(".")]
    assert not stem.rpartition("-")[2].isdigit()


def test_2023_page_names() -> None:
    assert layout.parse_page_name("000000000003-000000000001-6c40df5f0b497347") == layout.PageName(
        3, 1, 0x6C40DF5F0B497347
    )
    for bad in (
        "000000000003-000000000001-6C40DF5F0B49734",
        "000000000000-000000000001-6c40df5f0b497347",
        ".consistent",
    ):
        assert layout.parse_page_name(bad) is None
