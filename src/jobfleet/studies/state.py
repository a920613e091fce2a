"""What a study has submitted: ``<output>/.jobfleet/study.json``, rebuilt by any process.

Every submission of a step is written here BEFORE it is made (its job names, and the
points each job runs), then again with the jobfleet ids the registry gave it. A
program killed in between leaves a submission without ids: the next run finds its
jobs in the registry by their names (the registry records a job before it reaches the
scheduler, and recovers one whose submitter died), so nothing is submitted twice.

A point is known by its key (:func:`~jobfleet.studies.points.point_key`: its
parameters and its command); its outcome is that of the job, or array element, of the
last submission that ran it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobfleet.studies.pointfile import write_text_atomically

__all__ = ["STATE_DIR", "Ran", "StudyState", "Submission", "state_path"]

#: The study's own files, inside its output directory.
STATE_DIR = ".jobfleet"
_FILE = "study.json"
_FORMAT = "jobfleet-study/1"


def state_path(output_dir: str | os.PathLike[str]) -> Path:
    """Where the state of the study whose outputs go to ``output_dir`` is kept."""
    return Path(output_dir, STATE_DIR, _FILE)


@dataclass(slots=True)
class Submission:
    """One submission of a step: one job per chunk (an array, or a single job).

    Attributes:
        step: the step's name.
        run: the how-manieth run of the study made it (1, 2, ...).
        name: the base of its jobs' names (job ``k`` is ``<name>.<k>``).
        chunks: the point keys each job runs, in element order (element ``i + 1``
            runs ``chunk[i]``); ``array[k]`` False: job ``k`` is a single job.
        array: whether each job is an array.
        job_ids: the jobfleet id of each job; None until the submission was made (a
            job the registry never recorded is None in it).
        pipe: for a step run as pipe tasks (``workers:``), the run directory: its one
            chunk's point ``i`` is task ``i``, served by the workers of job ``job_ids[0]``.
    """

    step: str
    run: int
    name: str
    chunks: list[list[str]]
    array: list[bool]
    job_ids: list[str | None] | None = None
    pipe: str | None = None

    def job_name(self, k: int) -> str:
        return f"{self.name}.{k + 1}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "run": self.run,
            "name": self.name,
            "chunks": self.chunks,
            "array": self.array,
            "job_ids": self.job_ids,
            **({"pipe": self.pipe} if self.pipe is not None else {}),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Submission:
        ids = doc.get("job_ids")
        return cls(
            str(doc["step"]),
            int(doc["run"]),
            str(doc["name"]),
            [[str(k) for k in chunk] for chunk in doc["chunks"]],
            [bool(a) for a in doc["array"]],
            [None if i is None else str(i) for i in ids] if ids is not None else None,
            str(doc["pipe"]) if doc.get("pipe") is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Ran:
    """Where a point last ran: job ``job_id``, element ``index`` (None: a single job);
    or, with ``pipe``, task ``index - 1`` of that pipe run, served by job ``job_id``."""

    job_id: str
    index: int | None
    pipe: str | None = None


@dataclass(slots=True)
class StudyState:
    """The submissions of one study, oldest first.

    Attributes:
        output_dir: the study's output directory.
        name: the study's name.
        file: the study file it was last run from.
        submissions: every submission made (or about to be).
    """

    output_dir: Path
    name: str
    file: str
    submissions: list[Submission] = field(default_factory=list)

    @classmethod
    def load(cls, output_dir: str | os.PathLike[str]) -> StudyState | None:
        """The state of the study in ``output_dir``; None when it never ran there.

        Raises:
            ValueError: the file is not a study state this version can read.
        """
        path = state_path(output_dir)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot be read: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a study state of this version (format {_FORMAT})")
        return cls(
            Path(output_dir),
            str(doc["name"]),
            str(doc.get("file", "")),
            [Submission.from_dict(s) for s in doc["submissions"]],
        )

    def save(self) -> None:
        """Write it atomically (a reader sees the old state or the new, never half)."""
        path = state_path(self.output_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": _FORMAT,
            "name": self.name,
            "file": self.file,
            "submissions": [s.to_dict() for s in self.submissions],
        }
        write_text_atomically(path, json.dumps(doc, separators=(",", ":")), durable=True)

    #: The number of this run of the study (set by the runner: one more than the last).
    current_run: int = 0

    @property
    def runs(self) -> int:
        """How many runs made submissions."""
        return max((s.run for s in self.submissions), default=0)

    def pending_ids(self) -> list[Submission]:
        """Submissions written before they were made, whose ids are not known yet."""
        return [s for s in self.submissions if s.job_ids is None]

    def last_runs(self, step: str) -> dict[str, Ran]:
        """Where each point of ``step`` (by key) last ran."""
        where: dict[str, Ran] = {}
        for submission in self._made(step):
            for ran, key in _placed(submission):
                where[key] = ran
        return where

    def _made(self, step: str) -> Iterator[Submission]:
        return (s for s in self.submissions if s.step == step and s.job_ids is not None)

    def pipes(self) -> dict[str, str]:
        """{worker job id: pipe run directory} of the steps run as pipe tasks."""
        return {
            s.job_ids[0]: s.pipe
            for s in self.submissions
            if s.pipe is not None and s.job_ids and s.job_ids[0] is not None
        }

    def job_ids(self, steps: Sequence[str] | None = None) -> list[str]:
        """The ids of every job of the study (of ``steps``), oldest first."""
        wanted = set(steps) if steps is not None else None
        return [
            job_id
            for s in self.submissions
            if s.job_ids is not None and (wanted is None or s.step in wanted)
            for job_id in s.job_ids
            if job_id is not None
        ]


def _placed(submission: Submission) -> Iterator[tuple[Ran, str]]:
    for k, (chunk, job_id) in enumerate(
        zip(submission.chunks, submission.job_ids or (), strict=True)
    ):
        if job_id is None:
            continue
        if not submission.array[k]:
            yield Ran(job_id, None), chunk[0]
            continue
        for i, key in enumerate(chunk):
            yield Ran(job_id, i + 1, submission.pipe), key
