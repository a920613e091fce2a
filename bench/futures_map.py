"""``Executor.map`` of N trivial calls on the local backend vs ``xargs -P <cores>``
running N ``python3 -c`` processes that make the same call, in one run.

Usage: python bench/futures_map.py [--calls N] [--repeat R]

The jobfleet side is measured from ``map`` until every result is in hand: pickling the
calls, submitting ONE array job, the agent running each element's
``python -m jobfleet.futures.run`` through its job script, the outcome files, and
the executor's polling. With ``chunksize=50`` each element runs 50 calls. Prints the
times and the ratios (targets: <= 1.5 at chunksize 1; below 1 at chunksize 50); the
best of R runs each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from localhome import local_fleet

from jobfleet.futures.executor import Executor


def run_xargs(calls: int, cores: int) -> float:
    lines = "".join(f"{i}\n" for i in range(calls)).encode()
    start = time.perf_counter()
    subprocess.run(
        [
            "xargs",
            "-P",
            str(cores),
            "-n",
            "1",
            sys.executable,
            "-c",
            "import sys; print(pow(int(sys.argv[1]), 2))",
        ],
        input=lines,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def run_jobfleet(calls: int, cores: int, chunksize: int) -> float:
    with local_fleet(cores) as fleet, Executor(fleet=fleet) as ex:
        start = time.perf_counter()
        results = list(ex.map(pow, range(calls), [2] * calls, chunksize=chunksize))
        elapsed = time.perf_counter() - start
    if results != [i * i for i in range(calls)]:
        sys.exit("benchmark invalid: wrong results")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    base = min(run_xargs(args.calls, cores) for _ in range(args.repeat))
    one = min(run_jobfleet(args.calls, cores, 1) for _ in range(args.repeat))
    fifty = min(run_jobfleet(args.calls, cores, 50) for _ in range(args.repeat))
    print(f"calls={args.calls} cores={cores} best of {args.repeat}")
    print(f"xargs -P {cores} python3 -c:   {base:7.3f} s")
    print(f"Executor.map chunksize=1:  {one:7.3f} s  ratio {one / base:.2f} (target <= 1.5)")
    print(f"Executor.map chunksize=50: {fifty:7.3f} s  ratio {fifty / base:.2f} (target < 1)")


if __name__ == "__main__":
    main()
