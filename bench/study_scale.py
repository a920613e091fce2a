"""What a study of 100,000 points costs jobfleet's client: planning, staging, status, resume.

Usage: python bench/study_scale.py [--points 100000] [--repeat 3]

A grid study (``a`` x ``b``, one step, a no-op command) on a throw-away local home.
Measured, best of --repeat, each in a fresh output directory:

- ``dry run``: plan every point, say what would run (writes nothing);
- ``stage + submit``: the same, plus each point's directory and ``params.json``, the
  staged points, the durable study state, and the ONE array job submitted (``wait=False``;
  the array is cancelled straight after, unmeasured, so nothing runs);
- ``status``: ``jobfleet study status DIR`` from Python (every point's outcome);
- ``rerun``: running the study again after the cancel (the cancelled points are staged and
  submitted again, as a resume does).

Baseline in the same run: a plain Python loop making the same number of directories with a
``params.json`` each (json.dumps, write_text): the least any tool that gives every point a
directory of its own pays. Printed: each side, the ratio, and the most entries in one
directory of the output.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from localhome import local_fleet

from jobfleet.engine.fleet import Fleet
from jobfleet.studies import load_study, run_study, study_status
from jobfleet.studies.outcomes import StudyResult

STUDY = """\
name: scale
command: ["true", "{{a}}", "{{b}}"]
parameters:
  a: {a}
  b: {b}
output: {output}
"""


def baseline(points: int, out: Path) -> None:
    """The least a directory per point costs: mkdir and a params.json each."""
    out.mkdir()
    for i in range(points):
        d = out / f"{i + 1:06d}-a={i // 100},b={i % 100}"
        d.mkdir()
        (d / "params.json").write_text(json.dumps({"a": i // 100, "b": i % 100}))


def timed(step: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = step()
    return time.perf_counter() - start, value


def widest(root: Path) -> int:
    """The most entries in one directory under ``root``."""
    most = 0
    stack = [root]
    while stack:
        here = stack.pop()
        entries = list(here.iterdir())
        most = max(most, len(entries))
        stack += [e for e in entries if e.is_dir() and not e.is_symlink()]
    return most


def one_round(fleet: Fleet, work: Path, a: int, b: int, sides: dict[str, list[float]]) -> int:
    """Each side once, in a fresh output directory; the most entries in one directory."""
    points = a * b
    sides["baseline"].append(timed(partial(baseline, points, work / "baseline"))[0])
    shutil.rmtree(work / "baseline")
    out = work / "out"
    path = work / "study.yaml"
    path.write_text(STUDY.format(a=list(range(a)), b=list(range(b)), output=out))
    study = load_study(path)
    plan = partial(run_study, study, fleet=fleet, dry_run=True)
    sides["dry run"].append(timed(plan)[0])
    seconds, first = timed(partial(run_study, study, fleet=fleet, wait=False))
    sides["stage + submit"].append(seconds)
    assert isinstance(first, StudyResult) and len(first.submitted) >= 1
    fleet.cancel(list(first.submitted))
    sides["status"].append(timed(partial(study_status, out, fleet=fleet))[0])
    seconds, again = timed(partial(run_study, study, fleet=fleet, wait=False))
    sides["rerun"].append(seconds)
    assert isinstance(again, StudyResult)
    most = widest(out)
    shutil.rmtree(out, ignore_errors=True)  # cancelled elements may still be ending
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    b = 100
    a = max(1, math.ceil(args.points / b))
    points = a * b
    work = Path(tempfile.mkdtemp(prefix="jf-study-bench-"))
    sides: dict[str, list[float]] = {
        "baseline": [], "dry run": [], "stage + submit": [], "status": [], "rerun": []
    }  # fmt: skip
    try:
        with local_fleet(cores=2) as fleet:
            most = max(one_round(fleet, work, a, b, sides) for _ in range(args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = min(sides["baseline"])
    print(f"study of {points:,} points (best of {args.repeat}):")
    for name, times in sides.items():
        ratio = "" if name == "baseline" else f"  {min(times) / base:5.2f}x baseline"
        print(f"  {name:15s} {min(times):7.2f} s{ratio}")
    print(f"  most entries in one directory of the output: {most:,}")


if __name__ == "__main__":
    main()
