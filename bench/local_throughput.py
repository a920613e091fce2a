"""1,000 no-op jobs through the local backend vs ``xargs -P <cores>``, in one run.

Usage: python bench/local_throughput.py [--jobs N] [--repeat R] [--array]

``--array``: one array job of N elements instead of N single jobs (issue 16's P1).

Both sides run the same command (``true``) with the same parallelism. The
jobfleet side is measured from the first submission until every job's final
state is recorded in the registry: rendering and writing 1,000 job scripts,
the registry and queue transactions, the agent starting each job through its
job script (which records the exit code), and the polling of ``wait``.
Prints both times and the ratio (target: <= 1.5); the best of R runs each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from localhome import local_fleet

from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState


def run_xargs(jobs: int, cores: int) -> float:
    lines = "".join(f"{i}\n" for i in range(jobs)).encode()
    start = time.perf_counter()
    subprocess.run(
        ["xargs", "-P", str(cores), "-n", "1", "sh", "-c", "true"], input=lines, check=True
    )
    return time.perf_counter() - start


def run_jobfleet(jobs: int, cores: int, array: bool) -> float:
    with local_fleet(cores) as fleet:
        start = time.perf_counter()
        if array:
            records = [fleet.submit(JobSpec(["true"], array=parse_array(f"1-{jobs}")))]
        else:
            records = fleet.submit_many([JobSpec(["true"]) for _ in range(jobs)])
        done = fleet.wait([r.id for r in records])
        elapsed = time.perf_counter() - start
    bad = [r.id for r in done if r.state is not JobState.COMPLETED]
    if bad:
        sys.exit(f"benchmark invalid: {len(bad)} jobs did not complete")
    if array and len(done[0].elements) != jobs:
        sys.exit(f"benchmark invalid: {len(done[0].elements)} of {jobs} elements")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--array", action="store_true", help="one array of N elements")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    base = min(run_xargs(args.jobs, cores) for _ in range(args.repeat))
    ours = min(run_jobfleet(args.jobs, cores, args.array) for _ in range(args.repeat))
    what = "elements of one array" if args.array else "jobs"
    print(f"{what}={args.jobs} cores={cores} best of {args.repeat}")
    print(f"xargs -P {cores}:      {base:7.3f} s  ({args.jobs / base:7.1f} jobs/s)")
    print(f"jobfleet local:   {ours:7.3f} s  ({args.jobs / ours:7.1f} jobs/s)")
    print(f"ratio: {ours / base:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
