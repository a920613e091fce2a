"""How long the ``jobfleet`` command takes to start and answer, on a registry of N jobs.

Usage: python bench/cli_startup.py [--jobs 100000] [--runs 15]

A throw-away home gets a registry of N finished local jobs, written through the
registry's own API in batches (each job recorded, confirmed submitted and ended
``completed`` with what it used, as a local job that ran leaves it). Then these are
run, interleaved (one of each in turn, R rounds), each as a fresh process the way a
user runs them, with no configuration file (``$HOME`` and ``$XDG_CONFIG_HOME`` point
into the throw-away directory) and with compiled modules kept (``$PYTHONPYCACHEPREFIX``
in the throw-away directory; a first untimed run of each writes them):

- ``python -c pass``: the baseline, bare interpreter start-up;
- ``jobfleet --help``;
- ``jobfleet status ID --json`` and ``jobfleet status ID`` (the table), for a job in
  the middle of the registry;
- ``jobfleet status --no-refresh`` (the 20 most recent jobs, as recorded).

Prints each one's median wall time and median CPU time (user + system: steadier than
wall time on a busy machine), each with its ratio to the baseline's median (the target
of issue 16: ``status ID --json`` and ``--help`` <= 120 ms and <= 6x).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec
from jobfleet.states import JobState
from jobfleet.usage import Usage

SRC = Path(__file__).resolve().parents[1] / "src"

#: Jobs recorded per registry transaction while seeding.
BATCH = 5000


def seed(home: Path, jobs: int) -> list[str]:
    """``jobs`` finished local jobs in a new registry under ``home``; their ids."""
    ids: list[str] = []
    spec = JobSpec(["true"])
    ended = time.time() - 3600.0
    usage = Usage(
        submitted_at=ended - 2.0,
        started_at=ended - 1.0,
        ended_at=ended,
        hosts=("localhost",),
        max_memory_bytes=4_000_000,
        cpu_time_s=0.01,
        wall_time_s=1.0,
    )
    with Registry(home) as registry:
        for start in range(0, jobs, BATCH):
            count = min(BATCH, jobs - start)
            made = registry.create_jobs(
                [NewJob(f"job-{start + i}", "local", spec) for i in range(count)],
                native_ids=[str(100_000 + start + i) for i in range(count)],
            )
            registry.apply(
                [StatusUpdate(r.id, JobState.COMPLETED, exit_code=0, usage=usage) for r in made]
            )
            ids += [r.id for r in made]
    return ids


def environment(root: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("JOBFLEET_CONFIG", "JOBFLEET_PROFILE"):
        env.pop(name, None)
    env["JOBFLEET_HOME"] = str(home)
    env["HOME"] = str(root)
    env["XDG_CONFIG_HOME"] = str(root / "config")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    # Compiled modules are kept, as an installed package's are (pip compiles them):
    # under a prefix of the throw-away directory, so the source tree gets none.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"benchmark invalid: {' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="jf-bench-cli-"))
    try:
        home = root / "home"
        start = time.perf_counter()
        ids = seed(home, args.jobs)
        seeded = time.perf_counter() - start
        one = ids[len(ids) // 2]
        env = environment(root, home)
        jobfleet = [sys.executable, "-m", "jobfleet"]
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "jobfleet --help": [*jobfleet, "--help"],
            f"jobfleet status {one} --json": [*jobfleet, "status", one, "--json"],
            f"jobfleet status {one}": [*jobfleet, "status", one],
            "jobfleet status --no-refresh": [*jobfleet, "status", "--no-refresh"],
        }
        for argv in cases.values():  # warm the file cache; a failing command stops here
            timed(argv, env, root)
        walls: dict[str, list[float]] = {name: [] for name in cases}
        cpus: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                wall, cpu = timed(argv, env, root)
                walls[name].append(wall)
                cpus[name].append(cpu)
        wall_base = statistics.median(walls["python -c pass"])
        cpu_base = statistics.median(cpus["python -c pass"])
        print(
            f"registry of {len(ids)} finished jobs (seeded in {seeded:.1f} s); "
            f"medians of {args.runs} interleaved runs: wall time, CPU time (user + system)"
        )
        width = max(len(name) for name in cases)
        for name in cases:
            wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
            print(
                f"{name:<{width}}  wall {wall * 1000:7.1f} ms {wall / wall_base:5.1f}x"
                f"   cpu {cpu * 1000:7.1f} ms {cpu / cpu_base:5.1f}x"
            )
        print("target: status ID --json and --help <= 120 ms, <= 6x python -c pass")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
