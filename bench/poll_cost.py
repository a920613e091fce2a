"""Client CPU and scheduler calls per poll for 10,000 tracked jobs, from recorded output.

Usage: python bench/poll_cost.py [--jobs 10000] [--repeat 20]

No cluster needed: squeue and sacct answers are built from rows recorded on the
live SLURM 22.05 cluster (tests/backends/slurm/fixtures/22.05), repeated with fresh job
ids: half the jobs are still queued (one squeue row each), half have left the
queue (one sacct row each). A scripted runner answers instantly, so what is
measured is jobfleet's own work for one poll: building the commands, parsing
both answers, merging them into per-job states. Baseline in the same run: the
same poll of 100 jobs, to show how the cost grows. Target: <= 20 ms of client
CPU per poll at 10,000 jobs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from jobfleet.backends.base import PollTarget
from jobfleet.backends.slurm.backend import SlurmBackend
from jobfleet.runner import CommandResult, ScriptedRunner

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "backends" / "slurm" / "fixtures" / "22.05"


def recorded_rows() -> tuple[str, str]:
    """A RUNNING squeue row and a COMPLETED sacct row, as recorded."""
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


def scenario(jobs: int) -> tuple[list[PollTarget], ScriptedRunner]:
    queue_row, accounting_row = recorded_rows()
    queue_id = queue_row.split("|", 1)[0]
    accounting_fields = accounting_row.split("|")
    first = 1_000_000
    targets = [PollTarget(str(i), str(first + i), "/nonexistent", 1.8e9) for i in range(jobs)]
    queued = [str(first + i) for i in range(0, jobs, 2)]
    left = [str(first + i) for i in range(1, jobs, 2)]
    squeue = "".join(queue_row.replace(queue_id, n) + "\n" for n in queued)
    # sacct --format=JobID,JobIDRaw,State,ExitCode: the recorded state and exit code.
    state, code = accounting_fields[3], accounting_fields[4]
    sacct = "".join(f"{n}|{n}|{state}|{code}\n" for n in left)

    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, squeue if argv[0] == "squeue" else sacct, "")

    return targets, ScriptedRunner(respond)


def measure(jobs: int, repeat: int) -> tuple[float, int, int]:
    """Median client CPU seconds per poll, and the squeue/sacct calls of one poll."""
    times = []
    calls = (0, 0)
    for _ in range(repeat):
        targets, runner = scenario(jobs)
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
    args = parser.parse_args()
    base_s, *_ = measure(100, args.repeat)
    cpu_s, squeue, sacct = measure(args.jobs, args.repeat)
    print(
        f"poll of 100 jobs:          {base_s * 1000:7.2f} ms client CPU (median of {args.repeat})"
    )
    print(f"poll of {args.jobs} jobs:  {cpu_s * 1000:7.2f} ms client CPU (median of {args.repeat})")
    print(f"calls per poll: {squeue} squeue + {sacct} sacct (expect 1 + 1)")
    print(f"per job: {cpu_s / args.jobs * 1e6:.2f} us; ratio to 100 jobs: {cpu_s / base_s:.0f}x")
    print("target: <= 20 ms per poll at 10,000 jobs")


if __name__ == "__main__":
    main()
