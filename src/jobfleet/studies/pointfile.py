"""The points of one step of a study, staged for its array job to read.

A step's array job has one command for every element: ``python -m
jobfleet.studies.launch STEP_DIR``, which finds its point by its array index. The
points are written once, before the submission, as JSON lines in files of
:data:`CHUNK` points each (``STEP_DIR/points/<n>.jsonl``, point ``i`` on line
``i % CHUNK`` of chunk ``i // CHUNK``), so that an element reads at most one chunk
however large the study, and the number of files grows with the points divided by
a thousand, not with the points. ``STEP_DIR/launch.json`` says what each element must
check before it runs (the points of the steps it follows point by point).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as step:
...     write_points(step, [LaunchPoint(0, "/out/0000-a=1", ("echo", "1"))])
...     read_point(step, 0)
LaunchPoint(index=0, directory='/out/0000-a=1', argv=('echo', '1'), shell=None)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHUNK",
    "LAUNCH_FILE",
    "EachPredecessor",
    "LaunchPlan",
    "LaunchPoint",
    "read_plan",
    "read_point",
    "write_plan",
    "write_points",
]

#: Points per chunk file.
CHUNK = 1000
#: What every element of the step checks before it runs.
LAUNCH_FILE = "launch.json"
_FORMAT = "jobfleet-study-step/1"


@dataclass(frozen=True, slots=True)
class LaunchPoint:
    """One point as its element runs it.

    Attributes:
        index: its index in the step (the array index of its element).
        directory: the point's own directory, where its command runs.
        argv: the command, rendered (None when ``shell`` is given).
        shell: a shell line, rendered with every value quoted (run by ``/bin/sh -c``).
    """

    index: int
    directory: str
    argv: tuple[str, ...] | None = None
    shell: str | None = None

    def to_json(self) -> str:
        doc: dict[str, object] = {"index": self.index, "dir": self.directory}
        if self.shell is not None:
            doc["shell"] = self.shell
        else:
            doc["argv"] = list(self.argv or ())
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> LaunchPoint:
        doc = json.loads(line)
        argv = doc.get("argv")
        return cls(
            int(doc["index"]),
            str(doc["dir"]),
            tuple(str(a) for a in argv) if argv is not None else None,
            str(doc["shell"]) if "shell" in doc else None,
        )


@dataclass(frozen=True, slots=True)
class EachPredecessor:
    """A step this one follows point by point, as it was submitted this time.

    Attributes:
        step: its name (for the reason a point that cannot run gives).
        job_dir: the job directory of its job in this run, where its elements'
            exit-code files are.
        indices: the points its job runs this time; the others completed in an
            earlier run. None: its job is a single job (a step of one point).
    """

    step: str
    job_dir: str
    indices: frozenset[int] | None


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """What every element of a step checks before it runs its point."""

    after_each: tuple[EachPredecessor, ...] = ()


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)


def write_points(step_dir: str | os.PathLike[str], points: Sequence[LaunchPoint]) -> None:
    """Stage ``points`` (indices 0, 1, ... in order) for the step's elements to read."""
    directory = Path(step_dir, "points")
    directory.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(points), CHUNK):
        chunk = points[start : start + CHUNK]
        for offset, point in enumerate(chunk):
            if point.index != start + offset:
                raise ValueError(f"point {point.index} staged at index {start + offset}")
        lines = "".join(p.to_json() + "\n" for p in chunk)
        _write_atomically(directory / f"{start // CHUNK}.jsonl", lines)


def read_point(step_dir: str | os.PathLike[str], index: int) -> LaunchPoint:
    """The point ``index`` of a staged step.

    Raises:
        OSError: its chunk file cannot be read.
        LookupError: the step has no such point.
    """
    if index < 0:
        raise LookupError(f"no point {index}: indices start at 0")
    path = Path(step_dir, "points", f"{index // CHUNK}.jsonl")
    wanted = index % CHUNK
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            if number == wanted:
                return LaunchPoint.from_json(line)
    raise LookupError(f"no point {index} in {path}")


def write_plan(step_dir: str | os.PathLike[str], plan: LaunchPlan) -> None:
    """Write what the step's elements check before they run."""
    doc = {
        "format": _FORMAT,
        "after_each": [
            {
                "step": p.step,
                "job_dir": p.job_dir,
                "indices": sorted(p.indices) if p.indices is not None else None,
            }
            for p in plan.after_each
        ],
    }
    Path(step_dir).mkdir(parents=True, exist_ok=True)
    _write_atomically(Path(step_dir, LAUNCH_FILE), json.dumps(doc))


def read_plan(step_dir: str | os.PathLike[str]) -> LaunchPlan:
    """What the step's elements check; an empty plan when none was written.

    Raises:
        ValueError: the file is not one this version wrote.
    """
    try:
        doc = json.loads(Path(step_dir, LAUNCH_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LaunchPlan()
    if doc.get("format") != _FORMAT:
        raise ValueError(f"{LAUNCH_FILE}: format {doc.get('format')!r}, expected {_FORMAT!r}")
    return LaunchPlan(
        tuple(
            EachPredecessor(
                str(p["step"]),
                str(p["job_dir"]),
                frozenset(int(i) for i in p["indices"]) if p["indices"] is not None else None,
            )
            for p in doc["after_each"]
        )
    )
