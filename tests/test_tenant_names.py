"""A database found in a replicated folder gets a <db-name> that is a valid
layout name, comes back to the same path, and never collides."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bottomless.errors import LayoutError
from bottomless.layout import validate_db_name
from bottomless.tenant_names import name_of, path_of

TRICKY = [
    "app.db",
    "acme/app.db",
    "a..b.db",
    "...db",
    ".hidden.db",
    "~tilde.db",
    "per%cent.db",
    "sp ace/ü-ñ.db",
    "a%2Fb.db",
    "x-y_z/1/2/3.sqlite",
    "tab\there.db",
]


@pytest.mark.parametrize("text", TRICKY)
def test_name_is_valid_and_reversible(text: str) -> None:
    path = PurePosixPath(text)
    name = name_of(path)
    assert validate_db_name(name) == name
    assert path_of(name) == path


def test_readable_names_for_plain_paths() -> None:
    assert name_of(PurePosixPath("acme/app.db")) == "acme%2Fapp.db"
    assert name_of(PurePosixPath("a..b.db")) == "a.%2Eb.db"


_PART = st.text(alphabet="ab./%~-_ \u00fc\t", min_size=1, max_size=6).filter(
    lambda p: p not in (".", "..") and "/" not in p
)


@given(st.lists(_PART, min_size=1, max_size=3), st.lists(_PART, min_size=1, max_size=3))
def test_no_two_paths_share_a_name(a: list[str], b: list[str]) -> None:
    pa, pb = PurePosixPath(*a), PurePosixPath(*b)
    assert path_of(name_of(pa)) == pa
    assert (name_of(pa) == name_of(pb)) == (pa == pb)


@pytest.mark.parametrize("bad", ["/abs/app.db", "../up.db", "."])
def test_paths_outside_the_folder_are_refused(bad: str) -> None:
    with pytest.raises(LayoutError):
        name_of(PurePosixPath(bad))


@pytest.mark.parametrize("name", ["acme%2fapp.db", "a%2E.db", "bad%ZZ", "%FF.db"])
def test_names_not_made_by_name_of_are_refused(name: str) -> None:
    with pytest.raises(LayoutError):
        path_of(name)
