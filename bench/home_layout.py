"""How wide a jobfleet home's directories grow with the number of jobs, and what recording
a job costs with job directories in shards of a thousand ids (``jobs/<id // 1000>xxx/<id>``)
against all of them directly in ``jobs/`` (the layout before issue 16).

Usage: python bench/home_layout.py [--jobs 20000] [--batch 1000] [--rounds 10]

1. ``--jobs`` real submissions of single no-op jobs on a throw-away local home
   (``Fleet.submit_many``, ``--batch`` at a time), held behind one ``sleep`` job they
   depend on, so that none runs: the figure is the home's layout, not the machine's
   throughput. Printed: the most entries in one directory of the home, and which.
2. The cost of recording: ``Registry.create_jobs`` of ``--batch`` jobs at a time on two
   homes, one with the sharded layout and one with the flat one (the old
   ``new_job_dir``, patched in), ``--rounds`` each, interleaved (the order alternating);
   median time per job of each, their ratio, and the widest directory of each home.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from localhome import local_fleet

from jobfleet.registry import NewJob, Registry
from jobfleet.registry import jobs as registry_jobs
from jobfleet.spec import Dependency, DepKind, JobSpec
from jobfleet.states import JobState

#: The ceiling the issue sets for a shard (1,000 jobs) and one more entry.
CEILING = 1_001


def widest(root: Path) -> tuple[int, Path]:
    """The most entries in one directory under ``root``, and that directory."""
    most, where = 0, root
    for here, dirs, files in os.walk(root):
        if len(dirs) + len(files) > most:
            most, where = len(dirs) + len(files), Path(here)
    return most, where


def flat_new_job_dir(home: Path, row_id: int, name: str | None = None) -> Path:
    """The layout before issue 16: every job directly in ``jobs/`` (taken names aside)."""
    jobs = home / "jobs"
    jobs.mkdir(mode=0o700, parents=True, exist_ok=True)
    job_dir = jobs / (name or str(row_id))
    job_dir.mkdir(mode=0o700)
    return job_dir


@contextmanager
def layout(new_job_dir: Callable[..., Path]) -> Iterator[None]:
    real = registry_jobs.new_job_dir
    registry_jobs.new_job_dir = new_job_dir  # type: ignore[assignment]
    try:
        yield
    finally:
        registry_jobs.new_job_dir = real  # type: ignore[assignment]


def submissions(jobs: int, batch: int) -> None:
    with local_fleet(1) as fleet:
        gate = fleet.submit(JobSpec(["sleep", "3600"], name="gate"))
        held = (Dependency(DepKind.AFTER_OK, (gate.id,)),)
        start = time.perf_counter()
        for first in range(0, jobs, batch):
            specs = [
                JobSpec(["true"], name=f"j{i}", dependencies=held)
                for i in range(first, min(first + batch, jobs))
            ]
            fleet.submit_many(specs)
        elapsed = time.perf_counter() - start
        home = fleet.registry.home
        most, where = widest(home)
        shards = sum(1 for _ in (home / "jobs").iterdir())
        made = sum(1 for _ in (home / "jobs").glob("*/*"))
        pending = sum(1 for r in fleet.recent(jobs + 1) if r.state is JobState.PENDING)
        fleet.cancel([gate.id])
    print(f"{jobs:,} submissions (local, held): {elapsed:.1f} s")
    print(f"  most entries in one directory of the home: {most:,} ({where.relative_to(home)})")
    print(f"  entries in jobs/: {shards:,}; job directories: {made:,}; pending: {pending:,}")
    verdict = "ok" if most <= CEILING else "OVER"
    print(f"  ceiling {CEILING:,}: {verdict}")


def recording(batch: int, rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="jf-bench-layout-"))
    try:
        homes = {"sharded": root / "sharded", "flat": root / "flat"}
        makers = {"sharded": registry_jobs.new_job_dir, "flat": flat_new_job_dir}
        per_job: dict[str, list[float]] = {name: [] for name in homes}
        spec = JobSpec(["true"])
        registries = {name: Registry(home) for name, home in homes.items()}
        for name, registry in registries.items():  # made and opened outside the timings
            with layout(makers[name]):
                registry.create_jobs([NewJob("first", "local", spec)])
        for n in range(rounds):
            order = list(homes) if n % 2 == 0 else list(reversed(homes))
            for name in order:
                jobs = [NewJob("j", "local", spec) for _ in range(batch)]
                with layout(makers[name]):
                    start = time.perf_counter()
                    registries[name].create_jobs(jobs)
                    per_job[name].append((time.perf_counter() - start) / batch)
        for registry in registries.values():
            registry.close()
        med = {name: statistics.median(times) for name, times in per_job.items()}
        print(f"recording {batch:,} jobs at a time, {rounds} rounds each, interleaved:")
        for name in homes:
            most, where = widest(homes[name])
            print(
                f"  {name:8s} {med[name] * 1e6:7.0f} us per job (median);"
                f" widest directory {most:,} ({where.relative_to(homes[name])})"
            )
        print(f"  ratio sharded / flat: {med['sharded'] / med['flat']:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    submissions(args.jobs, args.batch)
    recording(args.batch, args.rounds)


if __name__ == "__main__":
    main()
