"""``jobfleet show ID`` / ``jobfleet status ID --detail``: one job in full, with what it
used and the hints for over-requests; and the usage keys of every ``--json``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from jobfleet.cli.show import detail_lines, hints
from jobfleet.states import ElementRecord, JobRecord, JobState
from jobfleet.usage import NO_USAGE, USAGE_KEYS, Usage
from support.cli import jf

T0 = 1_796_560_366.0  # 2026-12-06T12:32:46Z
GIB = 2**30


def record(
    usage: Usage = NO_USAGE,
    memory: int | None = None,
    walltime: int | None = None,
    elements: dict[int, ElementRecord] | None = None,
) -> JobRecord:
    resources = {"memory_bytes": memory, "walltime_s": walltime}
    return JobRecord(
        id="7",
        name="train",
        backend="slurm",
        native_id="10356",
        state=JobState.COMPLETED,
        exit_code=0,
        reason=None,
        submitted=True,
        job_dir="/jobs/7",
        created_at=T0,
        updated_at=T0,
        spec={"command": ["x"], "resources": resources},
        elements=elements or {},
        usage=usage,
    )


USED = Usage(T0 - 1, T0, T0 + 120, ("node01", "node02"), 200 * 2**20, 95.5, 120.0)


def test_detail_view_shows_times_hosts_memory_cpu_and_wall() -> None:
    lines = detail_lines(record(USED, memory=GIB // 2, walltime=300))
    text = "\n".join(lines)
    assert lines[0] == "job 7 (train)"
    assert "  state:      completed" in lines
    assert "  backend:    slurm, native id 10356" in lines
    assert "  started:    2026-12-06T12:32:46Z" in lines
    assert "  ended:      2026-12-06T12:34:46Z" in lines
    assert "  hosts:      node01, node02" in lines
    assert "  memory:     peak 200.0 MiB (of 512.0 MiB asked for)" in lines
    assert "  CPU time:   00:01:36" in lines
    assert "  wall time:  00:02:00 (of 00:05:00 asked for)" in lines
    assert "hint" not in text  # 39 % of the memory, 40 % of the walltime: no hint


def test_hints_below_a_quarter_of_the_request_say_so_with_the_numbers() -> None:
    over = record(USED, memory=4 * GIB, walltime=3600)
    (memory, walltime) = hints(over)
    assert memory.startswith("it used at most 200.0 MiB of the 4.0 GiB of memory asked for (5%)")
    assert walltime.startswith("it ran at most 00:02:00 of the 01:00:00 walltime asked for (3%)")
    assert [line for line in detail_lines(over) if line.startswith("  hint: ")] == [
        f"  hint: {memory}",
        f"  hint: {walltime}",
    ]


@pytest.mark.parametrize(
    ("usage", "memory", "walltime"),
    [
        (USED, None, None),  # nothing asked for: nothing to compare with
        (Usage(), 4 * GIB, 3600),  # nothing known of what it used
        (USED, 800 * 2**20, 480),  # exactly 25 %: not under
    ],
)
def test_no_hint_without_both_numbers_or_at_a_quarter(
    usage: Usage, memory: int | None, walltime: int | None
) -> None:
    assert hints(record(usage, memory, walltime)) == []


def test_arrays_summarize_each_element_and_hint_on_the_largest() -> None:
    small = Usage(T0, T0, T0 + 10, ("n1",), 100 * 2**20, 1.0, 10.0)
    big = Usage(T0, T0, T0 + 20, ("n2",), 300 * 2**20, 2.0, 20.0)
    elements = {
        1: ElementRecord(1, JobState.COMPLETED, 0, None, small),
        2: ElementRecord(2, JobState.COMPLETED, 0, None, big),
    }
    lines = detail_lines(record(memory=2 * GIB, walltime=3600, elements=elements))
    assert "  elements:   2 (the lines above: over all of them)" in lines
    # The array's own lines add its elements up: hosts, the largest peak, CPU summed.
    assert "  hosts:      n1, n2" in lines
    assert "  memory:     peak 300.0 MiB (of 2.0 GiB asked for)" in lines
    assert "  CPU time:   3.00 s" in lines
    assert "  wall time:  20.00 s (of 01:00:00 asked for)" in lines
    assert (
        "    [1] completed, exit code 0; on n1, peak 100.0 MiB, CPU 1.00 s, wall 10.00 s" in lines
    )
    assert (
        "    [2] completed, exit code 0; on n2, peak 300.0 MiB, CPU 2.00 s, wall 20.00 s" in lines
    )
    (memory, walltime) = hints(record(memory=2 * GIB, walltime=3600, elements=elements))
    assert memory.startswith("its elements used at most 300.0 MiB of the 2.0 GiB")
    assert walltime.startswith("its elements ran at most 20.00 s of the 01:00:00")


def test_show_and_status_detail_on_a_real_local_job(jf_home: Path) -> None:
    code = "b = bytearray(200 * 1024 * 1024); import time; time.sleep(1)"
    job_id = jf("submit", "--memory", "4G", "--walltime", "1h", "--", "python3", "-c", code)
    job_id = job_id.stdout.strip()
    jf("wait", "--timeout", "60", job_id)
    shown = jf("show", job_id).stdout
    assert jf("status", job_id, "--detail").stdout == shown
    assert shown.startswith(f"job {job_id} (python3)\n")
    assert "  state:      completed\n" in shown
    assert ", the largest process's (of 4.0 GiB asked for)" in shown  # wait4's ru_maxrss
    assert "  hint: its largest process used at most " in shown
    assert "of the 4.0 GiB of memory" in shown
    assert "  hint: it ran at most " in shown and "of the 01:00:00 walltime" in shown
    data = json.loads(jf("show", job_id, "--json").stdout)
    assert data == json.loads(jf("status", job_id, "--detail", "--json").stdout)
    (listed,) = json.loads(jf("status", job_id, "--json").stdout)
    for keys in (data, listed):
        assert set(USAGE_KEYS) <= set(keys)
        assert 200 * 2**20 <= keys["max_memory_bytes"] <= 320 * 2**20
        assert keys["started_at"].endswith("Z") and keys["ended_at"] > keys["started_at"]
        assert keys["hosts"] and keys["cpu_time_s"] > 0 and keys["wall_time_s"] >= 1


def test_detail_wants_exactly_one_id(jf_home: Path) -> None:
    proc = jf("status", "--detail", expect=2)
    assert "give exactly one job ID with --detail" in proc.stderr


def several_tasks(usage: Usage, **layout: int) -> JobRecord:
    one = record(usage, memory=4 * GIB, walltime=3600)
    resources = {**one.spec["resources"], **layout}
    return replace(one, spec={**one.spec, "resources": resources})


@pytest.mark.parametrize("layout", [{"tasks": 4}, {"nodes": 2, "tasks_per_node": 1}])
def test_no_memory_hint_for_a_job_of_several_tasks(layout: dict[str, int]) -> None:
    # A 4-task job near its limit: MaxRSS (and ru_maxrss) is the largest task's, ~1/4.
    used = Usage(T0 - 1, T0, T0 + 120, ("node01",), 880 * 2**20, 95.5, 120.0)
    job = several_tasks(used, **layout)
    assert not any("memory" in hint for hint in hints(job))
    assert any("walltime" in hint for hint in hints(job))  # the walltime is the job's
    assert "  memory:     peak 880.0 MiB, the largest task's (of 4.0 GiB asked for)" in (
        detail_lines(job)
    )


def test_a_per_process_peak_says_so_in_its_hint() -> None:
    job = record(USED, memory=4 * GIB, walltime=3600)
    (memory, _) = hints(job, per_process=True)
    assert memory.startswith("its largest process used at most 200.0 MiB of the 4.0 GiB")
    assert "  memory:     peak 200.0 MiB, the largest process's (of 4.0 GiB asked for)" in (
        detail_lines(job, per_process=True)
    )
    assert not any("memory" in h for h in hints(several_tasks(USED, tasks=2), per_process=True))
