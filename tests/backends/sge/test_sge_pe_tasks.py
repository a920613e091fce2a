"""A tightly integrated parallel job's several accounting records (issue 11, review part 2).

With the PE's ``accounting_summary FALSE`` (the test cluster's smp, and Grid Engine's
default), every ``qrsh -inherit`` task of a job (what mpirun starts) gets a qacct record
of its own, under the job's number and task id, besides the master's
(fixtures/8.1.9/pe-tasks-qacct, capture-8.1.9-pe-tasks.sh). The master's record says how
the job ended; CPU time is the sum over the tasks; peak memory the largest task's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from jobfleet.backends.base import PollTarget
from jobfleet.backends.command import PollContext
from jobfleet.backends.sge import parse as sge_parse
from jobfleet.backends.sge import usage as sge_usage
from jobfleet.runner import CommandResult
from jobfleet.states import JobState

FIXTURES = Path(__file__).parent / "fixtures" / "8.1.9"
JOBS = dict(
    line.split("=", 1)
    for line in (FIXTURES / "pe-tasks-jobs.env").read_text().split()
    if "=" in line
)
OK, LEFT = JOBS["pe_tasks_ok"], JOBS["pe_tasks_left"]
SEP = "=" * 62 + "\n"


def recorded() -> CommandResult:
    meta = json.loads((FIXTURES / "pe-tasks-qacct.meta.json").read_text())
    stdout = (FIXTURES / "pe-tasks-qacct.out").read_text()
    return CommandResult(tuple(meta["argv"]), meta["returncode"], stdout, meta["stderr"], 0.0)


def reordered(result: CommandResult, order: list[int]) -> CommandResult:
    """The same records in another order (qacct lists them as they were written)."""
    blocks = [b for b in result.stdout.split(SEP) if b]
    stdout = "".join(SEP + blocks[i] for i in order)
    return CommandResult(result.argv, result.returncode, stdout, result.stderr, 0.0)


def context() -> PollContext:
    targets = [
        PollTarget("j1", OK, "/nonexistent", 1.795e9, None, "jfpetasks-ok"),
        PollTarget("j2", LEFT, "/nonexistent", 1.795e9, None, "jfpetasks-left"),
    ]
    return PollContext({t.native_id: t for t in targets}, [OK, LEFT])


def ctime(text: str) -> float:
    return time.mktime(time.strptime(text, "%a %b %d %H:%M:%S %Y"))


def test_the_recording_has_a_record_per_task() -> None:
    numbers = [r.get("jobnumber") for r in sge_parse._qacct_records(recorded().stdout)]
    assert numbers.count(OK) == 3  # the master and its two qrsh -inherit tasks
    assert numbers.count(LEFT) == 1  # a task the job's end killed left no record


def test_the_masters_record_says_how_the_job_ended_in_any_order() -> None:
    # Records 0 and 1 are the tasks (one exited 3), 3 the master (exit 0), 2 the other job.
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 2, 0], [3, 0, 2, 1]):
        seen = sge_parse.parse_accounting(reordered(recorded(), order), context())
        assert seen[OK][None][:2] == (JobState.COMPLETED, 0), order
        assert seen[LEFT][None][:2] == (JobState.COMPLETED, 0)


def test_usage_sums_cpu_over_the_tasks_and_takes_the_largest_peak() -> None:
    for order in ([0, 1, 2, 3], [3, 1, 2, 0]):
        used = sge_usage.parse_usage(reordered(recorded(), order), context())[OK][None]
        assert used.submitted_at == ctime("Sun Dec  6 14:57:38 2026")  # the master's
        assert used.started_at == ctime("Sun Dec  6 14:57:38 2026")
        assert used.ended_at == ctime("Sun Dec  6 14:57:43 2026")
        assert used.wall_time_s == 5.0  # the master's, not a task's 4 s
        assert used.cpu_time_s == round(0.008 + 0.004 + 0.022 + 0.059 + 0.132 + 0.074, 6)
        assert used.max_memory_bytes == int(111.879 * 2**20)  # a task's, above the master's
        assert used.hosts == ("vm",)


def test_a_later_run_of_a_rescheduled_job_wins() -> None:
    # The same job run twice (rescheduled): the second run's record, after the first's end.
    (master,) = [r for r in sge_parse._qacct_records(recorded().stdout) if r["jobnumber"] == LEFT]
    first = {**master, "exit_status": "137", "failed": "100 : assumedly after job"}
    second = {
        **master,
        "start_time": "Sun Dec  6 15:00:00 2026",
        "end_time": "Sun Dec  6 15:00:03 2026",
        "ru_utime": "1.000s",
    }
    for records in ([first, second], [second, first]):
        stdout = "".join(SEP + "".join(f"{k} {v}\n" for k, v in r.items()) for r in records)
        result = CommandResult(("qacct",), 0, stdout, "", 0.0)
        assert sge_parse.parse_accounting(result, context())[LEFT][None][:2] == (
            JobState.COMPLETED,
            0,
        )
        used = sge_usage.parse_usage(result, context())[LEFT][None]
        assert used.started_at == ctime("Sun Dec  6 15:00:00 2026")
        assert used.cpu_time_s == round(1.0 + 0.007, 6)  # that run's only
