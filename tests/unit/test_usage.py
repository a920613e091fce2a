"""What a job used: the Usage value, its JSON form, host lists, and the unit parsers."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from jobfleet.nativeunits import parse_slurm_cpu_time, parse_slurm_rss
from jobfleet.states import ElementRecord, JobRecord, JobState
from jobfleet.usage import USAGE_KEYS, Usage, expand_hostlist, iso_utc, parse_local_time

T0 = 1_796_560_366.0  # 2026-12-06T12:32:46Z


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("vm", ("vm",)),
        ("node[01-03]", ("node01", "node02", "node03")),
        ("node[08-10,15],gpu1", ("node08", "node09", "node10", "node15", "gpu1")),
        ("r[1-2]n[1-2]", ("r1n1", "r1n2", "r2n1", "r2n2")),
        ("a,b[7]", ("a", "b7")),
        ("None assigned", ()),
        ("(null)", ()),
        ("", ()),
    ],
)
def test_expand_hostlist(text: str, hosts: tuple[str, ...]) -> None:
    assert expand_hostlist(text) == hosts


def test_iso_utc_is_what_datetime_writes() -> None:
    """The fast path (whole seconds cached, datetime's rounding to the microsecond,
    half to even) writes exactly what datetime.isoformat writes."""

    def reference(when: float) -> str:
        return dt.datetime.fromtimestamp(when, dt.timezone.utc).replace(tzinfo=None).isoformat()

    rng = random.Random(16)
    times = [rng.uniform(-2e9, 4e9) for _ in range(20_000)]
    times += [rng.randrange(-(10**9), 4 * 10**9) + rng.random() / 10**k for k in range(3, 9)]
    # Exact half microseconds (1/128 s is 7812.5 us) round half to even; a fraction that
    # rounds up to the next second carries; negative times borrow.
    times += [T0 + n / 128 for n in range(128)] + [T0 + 0.9999996, T0 - 0.9999996, -0.5, -1e-7]
    times += [0.0, -1.0, 1.0000005, 253402300799.0, -62135596800.0]
    for when in times:
        assert iso_utc(when) == reference(when) + "Z", when


def test_iso_utc_has_a_trailing_z_and_is_utc() -> None:
    assert iso_utc(T0) == "2026-12-06T12:32:46Z"
    assert iso_utc(T0 + 0.25) == "2026-12-06T12:32:46.250000Z"
    assert iso_utc(None) is None
    back = dt.datetime.fromisoformat(iso_utc(T0)[:-1]).replace(tzinfo=dt.timezone.utc)  # type: ignore[index]
    assert back.timestamp() == T0


def test_parse_local_time_reads_sacct_times_and_refuses_placeholders() -> None:
    assert (
        parse_local_time("2026-12-06T12:15:53") == dt.datetime(2026, 12, 6, 12, 15, 53).timestamp()
    )
    for text in ("Unknown", "None", "", "2026-13-06T12:15:53"):
        assert parse_local_time(text) is None


def test_a_newer_report_never_erases_a_known_value() -> None:
    known = Usage(started_at=T0, ended_at=T0 + 4, hosts=("vm",), cpu_time_s=0.3)
    later = Usage(max_memory_bytes=221_400 * 1024, cpu_time_s=0.35)
    merged = known.merged(later)
    assert merged == Usage(
        started_at=T0,
        ended_at=T0 + 4,
        hosts=("vm",),
        max_memory_bytes=221_400 * 1024,
        cpu_time_s=0.35,
    )
    assert merged.merged(Usage()) is merged
    assert merged.merged(None) is merged
    assert Usage().empty and not merged.empty


def test_json_keys_of_jobs_and_elements() -> None:
    used = Usage(T0 - 1, T0, T0 + 3.5, ("n1", "n2"), 200 * 2**20, 1.25, 3.5)
    assert used.to_dict() == {
        "submitted_at": "2026-12-06T12:32:45Z",
        "started_at": "2026-12-06T12:32:46Z",
        "ended_at": "2026-12-06T12:32:49.500000Z",
        "hosts": ["n1", "n2"],
        "max_memory_bytes": 200 * 2**20,
        "cpu_time_s": 1.25,
        "wall_time_s": 3.5,
    }
    record = JobRecord(
        id="3",
        name="a",
        backend="slurm",
        native_id="9",
        state=JobState.COMPLETED,
        exit_code=0,
        reason=None,
        submitted=True,
        job_dir="/j",
        created_at=T0,
        updated_at=T0,
        elements={
            1: ElementRecord(1, JobState.COMPLETED, 0, None, used),
            2: ElementRecord(2, JobState.COMPLETED, 0),
        },
    )
    data = json.loads(json.dumps(record.to_dict()))
    assert all(data[k] is None for k in USAGE_KEYS)  # the array as a whole: not told
    assert {k: data["elements"]["1"][k] for k in USAGE_KEYS} == used.to_dict()
    assert all(data["elements"]["2"][k] is None for k in USAGE_KEYS)


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("221400K", 221_400 * 1024),
        ("2M", 2 * 2**20),
        ("1.5G", 3 * 2**29),
        ("0", 0),
        ("", None),
        ("x", None),
    ],
)
def test_parse_slurm_rss(text: str, nbytes: int | None) -> None:
    assert parse_slurm_rss(text) == nbytes


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00.314", 0.314),
        ("01:02", 62.0),
        ("1:00:00", 3600.0),
        ("2-00:00:01", 172801.0),
        ("", None),
        ("a:b", None),
    ],
)
def test_parse_slurm_cpu_time(text: str, seconds: float | None) -> None:
    assert parse_slurm_cpu_time(text) == seconds


def test_doctests() -> None:
    import doctest

    import jobfleet.backends.sge.parse
    import jobfleet.usage

    for module in (jobfleet.usage, jobfleet.backends.sge.parse):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
