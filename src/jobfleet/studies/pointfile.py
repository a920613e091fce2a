"""The points of one step of a study, staged for its array job to read.

A step's array job has one command for every element: ``python -m
jobfleet.studies.launch STEP_DIR``, which finds its point by its array index. The
points are written once, before the submission, as JSON lines in files of
:data:`CHUNK` points each (``STEP_DIR/points/<n>.jsonl``, point ``i`` on line
``i % CHUNK`` of chunk ``i // CHUNK``), so that an element reads at most one chunk
however large the study, and the number of files grows with the points divided by
a thousand, not with the points. A point carries what it must check before it runs:
the exit-code files of the points of other steps it follows point by point.

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
    "LaunchPoint",
    "Requirement",
    "read_point",
    "write_points",
    "write_text_atomically",
]

#: Points per chunk file.
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Requirement:
    """A point of another step this point follows (``after: {step: each}``), as that
    point was last run: it must have completed.

    Attributes:
        step: that step's name (for the reason a point that cannot run gives).
        point: that point's number in its step.
        exit_file: the exit-code file of the job (or element) that ran it.
    """

    step: str
    point: int
    exit_file: str


@dataclass(frozen=True, slots=True)
class LaunchPoint:
    """One point as its element runs it.

    Attributes:
        index: its position in the staged submission (element ``index + 1`` of the
            array, or 0 for a single job).
        directory: the point's own directory, where its command runs.
        argv: the command, rendered (None when ``shell`` is given).
        shell: a shell line, rendered with every value quoted (run by ``/bin/sh -c``).
        requires: points of other steps that must have completed first.
    """

    index: int
    directory: str
    argv: tuple[str, ...] | None = None
    shell: str | None = None
    requires: tuple[Requirement, ...] = ()

    def to_json(self) -> str:
        doc: dict[str, object] = {"index": self.index, "dir": self.directory}
        if self.shell is not None:
            doc["shell"] = self.shell
        else:
            doc["argv"] = list(self.argv or ())
        if self.requires:
            doc["requires"] = [[r.step, r.point, r.exit_file] for r in self.requires]
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
            tuple(Requirement(str(s), int(p), str(f)) for s, p, f in doc.get("requires", ())),
        )


def write_text_atomically(path: Path, text: str, *, durable: bool = False) -> None:
    """Write ``path`` whole or not at all (a temporary file of this process, then a
    rename); ``durable``: on disk before the rename (fsync), for what must survive a
    crash of the machine."""
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with temp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
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
        write_text_atomically(directory / f"{start // CHUNK}.jsonl", lines)


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
