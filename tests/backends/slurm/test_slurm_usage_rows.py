"""The poll's reading of what SLURM jobs used, held to its plain reference.

:func:`jobfleet.backends.slurm.usage.used_by` reads thousands of sacct rows in one poll
(bench/poll_cost.py --every 2), inlined and built with :func:`jobfleet.usage.new_usage`;
:func:`~jobfleet.backends.slurm.usage.job_usage` is the plain reading of one row with
``Usage(...)``. Here both read every job row recorded with the poll's own sacct columns
(22.05/usage-*, 22.05/cancel-lag-*: jobs running, ended, cancelled before they started,
still pending) and must agree, field for field.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from jobfleet.backends.slurm.accounting import ACCOUNTING_FORMAT
from jobfleet.backends.slurm.usage import FIRST, WIDTH, UsageRow, job_usage, used_by
from jobfleet.usage import USAGE_KEYS, Usage, new_usage

FIXTURES = Path(__file__).parent / "fixtures" / "22.05"


def _recorded_rows() -> list[list[str]]:
    """Every job row (no steps) of the recordings made with the poll's sacct format."""
    rows = []
    for meta in sorted(FIXTURES.glob("*.meta.json")):
        argv = json.loads(meta.read_text(encoding="utf-8"))["argv"]
        if argv[0] != "sacct" or f"--format={ACCOUNTING_FORMAT}" not in argv:
            continue
        text = meta.with_name(meta.name.replace(".meta.json", ".out")).read_text(encoding="utf-8")
        rows += [line.split("|") for line in text.splitlines() if "." not in line.split("|")[0]]
    return rows


ROWS = _recorded_rows()
#: A pending job's row with its submission time unknown too: nothing known at all.
NOTHING = [
    *ROWS[0][:FIRST],
    "Unknown",
    "Unknown",
    "Unknown",
    "None assigned",
    "",
    "00:00:00",
    "0:00",
]


def test_the_recordings_cover_every_kind_of_row() -> None:
    assert len(ROWS) >= 100 and all(len(fields) == WIDTH for fields in ROWS)
    starts = {fields[FIRST + 1] for fields in ROWS}
    ends = {fields[FIRST + 2] for fields in ROWS}
    # Started and not, ended and not, hosts and none: each branch of the reading.
    assert {"Unknown", "None"} <= starts and any(s[:1].isdigit() for s in starts)
    assert "Unknown" in ends and any(e[:1].isdigit() for e in ends)
    assert {"vm", "None assigned"} <= {fields[FIRST + 3] for fields in ROWS}


def _row(native: str, index: int | None, job_id: str, fields: list[str]) -> UsageRow:
    """A job row as parse_accounting hands it on: its usage columns unsplit."""
    return native, index, job_id, "|".join(fields[FIRST:])


@pytest.mark.parametrize("peak", [None, 0, 221400 * 1024])
def test_the_poll_reads_each_recorded_row_as_the_plain_reading_does(peak: int | None) -> None:
    rows = {str(n): fields for n, fields in enumerate([*ROWS, NOTHING])}
    peaks = {} if peak is None else {f"sacct-{n}": peak for n in rows}
    used = used_by([_row(n, None, f"sacct-{n}", fields) for n, fields in rows.items()], peaks)
    for native, fields in rows.items():
        expected = job_usage(fields[FIRST:], peak)
        if expected.empty:
            assert native not in used and peak is None  # nothing known: none reported
        else:
            assert used[native] == {None: expected}
            assert tuple(used[native][None].hosts or ()) == tuple(expected.hosts or ())
    assert used, "some recorded rows tell what their job used"


def test_elements_of_one_array_are_kept_apart() -> None:
    started = [fields for fields in ROWS if fields[FIRST + 1][:1].isdigit()]
    rows = [_row("77", index, f"77_{index}", fields) for index, fields in enumerate(started[:3])]
    assert used_by(rows, {"77_1": 5}) == {
        "77": {
            0: job_usage(started[0][FIRST:], None),
            1: job_usage(started[1][FIRST:], 5),
            2: job_usage(started[2][FIRST:], None),
        }
    }


def test_rows_without_the_usage_columns_tell_nothing() -> None:
    # Recordings made before the usage columns were asked for (or with more of them).
    assert (
        used_by([("1", None, "1", ""), ("2", None, "2", "|".join(ROWS[0][FIRST:]) + "|x")], {})
        == {}
    )


def test_new_usage_is_the_constructor_by_position() -> None:
    assert tuple(f.name for f in dataclasses.fields(Usage)) == USAGE_KEYS
    values = (1.0, 2.0, 3.0, ("a", "b"), 7, 0.5, 1.0)
    built = new_usage(*values)
    assert built == Usage(*values) and hash(built) == hash(Usage(*values))
    assert [getattr(built, key) for key in USAGE_KEYS] == list(values)
    assert new_usage(None, None, None, None, None, None, None) == Usage()
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.cpu_time_s = 2.0  # type: ignore[misc]
