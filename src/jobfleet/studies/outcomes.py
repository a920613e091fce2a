"""How each point of a study ended: read from its state and the registry, by any process.

The points of each step as the study file last defined them are kept beside the
state (``<output>/.jobfleet/steps/<step>.jsonl``: index, key, parameters, directory,
and ``sharded`` for a step whose points' directories are in shards), so that
``jobfleet study status DIR`` needs nothing but the directory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jobfleet.jobdir import located, output_path
from jobfleet.states import JobRecord, JobState
from jobfleet.studies.pointfile import write_text_atomically
from jobfleet.studies.state import STATE_DIR, Ran, StudyState

__all__ = [
    "NOT_RUN",
    "PointResult",
    "StepPoint",
    "StudyResult",
    "first_step_point",
    "read_step_points",
    "results",
    "step_names",
    "write_step_points",
]

#: The state shown for a point that has not been run (or whose run was never recorded).
NOT_RUN = "not run"


@dataclass(frozen=True, slots=True)
class StepPoint:
    """A point of a step as the study file defines it: what status shows of it;
    ``sharded``: its directory is in a shard of its step's (``<index // 1000>xxx/``)."""

    index: int
    key: str
    params: Mapping[str, object]
    directory: str
    sharded: bool = False


def _steps_dir(output_dir: Path) -> Path:
    return output_dir / STATE_DIR / "steps"


def write_step_points(output_dir: Path, step: str, points: Sequence[StepPoint]) -> None:
    """Keep the points of ``step`` as the study file now defines them."""
    directory = _steps_dir(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    lines = (
        json.dumps(
            {
                "index": p.index,
                "key": p.key,
                "params": dict(p.params),
                "dir": p.directory,
                **({"sharded": True} if p.sharded else {}),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for p in points
    )
    write_text_atomically(directory / f"{step}.jsonl", "".join(lines))


def read_step_points(output_dir: Path, step: str) -> list[StepPoint]:
    """The points of ``step`` as last written; empty when none were."""
    path = _steps_dir(output_dir) / f"{step}.jsonl"
    try:
        with path.open(encoding="utf-8") as fh:
            return [_step_point(json.loads(line)) for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def first_step_point(output_dir: Path, step: str) -> StepPoint | None:
    """The first point of ``step`` as last written (its first line only); None when
    none was."""
    path = _steps_dir(output_dir) / f"{step}.jsonl"
    try:
        with path.open(encoding="utf-8") as fh:
            line = fh.readline()
    except FileNotFoundError:
        return None
    return _step_point(json.loads(line)) if line.strip() else None


def _step_point(doc: dict[str, Any]) -> StepPoint:
    return StepPoint(
        int(doc["index"]),
        str(doc["key"]),
        dict(doc["params"]),
        str(doc["dir"]),
        bool(doc.get("sharded", False)),
    )


def step_names(output_dir: Path) -> list[str]:
    """The steps whose points were written, in no particular order."""
    directory = _steps_dir(output_dir)
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.jsonl"))


@dataclass(frozen=True, slots=True)
class PointResult:
    """How one point of a step ended, as far as is known.

    Attributes:
        step, index, params, directory: the point.
        state: its last run's state (None: not run).
        exit_code, reason: its last run's.
        job_id, element: the job (and array element) that last ran it.
        log: that run's standard output file.
    """

    step: str
    index: int
    params: Mapping[str, object]
    directory: str
    state: JobState | None = None
    exit_code: int | None = None
    reason: str | None = None
    job_id: str | None = None
    element: int | None = None
    log: str | None = None

    @property
    def state_text(self) -> str:
        return NOT_RUN if self.state is None else self.state.value

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "index": self.index,
            "params": dict(self.params),
            "dir": self.directory,
            "state": self.state_text,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "job_id": self.job_id,
            "element": self.element,
            "log": self.log,
        }


@dataclass(frozen=True, slots=True)
class StudyResult:
    """Every point of a study and how it ended.

    Attributes:
        name: the study's name.
        output_dir: its output directory.
        points: every point of every step, step by step.
        submitted: the ids of the jobs this run submitted (empty for a status).
    """

    name: str
    output_dir: Path
    points: tuple[PointResult, ...]
    submitted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every point completed."""
        return all(p.state is JobState.COMPLETED for p in self.points)

    def counts(self, step: str | None = None) -> dict[str, int]:
        """How many points (of ``step``) are in each state."""
        return dict(Counter(p.state_text for p in self._of(step)))

    def not_completed(self) -> list[PointResult]:
        return [p for p in self.points if p.state is not JobState.COMPLETED]

    def _of(self, step: str | None) -> Iterator[PointResult]:
        return (p for p in self.points if step is None or p.step == step)

    def to_dict(self) -> dict[str, object]:
        steps = list(dict.fromkeys(p.step for p in self.points))
        return {
            "name": self.name,
            "output": str(self.output_dir),
            "ok": self.ok,
            "counts": self.counts(),
            "steps": [
                {"name": s, "points": sum(1 for _ in self._of(s)), "counts": self.counts(s)}
                for s in steps
            ],
            "not_completed": [p.to_dict() for p in self.not_completed()],
            "submitted": list(self.submitted),
        }


def results(
    state: StudyState,
    steps: Sequence[str],
    records: Mapping[str, JobRecord],
    submitted: Sequence[str] = (),
    notes: Mapping[tuple[str, int], str] | None = None,
) -> StudyResult:
    """Every point of ``steps`` (as written by :func:`write_step_points`) with the
    outcome of the run that last ran it (``records``: the study's jobs, fresh);
    ``notes``: why a point was not run this time, by (step, index)."""
    found: list[PointResult] = []
    notes = notes or {}
    logs = _PipeLogs()
    for step in steps:
        where = state.last_runs(step)
        for point in read_step_points(state.output_dir, step):
            result = _result(step, point, where.get(point.key), records, logs)
            note = notes.get((step, point.index))
            if note is not None and result.state is None:
                result = replace(result, reason=f"not run: {note}")
            found.append(result)
    return StudyResult(state.name, state.output_dir, tuple(found), tuple(submitted))


class _PipeLogs:
    """Where the output of each task of a pipe run went (each run read once)."""

    def __init__(self) -> None:
        self._runs: dict[str, list[str | None]] = {}

    def of(self, run_dir: str, index: int) -> str | None:
        paths = self._runs.get(run_dir)
        if paths is None:
            from jobfleet.pipe.api import Pipe

            try:
                pipe = Pipe(run_dir)
                paths = [
                    str(pipe.dir.output_path(t.worker)) if t.worker else None
                    for t in pipe.results()
                ]
            except Exception:
                paths = []
            self._runs[run_dir] = paths
        return paths[index - 1] if 0 < index <= len(paths) else None


def _result(
    step: str,
    point: StepPoint,
    ran: Ran | None,
    records: Mapping[str, JobRecord],
    logs: _PipeLogs,
) -> PointResult:
    base = PointResult(step, point.index, point.params, point.directory)
    record = records.get(ran.job_id) if ran is not None else None
    if ran is None or record is None:
        return base
    state, code, reason = outcome_of(record, ran.index)
    if ran.pipe is not None and ran.index is not None:
        log = logs.of(ran.pipe, ran.index)  # its worker's output file
    else:
        log = located(output_path(record.job_dir, "stdout", ran.index))
    return PointResult(
        step,
        point.index,
        point.params,
        point.directory,
        state,
        code,
        reason,
        ran.job_id,
        ran.index,
        log,
    )


def outcome_of(record: JobRecord, index: int | None) -> tuple[JobState, int | None, str | None]:
    """(state, exit code, reason) of a job, or of its element ``index``."""
    if index is None:
        return record.state, record.exit_code, record.reason
    element = record.elements.get(index)
    if element is None:
        return JobState.UNKNOWN, None, f"job {record.id} has no element {index}"
    return element.state, element.exit_code, element.reason
