"""Client CPU and scheduler calls per poll for 10,000 tracked jobs, from recorded output.

Usage: python bench/poll_cost.py [--jobs 10000] [--repeat 20] [--every 2] [--distinct]

No cluster needed: squeue and sacct answers are built from rows recorded on the
live SLURM 22.05 cluster (tests/backends/slurm/fixtures/22.05), repeated with fresh job
ids: half the jobs are still queued (one squeue row each), half have left the
queue (two sacct rows each since issue 11: the job's, with what it used, and its
batch step's, with its MaxRSS). A scripted runner answers instantly, so what is
measured is jobfleet's own work for one poll: building the commands, parsing
both answers, merging them into per-job states. Baseline in the same run: the
same poll of 100 jobs, to show how the cost grows. Target: <= 20 ms of client
CPU per poll at 10,000 jobs. With ``--distinct`` every ended job has its own times, CPU
time and MaxRSS, fresh at each repeat, as on a cluster (the recorded row repeated lets
the parsers' caches answer every value but the first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import time
from pathlib import Path

from jobfleet.backends.base import PollTarget
from jobfleet.backends.slurm.backend import SlurmBackend
from jobfleet.runner import CommandResult, ScriptedRunner

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "backends" / "slurm" / "fixtures" / "22.05"


def recorded_rows() -> tuple[str, str]:
    """A RUNNING squeue row and a COMPLETED sacct row, as recorded (the row's state and
    exit code; since issue 11 the answer is built from usage_rows())."""
    queue = next(
        line
        for line in (FIXTURES / "squeue-live.out").read_text().splitlines()
        if "|RUNNING|" in line and "_" not in line.split("|", 1)[0]
    )
    accounting = next(
        line
        for line in (FIXTURES / "sacct-final.out").read_text().splitlines()
        if "|COMPLETED|" in line and "_" not in line.split("|", 1)[0]
    )
    return queue, accounting


def usage_rows() -> tuple[str, str]:
    """A COMPLETED job's sacct row and its batch step's, in the poll's columns (what a
    job used among them), as recorded: ``22.05/usage-sacct-ended``."""
    lines = (FIXTURES / "usage-sacct-ended.out").read_text().splitlines()
    job = next(line for line in lines if line.split("|", 1)[0].isdigit())
    step = next(line for line in lines if line.startswith(job.split("|", 1)[0] + ".batch|"))
    return job, step


#: Where --distinct's values start: each scenario's go on from the last one's.
_FRESH = itertools.count()


def _own_values(job: str, step: str) -> tuple[str, str]:
    """A job's row and its batch step's (usage columns after the id columns) with
    values of their own: times a second apart, CPU time and MaxRSS varying."""
    n = next(_FRESH)
    at = dt.datetime(2026, 12, 6, 12, 0) + dt.timedelta(seconds=n)
    submit, start, end = (
        (at + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S") for s in (0, 1, 5 + n % 7)
    )
    job_cols, step_cols = job.split("|"), step.split("|")
    for cols in (job_cols, step_cols):
        cols[3:6] = [submit, start, end]  # after State, ExitCode, Timelimit
        cols[8:10] = [f"{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}", f"00:00:{4 + n % 7:02d}"]
    step_cols[7] = f"{200_000 + n % 100_000}K"
    return "|".join(job_cols), "|".join(step_cols)


def scenario(
    jobs: int, every: int = 2, distinct: bool = False
) -> tuple[list[PollTarget], ScriptedRunner]:
    """``jobs`` tracked jobs, one in ``every`` of them gone from the queue (to sacct);
    with ``distinct``, each of those with usage values of its own."""
    queue_row, _ = recorded_rows()
    job_row, step_row = usage_rows()
    queue_id = queue_row.split("|", 1)[0]
    first = 1_000_000
    targets = [PollTarget(str(i), str(first + i), "/nonexistent", 1.8e9) for i in range(jobs)]
    queued = [str(first + i) for i in range(jobs) if i % every != every - 1]
    left = [str(first + i) for i in range(jobs) if i % every == every - 1]
    squeue = "".join(queue_row.replace(queue_id, n) + "\n" for n in queued)
    # sacct in the poll's columns, steps included: each job's row, then its batch step's.
    job_rest, step_rest = job_row.split("|", 2)[2], step_row.split("|", 2)[2]
    rows = (_own_values(job_rest, step_rest) if distinct else (job_rest, step_rest) for _ in left)
    sacct = "".join(
        f"{n}|{n}|{j}\n{n}.batch|{n}.batch|{s}\n" for n, (j, s) in zip(left, rows, strict=True)
    )

    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, squeue if argv[0] == "squeue" else sacct, "")

    return targets, ScriptedRunner(respond)


def measure(
    jobs: int, repeat: int, every: int = 2, distinct: bool = False
) -> tuple[float, int, int]:
    """Median client CPU seconds per poll, and the squeue/sacct calls of one poll."""
    times = []
    calls = (0, 0)
    for _ in range(repeat):
        targets, runner = scenario(jobs, every, distinct)
        backend = SlurmBackend(runner)
        start = time.process_time()
        statuses = backend.poll(targets)
        times.append(time.process_time() - start)
        if len(statuses) != jobs:
            raise SystemExit(f"benchmark invalid: {len(statuses)} of {jobs} jobs answered")
        calls = (runner.count("squeue"), runner.count("sacct"))
    return statistics.median(times), *calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--every",
        type=int,
        default=2,
        help="one job in EVERY has left the queue (2: half, the worst case; 100: the "
        "steady state of a monitor, where jobs leave the queue once)",
    )
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="each ended job with its own times, CPU time and MaxRSS (as on a cluster)",
    )
    args = parser.parse_args()
    base_s, *_ = measure(100, args.repeat, args.every, args.distinct)
    cpu_s, squeue, sacct = measure(args.jobs, args.repeat, args.every, args.distinct)
    print(
        f"poll of 100 jobs:          {base_s * 1000:7.2f} ms client CPU (median of {args.repeat})"
    )
    print(f"poll of {args.jobs} jobs:  {cpu_s * 1000:7.2f} ms client CPU (median of {args.repeat})")
    print(f"calls per poll: {squeue} squeue + {sacct} sacct (expect 1 + 1)")
    print(f"per job: {cpu_s / args.jobs * 1e6:.2f} us; ratio to 100 jobs: {cpu_s / base_s:.0f}x")
    print("target: <= 20 ms per poll at 10,000 jobs")


if __name__ == "__main__":
    main()
