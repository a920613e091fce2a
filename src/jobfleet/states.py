"""One neutral job state for every backend, and how array elements add up.

Each scheduler's native codes are mapped to :class:`JobState` by its backend,
in one dict literal citing the scheduler's documentation. The string values
are a public contract: they appear in every ``--json`` output.

Why TIMEOUT and OUT_OF_MEMORY are not FAILED: the fix differs (ask for more
time or memory, not debug the program), and workflow tools retry them
differently. Why LOST is not FAILED: the job may well have succeeded; we only
know that the scheduler answered normally, the job was in neither queue nor
accounting, and it left no exit-code file. UNKNOWN is "cannot tell right now"
(e.g. the scheduler did not answer): it is not terminal and never a failure.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jobfleet.units import format_walltime
from jobfleet.usage import NO_USAGE, Usage, iso_utc

__all__ = [
    "ACTIVE",
    "CANCELLED_BY",
    "DEFAULT_RETRY_ON",
    "MEMORY_EXCEEDED",
    "RETRYABLE",
    "TERMINAL",
    "WALLTIME_EXCEEDED",
    "ElementRecord",
    "JobRecord",
    "JobState",
    "aggregate",
    "cancelled_by",
    "element_json",
    "never_met",
    "walltime_exceeded",
]


class JobState(str, enum.Enum):
    """State of a job or of one array element."""

    #: Queued or held: waiting for resources, dependencies or a throttle.
    PENDING = "pending"
    #: Started and not yet ended (includes suspended and completing).
    RUNNING = "running"
    #: Ended with exit code 0.
    COMPLETED = "completed"
    #: Ended with a non-zero exit code, was killed by a signal, or could not start.
    FAILED = "failed"
    #: Cancelled by a user or an administrator, before or while running; also a
    #: dependent whose dependency can never be satisfied.
    CANCELLED = "cancelled"
    #: Killed for exceeding its walltime.
    TIMEOUT = "timeout"
    #: Killed for exceeding its memory.
    OUT_OF_MEMORY = "out_of_memory"
    #: Vanished: the scheduler answers but knows nothing of it and no exit-code
    #: file exists after the grace period. Its real outcome is not known.
    LOST = "lost"
    #: Cannot tell right now (scheduler unreachable, unmapped native code, or a
    #: submission whose outcome has not been confirmed yet).
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """True when the job will not change state again."""
        return self in TERMINAL


#: States a job never leaves.
TERMINAL: frozenset[JobState] = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.OUT_OF_MEMORY,
        JobState.LOST,
    }
)

#: States a job may be retried from (``JobSpec.retry_on`` chooses among them), in
#: the order error messages list them. Cancelled is not one: a cancelled job was
#: meant to stop.
RETRYABLE: tuple[JobState, ...] = (
    JobState.FAILED,
    JobState.LOST,
    JobState.TIMEOUT,
    JobState.OUT_OF_MEMORY,
)

#: The states that use up a retry when a spec does not say (``JobSpec.retry_on``):
#: the program failed, or the job vanished. Timeout and out-of-memory would end
#: the same way again unless the resources change.
DEFAULT_RETRY_ON: tuple[JobState, ...] = (JobState.FAILED, JobState.LOST)

#: States in which a job still holds or waits for scheduler resources.
ACTIVE: frozenset[JobState] = frozenset({JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN})

_DEFAULT_RETRY_ON_VALUES = tuple(s.value for s in DEFAULT_RETRY_ON)

# How an ending reads, the same words on every backend (docs/states.md): a reason
# starts with one of these, and says more after it where the scheduler tells more.
#: A cancelled job's reason: ``cancelled by <user>`` (or how the scheduler words "who").
CANCELLED_BY = "cancelled by "
#: A timed-out job's reason, followed by `` (HH:MM:SS)`` when the limit is known.
WALLTIME_EXCEEDED = "walltime limit exceeded"
#: A job killed for its memory: followed by what the scheduler measured.
MEMORY_EXCEEDED = "memory limit exceeded"


def cancelled_by(who: str) -> str:
    """The reason of a job ``who`` (a user name) cancelled.

    >>> cancelled_by("root")
    'cancelled by root'
    """
    return CANCELLED_BY + who


def never_met(why: str) -> str:
    """The reason of a job cancelled because a dependency of it can never be met:
    ``why`` (which dependency, and why) after ``cancelled:``, on every backend.

    >>> never_met("after_ok dependency on job 7 can never be met")
    'cancelled: after_ok dependency on job 7 can never be met'
    >>> never_met("cancelled: a dependency can never be met")
    'cancelled: a dependency can never be met'
    """
    return why if why.startswith("cancelled") else f"cancelled: {why}"


def walltime_exceeded(limit_s: float | None) -> str:
    """The reason of a job killed at its walltime (``limit_s`` seconds, if known).

    >>> walltime_exceeded(60), walltime_exceeded(None)
    ('walltime limit exceeded (00:01:00)', 'walltime limit exceeded')
    """
    if not limit_s:
        return WALLTIME_EXCEEDED
    return f"{WALLTIME_EXCEEDED} ({format_walltime(int(limit_s))})"


# When elements disagree, the array reports the most telling of them. Among
# unfinished states: running beats unknown beats pending.
# Among finished arrays: any failure-like outcome beats success, and the
# order says which failure is reported when several kinds happened.
_ACTIVE_ORDER = (JobState.RUNNING, JobState.UNKNOWN, JobState.PENDING)
_TERMINAL_ORDER = (
    JobState.FAILED,
    JobState.OUT_OF_MEMORY,
    JobState.TIMEOUT,
    JobState.LOST,
    JobState.CANCELLED,
    JobState.COMPLETED,
)


def aggregate(states: Iterable[JobState]) -> JobState:
    """The state of an array from the states of its elements.

    The array is terminal only when every element is. Until then it is
    RUNNING if any element runs, else UNKNOWN if any is unknown, else PENDING.
    Once all have ended it is COMPLETED only if every element completed,
    otherwise the worst outcome (FAILED > OUT_OF_MEMORY > TIMEOUT > LOST > CANCELLED).

    >>> aggregate([JobState.COMPLETED, JobState.RUNNING])
    <JobState.RUNNING: 'running'>
    >>> aggregate([JobState.COMPLETED, JobState.TIMEOUT])
    <JobState.TIMEOUT: 'timeout'>
    >>> aggregate([])
    <JobState.UNKNOWN: 'unknown'>
    """
    present = set(states)
    if not present:
        return JobState.UNKNOWN
    unfinished = present - TERMINAL
    order = _ACTIVE_ORDER if unfinished else _TERMINAL_ORDER
    for state in order:
        if state in present:
            return state
    return JobState.UNKNOWN  # pragma: no cover - every member is in one order


@dataclass(frozen=True, slots=True)
class ElementRecord:
    """One element of a job array as last seen.

    Attributes:
        index: the array index.
        state: its state.
        exit_code: the command's exit code once known (128+N when killed by signal N).
        reason: why it is pending or how it ended, in the scheduler's words, if known.
        usage: what it used, as far as its backend knows (:mod:`jobfleet.usage`).
    """

    index: int
    state: JobState
    exit_code: int | None = None
    reason: str | None = None
    usage: Usage = NO_USAGE

    def to_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "exit_code": self.exit_code,
            "reason": self.reason,
            **self.usage.to_dict(),
        }


def element_json(
    state: str,
    exit_code: int | None,
    reason: str | None,
    times: tuple[str | None, str | None, str | None],
    hosts: str | None,
    memory: int | None,
    cpu_s: float | None,
    wall_s: float | None,
) -> str:
    """An element's ``--json`` object on one line, as ``ElementRecord.to_dict()`` encoded
    with ``", "`` and ``": "`` separators, from stored values: ``times`` its three usage
    times as :func:`~jobfleet.usage.iso_utc` text, ``hosts`` the stored JSON list.

    >>> element_json("completed", 0, None, ("1970-01-01T00:00:01Z", None, None), '["n1"]',
    ...              5, 0.5, None)  # doctest: +NORMALIZE_WHITESPACE
    '{"state": "completed", "exit_code": 0, "reason": null,
      "submitted_at": "1970-01-01T00:00:01Z", "started_at": null, "ended_at": null,
      "hosts": ["n1"], "max_memory_bytes": 5, "cpu_time_s": 0.5, "wall_time_s": null}'
    """
    sub, start, end = times
    # repr() is what json writes for an int or a float, but for inf and nan: a text
    # holding either (anywhere, even in the reason) is written again the slow way.
    text = (
        f'{{"state": "{state}", "exit_code": {"null" if exit_code is None else exit_code}, '
        f'"reason": {_text(reason)}, "submitted_at": {"null" if sub is None else _q(sub)}, '
        f'"started_at": {"null" if start is None else _q(start)}, '
        f'"ended_at": {"null" if end is None else _q(end)}, '
        f'"hosts": {"null" if hosts is None else hosts}, '
        f'"max_memory_bytes": {"null" if memory is None else memory}, '
        f'"cpu_time_s": {"null" if cpu_s is None else repr(cpu_s)}, '
        f'"wall_time_s": {"null" if wall_s is None else repr(wall_s)}}}'
    )
    if "inf" not in text and "nan" not in text:
        return text
    # The rare text that may hold an inf or a nan: as json writes the record's dict.
    values = {
        "state": state,
        "exit_code": exit_code,
        "reason": reason,
        "submitted_at": sub,
        "started_at": start,
        "ended_at": end,
        "hosts": None if hosts is None else json.loads(hosts),
        "max_memory_bytes": memory,
        "cpu_time_s": cpu_s,
        "wall_time_s": wall_s,
    }
    return json.dumps(values, separators=(", ", ": "))


def _q(iso: str) -> str:
    return '"' + iso + '"'  # ISO times need no escaping


@functools.lru_cache(maxsize=256)
def _text(reason: str | None) -> str:
    return json.dumps(reason)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as the registry knows it.

    Attributes:
        id: the jobfleet id (a decimal number as text), stable across backends.
        name: the job's name.
        backend: the backend name (``local``, ``slurm``, ...).
        native_id: the scheduler's id, None until the submission is confirmed.
        state: the job's state; for arrays the aggregate of its elements.
        exit_code: exit code of a single job once known; for arrays the largest
            non-zero element exit code, or 0 when all completed.
        reason: scheduler's reason for pending, or how the job ended.
        submitted: False while the submission is not confirmed (state is UNKNOWN).
        job_dir: directory holding the job's script, logs and exit-code files.
        created_at: when it was recorded (Unix time).
        updated_at: when its state last changed (Unix time).
        spec: the job description as submitted (JSON-compatible dict).
        elements: per-index records for arrays; empty for single jobs.
        attempt: which attempt this is (1, then 2... when the job is retried).
        usage: what the job used (for arrays: what the backend told of the whole
            array, often nothing; each element has its own).
        cleaned_at: when ``jobfleet clean`` removed its files (Unix time), else None.
    """

    id: str
    name: str
    backend: str
    native_id: str | None
    state: JobState
    exit_code: int | None
    reason: str | None
    submitted: bool
    job_dir: str
    created_at: float
    updated_at: float
    spec: dict[str, Any] = field(default_factory=dict)
    elements: dict[int, ElementRecord] = field(default_factory=dict)
    attempt: int = 1
    usage: Usage = NO_USAGE
    cleaned_at: float | None = None

    @property
    def is_array(self) -> bool:
        return bool(self.elements)

    @property
    def retry_due(self) -> bool:
        """True when the job ended in a way its spec retries, with retries left: it is
        about to be submitted again (by the next refresh), not finished."""
        spec = self.spec
        return (
            self.state in TERMINAL
            and not self.elements
            and self.attempt <= int(spec.get("retries", 0))
            and self.state.value in spec.get("retry_on", _DEFAULT_RETRY_ON_VALUES)
        )

    @property
    def settled(self) -> bool:
        """True when the job has ended for good: terminal, and no retry to come."""
        return self.state in TERMINAL and not self.retry_due

    @property
    def succeeded(self) -> bool:
        """True only when the job (every element) completed with exit code 0."""
        return self.state is JobState.COMPLETED

    @property
    def never_submitted(self) -> bool:
        """True when its submission failed: it never reached the scheduler, so nothing
        of it ran (FAILED, never confirmed submitted, no exit code recorded)."""
        return self.state is JobState.FAILED and not self.submitted and self.exit_code is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``--json`` outputs (a stable contract)."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "backend": self.backend,
            "native_id": self.native_id,
            "state": self.state.value,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "submitted": self.submitted,
            "job_dir": self.job_dir,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "attempt": self.attempt,
            **self.usage.to_dict(),
            "cleaned_at": iso_utc(self.cleaned_at),
        }
        if self.elements:
            out["elements"] = {str(i): e.to_dict() for i, e in sorted(self.elements.items())}
        return out
