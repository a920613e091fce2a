"""What every backend shares (jobfleet.backends.base)."""

from __future__ import annotations

import doctest

import pytest

import jobfleet.backends.base
from jobfleet.backends.base import lazy_names


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.backends.base)
    assert result.failed == 0 and result.attempted > 0


def test_lazy_names_load_only_what_they_name() -> None:
    load = lazy_names("jobfleet.backends.sge", {"map_state": "parse"})
    assert load("map_state")("r").value == "running"
    with pytest.raises(AttributeError, match="no attribute 'SgeBackend'"):
        load("SgeBackend")  # not in the map, even though the package has it
