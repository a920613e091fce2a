"""What the everyday commands cost on a big registry: 100,000 jobs, 1,000,000 array elements.

Usage: python bench/registry_scale.py [--jobs 100000] [--arrays 100] [--elements 10000]
                                      [--runs 5]

Builds two throw-away homes through the registry's own API (the jobs recorded, submitted
and ended, as a monitor would have left them; local backend, no agent running): one of
``--jobs`` single jobs, one of ``--arrays`` arrays of ``--elements`` elements each. Then
runs each command as a user would (a new process each time) and prints the median wall
time of ``--runs`` interleaved runs (after an untimed one that leaves compiled modules,
kept in the throw-away directory) and the largest peak RSS, beside bare
``python -c pass`` run the same way (the baseline, and the ratio to it).

Targets (issue 16): each under 0.5 s and 200 MB, and flat in the registry's size (compare
a run with ``--jobs 10000`` against one with ``--jobs 100000``).
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
from collections.abc import Sequence
from pathlib import Path

from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState

CONFIG = "backend: local\n"
BATCH = 5_000


def seed(home: Path, jobs: int, arrays: int, elements: int) -> list[str]:
    """Record ``jobs`` single jobs and ``arrays`` arrays of ``elements`` elements, each
    submitted and completed; returns their ids, oldest first."""
    registry = Registry(home)
    ids: list[str] = []
    try:
        specs = [JobSpec(["true"], name=f"single-{i}") for i in range(jobs)]
        specs += [
            JobSpec(["true"], name=f"array-{i}", array=parse_array(f"0-{elements - 1}"))
            for i in range(arrays)
        ]
        for start in range(0, len(specs), BATCH):
            chunk = specs[start : start + BATCH]
            made = registry.create_jobs([NewJob(s.name or "job", "local", s) for s in chunk])
            registry.mark_submitted_many([(r.id, f"n{r.id}") for r in made])
            registry.apply(
                [StatusUpdate(r.id, state=JobState.COMPLETED, exit_code=0) for r in made]
            )
            ids += [r.id for r in made]
        if arrays:  # what `logs ID --index 7` reads: the last array's element 7
            Path(made[-1].job_dir, "stdout.7").write_text("element 7\n")
    finally:
        registry.close()
    return ids


def run(argv: Sequence[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one run of ``argv``; it must exit 0."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark invalid: {' '.join(argv)} failed: {stderr.strip()}")
    return wall, usage.ru_maxrss * 1024  # Linux: KiB


def measure(
    commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, tuple[float, int]]:
    """Median wall time and peak RSS of each command, the runs interleaved."""
    for argv in commands.values():  # untimed: writes the compiled modules
        run(argv, env)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks = dict.fromkeys(commands, 0)
    for _ in range(runs):
        for name, argv in commands.items():
            wall, peak = run(argv, env)
            walls[name].append(wall)
            peaks[name] = max(peaks[name], peak)
    return {name: (statistics.median(walls[name]), peaks[name]) for name in commands}


def report(title: str, figures: dict[str, tuple[float, int]]) -> None:
    base_s, _ = figures["python -c pass"]
    print(f"\n{title}")
    print(f"{'command':<40} {'median wall':>12} {'x bare python':>14} {'peak RSS':>10}")
    for name, (wall, peak) in figures.items():
        print(f"{name:<40} {wall * 1000:9.0f} ms {wall / base_s:13.1f}x {peak / 2**20:7.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--arrays", type=int, default=100)
    parser.add_argument("--elements", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", nargs=4, metavar=("HOME", "JOBS", "ARRAYS", "ELEMENTS"))
    args = parser.parse_args()
    if args.seed:
        home, jobs, arrays, elements = args.seed
        print(" ".join(seed(Path(home), int(jobs), int(arrays), int(elements))))
        return
    root = Path(tempfile.mkdtemp(prefix="jf-bench-registry-"))
    try:
        (root / "jobfleet.yaml").write_text(CONFIG)
        jf = [sys.executable, "-m", "jobfleet"]
        for label, jobs, arrays in (
            (f"{args.jobs:,} single jobs", args.jobs, 0),
            (f"{args.arrays:,} arrays of {args.elements:,} elements", 0, args.arrays),
        ):
            home = root / f"home-{jobs}-{arrays}"
            started = time.perf_counter()
            # Seeded by a child process: this one stays small, for its children's peak
            # RSS (wait4's) counts the memory of the process they were forked from.
            seeded = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--seed",
                    *map(str, (home, jobs, arrays, args.elements)),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            ids = seeded.stdout.split()
            print(f"seeded {label} in {time.perf_counter() - started:.1f} s")
            env = {
                **os.environ,
                "JOBFLEET_HOME": str(home),
                "JOBFLEET_CONFIG": str(root / "jobfleet.yaml"),
                # Compiled modules kept, as on a user's machine (this one may forbid them).
                "PYTHONPYCACHEPREFIX": str(root / "pycache"),
            }
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            last, middle = ids[-1], ids[len(ids) // 2]
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "status": [*jf, "status"],
                "status ID --json": [*jf, "status", middle, "--json"],
                "status ID": [*jf, "status", middle],
                "wait --all": [*jf, "wait", "--all"],
                "top --iterations 1": [*jf, "top", "--iterations", "1"],
                "queue": [*jf, "queue"],
            }
            if arrays:
                commands["logs ID --index N"] = [*jf, "logs", last, "--index", "7"]
            report(label, measure(commands, env, args.runs))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\ntargets (issue 16): each under 0.5 s and 200 MB, flat in the number of jobs")


if __name__ == "__main__":
    main()
