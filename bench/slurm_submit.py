"""SLURM: submission overhead and scheduler calls per poll, on a live cluster.

Usage: python bench/slurm_submit.py [--jobs 200] [--rounds 3] [--tracked 1000]

1. In each round, submits N single jobs through jobfleet (recording, rendering,
   sbatch for each), N through a plain ``sbatch --parsable`` loop over the same
   kind of script, and one array of N elements through jobfleet; the order of
   the two loops alternates from round to round. Prints each round and the
   medians of the ratios to the loop (targets: singles <= 1.1, array <= 0.15).
   One job of each kind is submitted first, untimed (imports, first calls).
2. Tracks M held jobs and counts the squeue/sacct calls of one poll while all
   are queued (expect 1 + 0), then again after they were cancelled and have
   left the queue (expect 1 + 1); --tracked 0 skips this.
Every job it submits is held or trivial, and all are cancelled at the end.
Needs a live cluster (tests/cluster/slurm-up.sh as root).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobfleet.backends.base import PollTarget
from jobfleet.backends.slurm.backend import SlurmBackend
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.runner import ScriptedRunner, SubprocessRunner
from jobfleet.spec import JobSpec, Resources, parse_array

CONFIG = "backend: slurm\n"


def raw_loop(n: int, workdir: Path) -> tuple[float, list[str]]:
    script = workdir / "raw.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    ids = []
    start = time.perf_counter()
    for i in range(n):
        proc = subprocess.run(
            [
                "sbatch",
                "--parsable",
                "--hold",
                f"--job-name=raw-{i}",
                f"--output={workdir}/raw-%j.out",
                str(script),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        ids.append(proc.stdout.strip().split(";")[0])
    return time.perf_counter() - start, ids


HOLD = Resources(extra_args=("--hold",))


def through_jobfleet(fleet: Fleet, n: int) -> tuple[float, list[str]]:
    specs = [JobSpec(["true"], name=f"bench-{i}", resources=HOLD) for i in range(n)]
    start = time.perf_counter()
    records = fleet.submit_many(specs)
    return time.perf_counter() - start, [r.native_id or "" for r in records]


def array_through_jobfleet(fleet: Fleet, n: int) -> tuple[float, list[str]]:
    spec = JobSpec(["true"], name="bench-array", resources=HOLD, array=parse_array(f"1-{n}"))
    start = time.perf_counter()
    record = fleet.submit(spec)
    return time.perf_counter() - start, [record.native_id or ""]


def submission_rounds(fleet: Fleet, n: int, rounds: int, root: Path, ids: list[str]) -> None:
    """Interleaved rounds: the raw loop first in even rounds, jobfleet first in odd ones."""
    ids += raw_loop(1, root)[1] + through_jobfleet(fleet, 1)[1]  # untimed first calls
    singles, arrays = [], []
    for i in range(rounds):
        if i % 2 == 0:
            raw_s, raw_ids = raw_loop(n, root)
            ours_s, our_ids = through_jobfleet(fleet, n)
        else:
            ours_s, our_ids = through_jobfleet(fleet, n)
            raw_s, raw_ids = raw_loop(n, root)
        array_s, array_ids = array_through_jobfleet(fleet, n)
        ids += raw_ids + our_ids + array_ids
        singles.append(ours_s / raw_s)
        arrays.append(array_s / raw_s)
        print(
            f"round {i + 1}: {n} jobs: sbatch loop {raw_s:.3f} s, jobfleet {ours_s:.3f} s "
            f"(ratio {singles[-1]:.3f}); an array of {n}: {array_s:.3f} s "
            f"(ratio {arrays[-1]:.3f})"
        )
    print(
        f"ratio, median of {rounds}: singles {statistics.median(singles):.3f} "
        f"(target <= 1.1), array {statistics.median(arrays):.3f} (target <= 0.15)"
    )


def cancel(ids: list[str]) -> None:
    for i in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[i : i + 500]], check=False, capture_output=True)


def poll_calls(targets: list[PollTarget]) -> tuple[int, int, float]:
    real = SubprocessRunner()
    counting = ScriptedRunner(lambda argv: real.run(argv, timeout_s=120))
    start = time.perf_counter()
    SlurmBackend(counting).poll(targets)
    return counting.count("squeue"), counting.count("sacct"), time.perf_counter() - start


def report(what: str, squeue: int, sacct: int, took: float) -> None:
    print(f"poll of {what}: {squeue} squeue + {sacct} sacct calls ({took:.2f} s)")


def poll_rounds(fleet: Fleet, n: int, root: Path, submitted: list[str]) -> None:
    """Calls of one poll over ``n`` queued jobs, then over the same jobs gone."""
    _, tracked = through_jobfleet(fleet, n)
    submitted += tracked
    now = time.time()
    targets = [PollTarget(str(i), native, str(root), now) for i, native in enumerate(tracked)]
    squeue, sacct, took = poll_calls(targets)
    report(f"{n} queued jobs", squeue, sacct, took)
    cancel(tracked)
    deadline = time.time() + 120
    while time.time() < deadline:
        queued = subprocess.run(
            ["squeue", "--noheader", "--states=all", "--format=%A"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if not set(queued) & set(tracked):
            break
        time.sleep(2)
    squeue, sacct, took = poll_calls(targets)
    report(f"{n} jobs gone from the queue", squeue, sacct, took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tracked", type=int, default=1000)
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        sys.exit("no SLURM here: start the test cluster with tests/cluster/slurm-up.sh (as root)")
    root = Path(tempfile.mkdtemp(prefix="jf-slurm-bench-"))
    (root / "jobfleet.yaml").write_text(CONFIG)
    submitted: list[str] = []
    try:
        with Fleet(load_config(root / "jobfleet.yaml"), home=root / "home") as fleet:
            os.chdir(root)
            submission_rounds(fleet, args.jobs, args.rounds, root, submitted)
            if args.tracked:
                poll_rounds(fleet, args.tracked, root, submitted)
    finally:
        cancel(submitted)
        os.chdir("/")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
