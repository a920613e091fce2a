"""Error messages quote what was wrong, shortened (jobfleet.errors.shown)."""

from __future__ import annotations

import doctest

import jobfleet.errors
from jobfleet.errors import UnknownJobError, shown


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.errors)
    assert result.failed == 0 and result.attempted > 0


def test_short_values_are_quoted_whole_and_long_ones_say_their_length() -> None:
    assert shown("abc") == "'abc'"
    long = shown("é" * 100_000)
    assert len(long) < 100 and "(100000 characters)" in long
    assert shown(-(10**40)) == "a 41-digit number"
    assert shown(True) == "True"


def test_an_unknown_id_of_any_length_is_a_short_message() -> None:
    assert len(str(UnknownJobError("9" * 100_000))) < 200
