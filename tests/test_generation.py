"""Generation ids: reversed-timestamp UUIDv7 (libSQL bottomless compatible)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bottomless.generation import (
    created_at,
    format_created_at,
    new_generation,
    parse_generation,
)


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def test_seed_examples_decode_to_the_printed_creation_times() -> None:
    # From the seed README's `ls -v` output.
    assert format_created_at(uuid.UUID("e4eb3c21-ff53-7b2e-a6ea-ca396f4df9b1")) == ("2022-12-23 08:24:52.500")
    assert format_created_at(uuid.UUID("e4eb3c22-0359-7af6-9acb-285ed7b6ed59")) == ("2022-12-23 08:24:51.470")
    assert format_created_at(uuid.UUID("e4eb3c22-0941-73eb-85df-4e8552a0e88c")) == ("2022-12-23 08:24:49.958")


def test_round_trip_keeps_milliseconds() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    gen = new_generation(ns(moment))
    assert gen.version == 7
    assert gen.variant == uuid.RFC_4122
    assert created_at(gen) == moment.replace(microsecond=123000)


def test_newer_generations_sort_first_as_strings() -> None:
    older = new_generation(ns(datetime(2023, 1, 1, tzinfo=UTC)))
    newer = new_generation(ns(datetime(2023, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)))
    newest = new_generation(ns(datetime(2030, 6, 1, tzinfo=UTC)))
    assert sorted([str(older), str(newest), str(newer)]) == [str(newest), str(newer), str(older)]


def test_ids_are_unique_within_a_millisecond() -> None:
    assert len({new_generation(1_700_000_000_000_000_000) for _ in range(1000)}) == 1000


def test_parse_refuses_non_v7() -> None:
    assert parse_generation("E4EB3C21-FF53-7B2E-A6EA-CA396F4DF9B1").version == 7
    with pytest.raises(ValueError, match="not a version 7"):
        parse_generation(str(uuid.uuid4()))
    with pytest.raises(ValueError, match="not a generation id"):
        parse_generation("latest")


@given(st.integers(0, 253370761200 - 1).map(lambda s: s * 1_000_000_000), st.integers(0, 999_999_999))
def test_created_at_inverts_new_generation(seconds_ns: int, nanos: int) -> None:
    gen = new_generation(seconds_ns + nanos)
    expected_ms = (seconds_ns + nanos) // 1_000_000
    assert created_at(gen) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=expected_ms)
