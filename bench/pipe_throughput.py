"""Pipe mode's claim cost against the size of the run: tasks per second at 1,000 tasks
and at 10x and 100x that, same workers, same no-op task.

Usage: python bench/pipe_throughput.py [--workers 2] [--sizes 1000,10000,100000]
       [--block-size 8]

For each size a fresh run directory holds that many ``true`` tasks (argv, no shell);
W worker processes (``python -m jobfleet.pipe.worker``, no scheduler) serve it; the time
from the first claim to the end of the smallest size's number of tasks, read from the
journals afterwards (nothing polls while they work), gives the throughput; the workers
of the larger runs are then stopped. Baseline in the same run: the smallest size. If a claim
scanned every task (ARC's pipe mode: 212 tasks/s at 1,000 tasks, 23 at 10,000), the
ratio would fall with the size; a claim that costs the same at any size keeps it
near 1.0x. Printed: each size's tasks/s and its ratio to the smallest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobfleet.pipe.api import Pipe


def _journal_times(run_dir: Path) -> tuple[float, list[float]]:
    """When the first claim was made, and when each completed end was written."""
    first = float("inf")
    ends: list[float] = []
    for journal in (run_dir / "journal").iterdir():
        for line in journal.read_text().splitlines():
            record = json.loads(line)
            if record["k"] == "claim":
                first = min(first, record["at"])
            elif record["k"] == "end" and record["state"] == "completed":
                ends.append(record["at"])
    return first, sorted(ends)


def throughput(root: Path, size: int, count: int, workers: int, limit: float, block: int) -> float:
    """Tasks per second of ``workers`` workers over the first ``count`` tasks of a run
    of ``size`` (from the first claim to the count-th completed end, as the journals
    tell: the bench does not poll while they work)."""
    run_dir = root / f"run-{size}"
    tasks = root / f"tasks-{size}.txt"
    tasks.write_text((json.dumps({"argv": ["true"]}) + "\n") * size)
    Pipe.create(run_dir, tasks, block_size=block)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobfleet.pipe.worker", str(run_dir)],
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
    first, ends = _journal_times(run_dir)
    shutil.rmtree(run_dir)
    if len(ends) < count:
        raise SystemExit(f"{size} tasks: only {len(ends)} of {count} ended in {limit:g} s")
    return count / (ends[count - 1] - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--block-size", type=int, default=8)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="jf-pipe-bench-"))
    count = sizes[0]
    try:
        started = time.monotonic()
        base = throughput(root, count, count, args.workers, 3600, args.block_size)
        limit = 3 * (time.monotonic() - started) + 10
        rates = {count: base}
        for n in sizes[1:]:
            rates[n] = throughput(root, n, count, args.workers, limit, args.block_size)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"pipe mode, {args.workers} workers, the first {count:,} no-op tasks of each run:")
    for n, rate in rates.items():
        print(
            f"  {n:>9,} tasks  {rate:8.1f} tasks/s  {rate / base:5.2f}x the {sizes[0]:,}-task run"
        )


if __name__ == "__main__":
    main()
