"""Scheduler job names and their inverse (jobfleet.naming)."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

import jobfleet.naming
from jobfleet.naming import (
    NAME_PREFIX_RE,
    ParsedName,
    parse_scheduler_name,
    registry_prefix,
    scheduler_name,
)


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.naming)
    assert result.failed == 0 and result.attempted > 0


@given(
    job_id=st.integers(1, 10**12).map(str),
    attempt=st.integers(1, 1000),
    name=st.text(max_size=300),
)
def test_every_name_made_parses_back(job_id: str, attempt: int, name: str) -> None:
    made = scheduler_name("0a1b2c3d", job_id, name, attempt)
    assert parse_scheduler_name(made, "0a1b2c3d") == ParsedName(job_id, attempt)
    assert parse_scheduler_name(made, "ffffffff") is None  # another registry's
    assert registry_prefix(made) == "jf0a1b2c3d"
    assert all(c.isalnum() or c in "._-" for c in made)


@given(
    job_id=st.integers(1, 10**12).map(str),
    attempt=st.integers(1, 1000),
    name=st.text(max_size=300),
    prefix=st.from_regex(NAME_PREFIX_RE, fullmatch=True),
)
def test_names_with_a_prefix_parse_back(job_id: str, attempt: int, name: str, prefix: str) -> None:
    made = scheduler_name("0a1b2c3d", job_id, name, attempt, prefix)
    assert made.startswith(prefix)
    assert parse_scheduler_name(made, "0a1b2c3d") == ParsedName(job_id, attempt)
    assert parse_scheduler_name(made, "ffffffff") is None
    assert registry_prefix(made) == f"{prefix}jf0a1b2c3d"


def test_a_name_after_something_that_is_no_prefix_is_not_ours() -> None:
    for name in (
        "1lab-jf0a1b2c3d-17-x",  # a prefix starts with a letter
        "a b-jf0a1b2c3d-17-x",  # spaces are never written
        "abcdefghijklmnopqrstu-jf0a1b2c3d-17-x",  # 21 characters: longer than any prefix
    ):
        assert parse_scheduler_name(name, "0a1b2c3d") is None, name


def test_names_of_others_are_not_ours() -> None:
    for name in (
        "jf0a1b2c3d",  # no job part
        "jf0a1b2c3d-",  # empty
        "jf0a1b2c3d-x-y",  # not a number
        "jf0a1b2c3d-17.1-y",  # attempt 1 is never written
        "jf0a1b2c3d-17.-y",
        "jf0a1b2c3d-17.x-y",
        "sweep-1",
    ):
        assert parse_scheduler_name(name, "0a1b2c3d") is None, name
    assert registry_prefix("sweep-1") is None
