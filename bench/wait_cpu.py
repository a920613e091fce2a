"""What waiting on a big local array costs the waiting client, with and without the
CPU share that paces its polls (``jobfleet.engine.monitor.POLL_CPU_SHARE``).

Usage: python bench/wait_cpu.py [--elements 20000] [--repeat 2] [--share S]

One array of N no-op elements (``true``) on a throw-away home with as many cores as this
machine has (bench/localhome.py, polls at most 1 s apart as by default), submitted and
waited for, alternately with the share at 1.0 (polls as often as the interval allows:
how it was before) and at its default. Printed for each: the time until ``wait``
returned, and the CPU the waiting client used (its own, not the agent's or the jobs').
Both sides run the same array in the same script; the ratio is of the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import localhome
from localhome import local_fleet

from jobfleet.engine import monitor
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState


def run(elements: int, share: float) -> tuple[float, float]:
    """(seconds until done, client CPU seconds) of one array, polls paced by ``share``."""
    monitor.POLL_CPU_SHARE = share
    with local_fleet(len(os.sched_getaffinity(0))) as fleet:
        cpu0, start = time.process_time(), time.perf_counter()
        job = fleet.submit(JobSpec(["true"], array=parse_array(f"1-{elements}")))
        (done,) = fleet.wait([job.id])
        took, cpu = time.perf_counter() - start, time.process_time() - cpu0
    if done.state is not JobState.COMPLETED or len(done.elements) != elements:
        raise SystemExit(f"benchmark invalid: the array ended {done.state.value}")
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--share", type=float, default=monitor.POLL_CPU_SHARE)
    args = parser.parse_args()
    localhome.CONFIG = localhome.CONFIG.replace("poll_interval: 0.05s", "poll_interval: 1s")
    default = args.share
    sides: dict[float, list[tuple[float, float]]] = {1.0: [], default: []}
    for _ in range(args.repeat):
        for share in sides:
            sides[share].append(run(args.elements, share))
    print(f"elements={args.elements} cores={len(os.sched_getaffinity(0))} runs={args.repeat}")
    medians = {}
    for share, runs in sides.items():
        took = statistics.median(t for t, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        medians[share] = (took, cpu)
        label = "unpaced (share 1.0)" if share == 1.0 else f"paced (share {share})"
        print(f"{label:22s} done in {took:7.2f} s, client CPU {cpu:6.2f} s ({cpu / took:.0%})")
    (t1, c1), (t2, c2) = medians[1.0], medians[default]
    print(f"ratio paced/unpaced: time {t2 / t1:.2f}, client CPU {c2 / c1:.2f}")


if __name__ == "__main__":
    main()
