"""SLURM: submission overhead and scheduler calls per poll, on a live cluster.

Usage: python bench/slurm_submit.py [--jobs 200] [--tracked 1000]

1. Submits N single jobs through jobfleet (recording, rendering, sbatch for
   each) and N through a plain ``sbatch --parsable`` loop over the same kind of
   script, in one run, and prints both times and the ratio (target <= 1.1).
2. Tracks M held jobs and counts the squeue/sacct calls of one poll while all
   are queued (expect 1 + 0), then again after they were cancelled and have
   left the queue (expect 1 + 1).
Every job it submits is held or trivial, and all are cancelled at the end.
Needs a live cluster (tests/cluster/slurm-up.sh as root).
"""

from __future__ import annotations

import argparse
import os
import shutil
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
from jobfleet.spec import JobSpec, Resources

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


def through_jobfleet(fleet: Fleet, n: int) -> tuple[float, list[str]]:
    specs = [
        JobSpec(["true"], name=f"bench-{i}", resources=Resources(extra_args=("--hold",)))
        for i in range(n)
    ]
    start = time.perf_counter()
    records = fleet.submit_many(specs)
    return time.perf_counter() - start, [r.native_id or "" for r in records]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
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
            raw_s, raw_ids = raw_loop(args.jobs, root)
            submitted += raw_ids
            ours_s, our_ids = through_jobfleet(fleet, args.jobs)
            submitted += our_ids
            print(f"submit {args.jobs} jobs: sbatch loop {raw_s:.2f} s, jobfleet {ours_s:.2f} s")
            print(f"ratio: {ours_s / raw_s:.3f} (target <= 1.1)")

            _, tracked = through_jobfleet(fleet, args.tracked)
            submitted += tracked
            now = time.time()
            targets = [
                PollTarget(str(i), native, str(root), now) for i, native in enumerate(tracked)
            ]
            squeue, sacct, took = poll_calls(targets)
            report(f"{args.tracked} queued jobs", squeue, sacct, took)
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
            report(f"{args.tracked} jobs gone from the queue", squeue, sacct, took)
    finally:
        cancel(submitted)
        os.chdir("/")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
