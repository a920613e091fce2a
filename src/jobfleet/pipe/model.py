"""Pipe mode's values: task specs, task and run states with their allowed transitions,
and a run's settings. Pure: no I/O.

Task states (a task's state is resolved from the workers' journals, see
:mod:`jobfleet.pipe.resolve`)::

    pending ──claim──> running ──exit 0──────────────> completed
       ^                  │ ────exit code not retryable,
       │                  │     or the budget spent──> failed ──pipe retry──> pending
       └──retry / lost────┘
    pending, running ──pipe cancel──> cancelled

Run states: ``created`` (tasks staged, no worker yet) -> ``running`` (workers
submitted, tasks left) -> ``completed`` (every task completed) or ``failed`` (every
task ended, some failed); ``pipe add`` or ``pipe retry`` takes an ended run back to
``running``; ``pipe cancel`` ends it ``cancelled`` for good.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from jobfleet.errors import SpecError
from jobfleet.states import JobState

__all__ = [
    "JOB_STATE",
    "RUN_TRANSITIONS",
    "TASK_TRANSITIONS",
    "PipeSettings",
    "RunState",
    "TaskSpec",
    "TaskState",
    "check_transition",
    "parse_tasks",
    "task_from_json",
]


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TaskState(enum.Enum):
    """Where one task is."""

    PENDING = "pending"  #: waiting for a worker (first time, or again after a retry)
    RUNNING = "running"  #: a worker holding a live lease on it is running it
    COMPLETED = "completed"  #: exited 0: its one terminal record says so
    FAILED = "failed"  #: exited non-zero, not retryable or out of retries
    CANCELLED = "cancelled"  #: the run was cancelled before it ended

    @property
    def is_terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


class RunState(enum.Enum):
    """Where a whole run is."""

    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


_T = TaskState
#: Every move a task may make; anything else is refused.
TASK_TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    _T.PENDING: frozenset({_T.RUNNING, _T.FAILED, _T.CANCELLED}),  # failed: budget spent
    _T.RUNNING: frozenset({_T.COMPLETED, _T.FAILED, _T.PENDING, _T.CANCELLED}),
    _T.FAILED: frozenset({_T.PENDING}),  # pipe retry --failed
    _T.COMPLETED: frozenset(),
    _T.CANCELLED: frozenset(),
}
#: The job state a task's state reads as, where a task stands for an array element
#: (a piped ``map`` call, a piped study point).
JOB_STATE: Mapping[TaskState, JobState] = {
    _T.PENDING: JobState.PENDING,
    _T.RUNNING: JobState.RUNNING,
    _T.COMPLETED: JobState.COMPLETED,
    _T.FAILED: JobState.FAILED,
    _T.CANCELLED: JobState.CANCELLED,
}
_R = RunState
RUN_TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    _R.CREATED: frozenset({_R.RUNNING, _R.CANCELLED}),
    _R.RUNNING: frozenset({_R.COMPLETED, _R.FAILED, _R.CANCELLED}),
    _R.COMPLETED: frozenset({_R.RUNNING}),  # pipe add
    _R.FAILED: frozenset({_R.RUNNING, _R.CANCELLED}),  # pipe add, pipe retry
    _R.CANCELLED: frozenset(),
}


def check_transition(what: str, old: enum.Enum, new: enum.Enum, run_dir: str) -> None:
    """Refuse a move the tables do not allow, naming it and the run."""
    table: Mapping[enum.Enum, frozenset[enum.Enum]] = (
        TASK_TRANSITIONS if isinstance(old, TaskState) else RUN_TRANSITIONS  # type: ignore[assignment]
    )
    if new is not old and new not in table[old]:
        allowed = ", ".join(sorted(s.value for s in table[old])) or "none: it has ended"
        raise SpecError(
            "pipe",
            f"{run_dir}: {what} cannot go from {old.value} to {new.value} (allowed: {allowed})",
        )


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task: what to run, how, and what it may be called.

    Attributes:
        argv: the command; or, with ``shell``, one element: a line for ``/bin/sh -c``.
        shell: run ``argv[0]`` with ``/bin/sh -c`` (only when the task file asked).
        env: added to the worker's environment.
        cwd: where it runs (default: the run directory's ``work``).
        estimate_s: how long it is expected to take (walltime-aware claiming).
        id: the user's name for it (default: its number).
    """

    argv: tuple[str, ...]
    shell: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    estimate_s: float | None = None
    id: str | None = None

    def to_json(self) -> str:
        out: dict[str, object] = {"argv": list(self.argv)}
        if self.shell:
            out = {"shell": self.argv[0]}
        if self.env:
            out["env"] = dict(self.env)
        if self.cwd is not None:
            out["cwd"] = self.cwd
        if self.estimate_s is not None:
            out["estimate"] = self.estimate_s
        if self.id is not None:
            out["id"] = self.id
        return json.dumps(out, separators=(",", ":"))

    def argv_to_run(self) -> list[str]:
        return ["/bin/sh", "-c", self.argv[0]] if self.shell else list(self.argv)


def task_from_json(data: object, where: str) -> TaskSpec:
    if not isinstance(data, dict):
        raise SpecError("tasks", f"{where}: a JSON task is an object with argv or shell")
    unknown = set(data) - {"argv", "shell", "env", "cwd", "estimate", "id"}
    if unknown:
        raise SpecError(
            "tasks",
            f"{where}: unknown key {sorted(unknown)[0]!r}; "
            "valid keys: argv, shell, env, cwd, estimate, id",
        )
    if ("argv" in data) == ("shell" in data):
        raise SpecError("tasks", f"{where}: give exactly one of argv (a list) or shell (a line)")
    if "argv" in data:
        argv = data["argv"]
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            raise SpecError("tasks", f"{where}: argv must be a non-empty list of strings")
        command, shell = tuple(argv), False
    else:
        line = data["shell"]
        if not isinstance(line, str) or not line.strip():
            raise SpecError("tasks", f"{where}: shell must be a non-empty string")
        command, shell = (line,), True
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise SpecError("tasks", f"{where}: env must map names to strings")
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise SpecError(
                "tasks", f"{where}: env name {name!r} is not a variable name (A-Z, 0-9, _)"
            )
    cwd = data.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise SpecError("tasks", f"{where}: cwd must be a string")
    if any("\0" in text for text in (*command, *env.values(), cwd or "")):
        raise SpecError("tasks", f"{where}: a NUL character cannot be passed to a command")
    estimate = data.get("estimate")
    if estimate is not None and (
        isinstance(estimate, bool)
        or not isinstance(estimate, int | float)
        or not math.isfinite(estimate)
        or estimate < 0
    ):
        raise SpecError("tasks", f"{where}: estimate must be seconds, a number >= 0")
    task_id = data.get("id")
    if task_id is not None and not isinstance(task_id, str | int):
        raise SpecError("tasks", f"{where}: id must be a string or a number")
    return TaskSpec(
        command,
        shell,
        env,
        cwd,
        float(estimate) if estimate is not None else None,
        str(task_id) if task_id is not None else None,
    )


def parse_tasks(lines: Sequence[str] | Iterator[str], source: str) -> Iterator[TaskSpec]:
    """Tasks from a task file: one shell command per line, or JSON lines (a line starting
    with ``{``) with argv/shell, env, cwd, estimate, id. Blank lines and ``#`` comments
    are skipped. Errors name the file, the line and the fix."""
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {number}"
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError("tasks", f"{where}: not valid JSON ({exc.msg})") from None
            yield task_from_json(data, where)
        elif "\0" in line:
            raise SpecError("tasks", f"{where}: a NUL character cannot be passed to a command")
        else:
            yield TaskSpec((line,), True)  # a shell line, as the file gave it


@dataclass(frozen=True, slots=True)
class PipeSettings:
    """A run's settings, fixed when it is created.

    Attributes:
        lease_s: a claim not renewed for this long is taken over.
        heartbeat_s: how often a running worker renews its claim.
        max_attempts: runs of a task before it ends failed (a lost worker counts).
        retry_exit_codes: exit codes worth another attempt (default none: a command
            that fails fails again; ``None``: every non-zero code). A worker lost while
            running a task always costs that task an attempt.
        block_size: tasks per claim.
        per_task_output: each attempt's output in a file of its own
            (``out/tasks/<slot>-<attempt>.log``) instead of its worker's output file.
    """

    lease_s: float = 60.0
    heartbeat_s: float = 10.0
    max_attempts: int = 3
    retry_exit_codes: frozenset[int] | None = frozenset()
    block_size: int = 8
    per_task_output: bool = False

    def __post_init__(self) -> None:
        if not (self.heartbeat_s > 0 and self.lease_s >= 2 * self.heartbeat_s):
            raise SpecError(
                "pipe", "lease must be at least twice the heartbeat (defaults: 60 s and 10 s)"
            )
        if self.max_attempts < 1:
            raise SpecError("pipe", "max_attempts must be 1 or more")
        if not 1 <= self.block_size <= 10_000:
            raise SpecError("pipe", "block_size must be between 1 and 10000")

    def retryable(self, code: int) -> bool:
        if code == 0:
            return False
        return self.retry_exit_codes is None or code in self.retry_exit_codes

    def to_dict(self) -> dict[str, object]:
        return {
            "lease_s": self.lease_s,
            "heartbeat_s": self.heartbeat_s,
            "max_attempts": self.max_attempts,
            "retry_exit_codes": (
                None if self.retry_exit_codes is None else sorted(self.retry_exit_codes)
            ),
            "block_size": self.block_size,
            "per_task_output": self.per_task_output,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PipeSettings:
        codes = data.get("retry_exit_codes")
        return cls(
            lease_s=float(data["lease_s"]),  # type: ignore[arg-type]
            heartbeat_s=float(data["heartbeat_s"]),  # type: ignore[arg-type]
            max_attempts=int(data["max_attempts"]),  # type: ignore[call-overload]
            retry_exit_codes=None if codes is None else frozenset(codes),  # type: ignore[call-overload]
            block_size=int(data["block_size"]),  # type: ignore[call-overload]
            per_task_output=bool(data.get("per_task_output", False)),
        )
