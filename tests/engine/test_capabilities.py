"""The engine refuses, before recording anything, what a backend's Capabilities rule out."""

from __future__ import annotations

import dataclasses

import pytest

from jobfleet.backends.base import Capabilities
from jobfleet.engine.submission import check_capabilities
from jobfleet.errors import SpecError
from jobfleet.spec import JobSpec, parse_array

ALL = Capabilities()


def spec(array: str | None) -> JobSpec:
    return JobSpec(["true"], array=parse_array(array) if array else None)


@pytest.mark.parametrize("array", [None, "1-10", "1-9:2%3", "1,3,7-9", "0-5%1"])
def test_a_backend_that_can_do_everything_takes_every_array(array: str | None) -> None:
    check_capabilities(spec(array), "toy", ALL)


@pytest.mark.parametrize(
    ("cannot", "array", "words"),
    [
        ({"arrays": False}, "1-3", "runs no arrays"),
        ({"max_array_size": 5}, "1-6", "at most 5"),
        ({"max_concurrency": False}, "1-6%2", "drop '%2'"),
        ({"listed_indices": False}, "1-3,7", "one range"),
        ({"stepped_indices": False}, "1-9:2", "no stepped ranges"),
    ],
)
def test_what_a_backend_cannot_do_is_refused_by_field(
    cannot: dict[str, object], array: str, words: str
) -> None:
    can = dataclasses.replace(ALL, **cannot)
    with pytest.raises(SpecError) as info:
        check_capabilities(spec(array), "toy", can)
    assert info.value.field == "array"
    assert words in info.value.message and "toy" in info.value.message
    check_capabilities(spec(None), "toy", can)  # a single job is always fine


def test_limits_that_are_not_reached_pass() -> None:
    can = dataclasses.replace(ALL, max_array_size=6, listed_indices=False)
    check_capabilities(spec("1-6"), "toy", can)
    check_capabilities(spec("2-12:2"), "toy", can)  # one stepped range is one range
