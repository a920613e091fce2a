"""Tests for jobfleet.units and jobfleet.nativeunits: memory sizes and durations."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobfleet.nativeunits
import jobfleet.units
from jobfleet.errors import SpecError, UnitError
from jobfleet.units import (
    format_memory,
    format_walltime,
    parse_interval,
    parse_memory,
    parse_walltime,
)

KiB, MiB, GiB, TiB, PiB = (2**10 * 1024**i for i in range(5))
MAX_BYTES = 2**60
MAX_SECONDS = 100 * 365 * 86400


@pytest.mark.parametrize("module", [jobfleet.units, jobfleet.nativeunits])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


# --- memory --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512", 512),
        ("100B", 100),
        ("100b", 100),
        # bare suffixes are 1024-based, as in SLURM, PBS, SGE
        ("512K", 512 * KiB),
        ("512M", 512 * MiB),
        ("4G", 4 * GiB),
        ("2T", 2 * TiB),
        ("1P", PiB),
        # explicit binary suffixes
        ("4KiB", 4 * KiB),
        ("4MiB", 4 * MiB),
        ("4GiB", 4 * GiB),
        ("4TiB", 4 * TiB),
        ("4PiB", 4 * PiB),
        # SI suffixes, as written
        ("4KB", 4_000),
        ("4MB", 4_000_000),
        ("4GB", 4_000_000_000),
        ("4TB", 4 * 10**12),
        ("4PB", 4 * 10**15),
        # case does not matter
        ("4g", 4 * GiB),
        ("4gb", 4_000_000_000),
        ("4gib", 4 * GiB),
        ("4Gib", 4 * GiB),
        # fractions, spaces
        ("1.5T", 3 * 2**39),
        ("0.5K", 512),
        (".5K", 512),
        ("2.K", 2 * KiB),
        (" 4 G ", 4 * GiB),
        ("1024P", MAX_BYTES),
    ],
)
def test_parse_memory_forms(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0001K", 1025),  # 1024.1024 bytes -> 1025
        ("0.1", 1),
        ("0.001KB", 1),
        ("1.5KB", 1500),
        ("1.0005KB", 1001),
    ],
)
def test_parse_memory_rounds_up(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


def test_parse_memory_int() -> None:
    assert parse_memory(1) == 1
    assert parse_memory(MAX_BYTES) == MAX_BYTES


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "cannot read"),
        ("G", "cannot read"),
        ("4X", "cannot read"),
        ("4 GiBs", "cannot read"),
        ("-1G", "cannot read"),
        ("1e3", "cannot read"),
        ("4iB", "needs a prefix"),
        ("0", "more than 0"),
        ("0G", "more than 0"),
        ("0.0K", "more than 0"),
        (0, "more than 0"),
        (-5, "more than 0"),
        ("1025P", "larger than 1 EiB"),
        (MAX_BYTES + 1, "larger than 1 EiB"),
        ("9" * 65, "cannot read"),
        (True, "expected a size"),
        (4.0, "expected a size"),
        (None, "expected a size"),
    ],
)
def test_parse_memory_errors(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment) as info:
        parse_memory(value)  # type: ignore[arg-type]
    assert info.value.field == "memory"
    assert isinstance(info.value, SpecError)


def test_memory_error_names_the_field() -> None:
    with pytest.raises(UnitError) as info:
        parse_memory("lots", "resources.memory")
    assert info.value.field == "resources.memory"
    assert str(info.value).startswith("resources.memory: ")
    # and says what would be accepted
    assert "'4G'" in str(info.value)


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (4 * GiB, "4G"),
        (1536 * MiB, "1536M"),
        (1000, "1000"),
        (1, "1"),
        (KiB, "1K"),
        (KiB + 1, "1025"),
        (PiB, "1P"),
        (MAX_BYTES, "1024P"),
        (3 * 2**39, "1536G"),
    ],
)
def test_format_memory(nbytes: int, text: str) -> None:
    assert format_memory(nbytes) == text


# --- walltime ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", 90),
        ("45m", 2700),
        ("2h", 7200),
        ("2d", 172800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93784),
        ("4s3m2h1d", 93784),
        ("1H30M", 5400),
        ("1.5h", 5400),
        (".5m", 30),
        ("0.5s", 1),
        ("01:30:00", 5400),
        ("0:00:01", 1),
        ("100:00:00", 360000),
        ("1-00:00:00", 86400),
        ("2-01:01:01", 2 * 86400 + 3661),
        ("3600", 3600),
        (" 45m ", 2700),
        (3600, 3600),
        (1.5, 2),
        (0.001, 1),
        (MAX_SECONDS, MAX_SECONDS),
    ],
)
def test_parse_walltime_forms(value: str | int | float, expected: int) -> None:
    assert parse_walltime(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("10:00", "ambiguous"),
        ("1:30", "ambiguous"),
        ("00:60:00", "below 60"),
        ("00:00:60", "below 60"),
        ("1h1h", "twice"),
        ("1h 30m", "cannot read"),
        ("", "cannot read"),
        ("abc", "cannot read"),
        ("1w", "cannot read"),
        ("-5", "cannot read"),
        ("1-10:00", "cannot read"),
        ("1:2:3:4", "cannot read"),
        ("0", "longer than 0"),
        ("0s", "longer than 0"),
        ("00:00:00", "longer than 0"),
        (0, "longer than 0"),
        (-1, "longer than 0"),
        (-0.5, "longer than 0"),
        ("36501d", "100 years"),
        (MAX_SECONDS + 1, "100 years"),
        (1e300, "100 years"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (-math.inf, "finite"),
        ("9" * 70, "too long"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([3600], "expected a duration"),
    ],
)
def test_parse_walltime_errors(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment) as info:
        parse_walltime(value)  # type: ignore[arg-type]
    assert info.value.field == "walltime"


def test_ambiguous_clock_says_how_to_fix() -> None:
    with pytest.raises(UnitError) as info:
        parse_walltime("10:00", "resources.walltime")
    assert info.value.field == "resources.walltime"
    assert "HH:MM:SS" in info.value.message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "00:00:01"),
        (59, "00:00:59"),
        (5400, "01:30:00"),
        (86399, "23:59:59"),
        (86400, "1-00:00:00"),
        (90061, "1-01:01:01"),
        (10 * 86400 + 1, "10-00:00:01"),
    ],
)
def test_format_walltime(seconds: int, text: str) -> None:
    assert format_walltime(seconds) == text


# --- properties ----------------------------------------------------------------

UNITISH = st.text(alphabet="0123456789.:- \tdhmsDHMSkKmMgGtTpPiIbB%eE+_", max_size=20)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**60, 2**60 + 1, 10**300, -(10**300), 1e308, -1e308, 5e-324]),
)


def _positive_int_or_unit_error(func: object, value: object) -> None:
    assert callable(func)
    try:
        result = func(value)
    except UnitError:
        return
    assert type(result) is int
    assert result > 0


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), UNITISH, NUMBERS))
def test_parse_memory_total(value: object) -> None:
    _positive_int_or_unit_error(parse_memory, value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), UNITISH, NUMBERS))
def test_parse_walltime_total(value: object) -> None:
    _positive_int_or_unit_error(parse_walltime, value)


@pytest.mark.parametrize("func", [parse_memory, parse_walltime])
@pytest.mark.parametrize("value", [10**5000, -(10**5000)], ids=["1e5000", "-1e5000"])
def test_huge_int_gives_unit_error(func: object, value: int) -> None:
    _positive_int_or_unit_error(func, value)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_BYTES))
def test_memory_round_trip(nbytes: int) -> None:
    assert parse_memory(format_memory(nbytes)) == nbytes


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=2**20).map(lambda n: n * GiB) | st.integers(1, 4096))
def test_memory_round_trip_on_round_sizes(nbytes: int) -> None:
    assert parse_memory(format_memory(nbytes)) == nbytes


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_SECONDS))
def test_walltime_round_trip(seconds: int) -> None:
    assert parse_walltime(format_walltime(seconds)) == seconds


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=86400 * 3))
def test_walltime_round_trip_short(seconds: int) -> None:
    assert parse_walltime(format_walltime(seconds)) == seconds


# --- each scheduler's native forms -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:07", 7), ("1:02:03", 3723), ("2-00:00:01", 172801), ("05", 5), ("INVALID", None)],
)
def test_parse_slurm_duration(text: str, expected: int | None) -> None:
    from jobfleet.nativeunits import parse_slurm_duration

    assert parse_slurm_duration(text) == expected


def test_slurm_formats() -> None:
    from jobfleet.nativeunits import format_slurm_memory, format_slurm_time

    assert format_slurm_time(3600) == "0-01:00:00"
    assert format_slurm_memory(1) == "1M"  # rounded up: never less than asked
    assert format_slurm_memory(4 * GiB) == "4096M"


def test_sge_forms() -> None:
    from jobfleet.nativeunits import (
        format_sge_memory,
        format_sge_time,
        parse_qacct_memory,
        parse_sge_memory,
        parse_sge_seconds,
        parse_sge_time,
    )

    category = "-U arusers -l h_rt=0:01:00,h_vmem=100M -pe smp 2"
    assert parse_sge_memory(category, "h_vmem") == 100 * MiB
    assert parse_sge_memory("-l h_vmem=2G", "h_vmem") == 2 * GiB
    assert parse_sge_memory("-l h_vmem=2g", "h_vmem") == 2e9  # lower case: 1000-based
    assert parse_sge_memory("-l h_vmem=100M.5", "h_vmem") is None  # not a size
    assert parse_sge_time(category, "h_rt") == 60.0
    assert parse_sge_time(category, "h_cpu") is None
    assert parse_qacct_memory("275.070MB") == pytest.approx(275.070 * MiB)
    assert parse_qacct_memory("1.5GB") == 1.5 * GiB
    assert parse_qacct_memory("") is None
    assert parse_sge_seconds("3.010s") == 3.01
    assert format_sge_time(3661) == "1:01:01"
    assert format_sge_memory(64 * MiB, 2) == "32M"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, 2.0), (0.5, 0.5), ("0.5s", 0.5), ("250ms", 0.25), ("2m", 120.0), ("1h", 3600.0)],
)
def test_parse_interval(value: object, expected: float) -> None:
    from jobfleet.units import parse_interval

    assert parse_interval(value) == expected


@pytest.mark.parametrize("value", [0, -1, "2d", "x", True, math.nan, 86401, "1" * 80])
def test_parse_interval_refuses(value: object) -> None:
    from jobfleet.units import parse_interval

    with pytest.raises(UnitError, match="above 0 and at most 1 day"):
        parse_interval(value, "wait.poll_interval")


@pytest.mark.parametrize("text", ["\u0663s", "3s\n", "\u06633", "3\u2003s"])
def test_intervals_take_ascii_digits_and_spaces_only(text: str) -> None:
    with pytest.raises(SpecError):
        parse_interval(text, "wait.poll_interval")


@pytest.mark.parametrize("text", ["\u0663G", "4G\n", "4\u2003G"])
def test_memory_takes_ascii_digits_and_spaces_only(text: str) -> None:
    with pytest.raises(SpecError):
        parse_memory(text)
    assert parse_memory(" 4G\t") == 4 * 2**30
