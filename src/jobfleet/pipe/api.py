"""``jobfleet.Pipe``: a run of many small tasks served by one array job of workers.

>>> import tempfile
>>> run = Pipe.create(tempfile.mkdtemp() + "/run", ["echo one", "echo two"])
>>> run.status().counts
{'pending': 2, 'running': 0, 'completed': 0, 'failed': 0, 'cancelled': 0}
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobfleet.errors import SpecError
from jobfleet.pipe.model import (
    PipeSettings,
    RunState,
    TaskSpec,
    TaskState,
    check_transition,
    parse_tasks,
)
from jobfleet.pipe.resolve import Resolver, SlotView
from jobfleet.pipe.store import RunDir

__all__ = ["WORKER_MODULE", "Pipe", "PipeStatus", "TaskResult"]

#: What each element of a worker array runs (``python -m``).
WORKER_MODULE = "jobfleet.pipe.worker"
_STATES = [s.value for s in TaskState]


@dataclass(frozen=True, slots=True)
class TaskResult:
    """How one task ended (or stands).

    Attributes:
        number: the task's number (0 for the first task added).
        id: the user's name for it, when the task file gave one.
        state: its state.
        exit_code: its exit code, when it ended by exiting.
        attempts: attempts started.
        worker: the worker whose record counts.
        why: why it failed without an exit code (its workers were lost).
    """

    number: int
    id: str | None
    state: TaskState
    exit_code: int | None
    attempts: int
    worker: str | None = None
    why: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.number,
            "id": self.id,
            "state": self.state.value,
            "exit_code": self.exit_code,
            "attempts": self.attempts,
            "worker": self.worker,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class PipeStatus:
    """A run at a glance.

    Attributes:
        state: the run's state.
        counts: tasks per state (every state, zeros included).
        tasks: how many tasks the run has.
        live_workers: workers whose heartbeat is fresh.
        throughput: tasks ended per second, over the last minute of ends.
        eta_s: seconds left at that rate (None when unknown).
        failed: the tasks that failed.
    """

    state: RunState
    counts: dict[str, int]
    tasks: int
    live_workers: int
    throughput: float
    eta_s: float | None
    failed: list[TaskResult] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.state in (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED)

    @property
    def ok(self) -> bool:
        return self.state is RunState.COMPLETED

    def to_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "tasks": self.tasks,
            "counts": self.counts,
            "live_workers": self.live_workers,
            "throughput_per_s": round(self.throughput, 3),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "failed": [t.to_dict() for t in self.failed],
        }


def _task_lines(tasks: Iterable[TaskSpec | str] | str | os.PathLike[str]) -> list[TaskSpec]:
    if isinstance(tasks, str | os.PathLike):
        path = Path(tasks)
        try:
            with path.open(encoding="utf-8") as fh:
                return list(parse_tasks(fh, str(path)))
        except OSError as exc:
            raise SpecError("--tasks", f"{path}: cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise SpecError("--tasks", f"{path}: not UTF-8 text") from None
    out: list[TaskSpec] = []
    for task in tasks:
        if isinstance(task, TaskSpec):
            out.append(task)
        else:
            out += parse_tasks([task], "tasks")
    return out


def _source(tasks: object) -> str:
    return str(tasks) if isinstance(tasks, str | os.PathLike) else "the tasks given"


class Pipe:
    """A pipe run in its directory: made with :meth:`create`, opened with ``Pipe(dir)``."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.dir = RunDir.open(run_dir)
        self._resolver = Resolver(self.dir)

    @property
    def path(self) -> Path:
        return self.dir.root

    @classmethod
    def create(
        cls,
        run_dir: str | os.PathLike[str],
        tasks: Iterable[TaskSpec | str] | str | os.PathLike[str] = (),
        *,
        lease: float = 60.0,
        heartbeat: float = 10.0,
        max_attempts: int = 3,
        retry_exit_codes: Iterable[int] | None = (),
        block_size: int = 8,
        per_task_output: bool = False,
    ) -> Pipe:
        """A new run in ``run_dir`` with ``tasks`` (a task file's path, shell lines, or
        :class:`TaskSpec` s); refuses a directory that holds a run already."""
        settings = PipeSettings(
            lease_s=lease,
            heartbeat_s=heartbeat,
            max_attempts=max_attempts,
            retry_exit_codes=None if retry_exit_codes is None else frozenset(retry_exit_codes),
            block_size=block_size,
            per_task_output=per_task_output,
        )
        specs = _task_lines(tasks)  # a bad task file refuses before anything is made
        if not specs:
            raise SpecError("--tasks", f"{_source(tasks)}: no tasks (a command per line)")
        RunDir.create(run_dir, settings).add(specs)
        return cls(run_dir)

    def add(self, tasks: Iterable[TaskSpec | str] | str | os.PathLike[str]) -> tuple[int, int]:
        """Add tasks: (the first one's number, how many)."""
        if self.dir.cancelled:
            raise SpecError("pipe", f"{self.path}: the run was cancelled; make a new one")
        specs = _task_lines(tasks)
        if not specs:
            raise SpecError("--tasks", f"{_source(tasks)}: no tasks (a command per line)")
        return self.dir.add(specs)

    # -- workers -------------------------------------------------------------------
    def submit(
        self,
        workers: int,
        *,
        backend: str | None = None,
        profile: str | None = None,
        resources: Any = None,
        max_concurrent: int | None = None,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        fleet: Any = None,
    ) -> str:
        """Submit ``workers`` workers as ONE array job; its jobfleet id. ``resources``:
        a mapping of the configuration's keys to change (``{"walltime": "1h"}``), or a
        :class:`~jobfleet.Resources` to use as it is."""
        from jobfleet.pipe.submit import submit_workers

        if self.dir.cancelled:
            raise SpecError("pipe", f"{self.path}: the run was cancelled; make a new one")
        ended = sum(r.state.is_terminal for r in self.results())  # a top-up's progress check
        return submit_workers(
            self.dir, workers, backend=backend, profile=profile, resources=resources,
            max_concurrent=max_concurrent, python=python or sys.executable, env=env,
            fleet=fleet, ended=ended, name=name,
        )  # fmt: skip

    def submissions(self) -> list[dict[str, Any]]:
        try:
            text = self.dir.submissions_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    # -- reading -------------------------------------------------------------------
    def _slots(self) -> tuple[list[SlotView], dict[int, int], dict[int, int]]:
        """Every slot's view, the retry slots ({slot: task number}) and where a retry
        moved a task ({task number: its latest retry slot}). No task spec is read."""
        leases = self.dir.leases()  # before the journals: see Resolver.slot_views
        self._resolver.refresh()
        views = self._resolver.slot_views(self.dir.total(), leases)
        refs = self.dir.retry_refs()
        moved = {refs[slot]: slot for slot in sorted(refs)}  # the latest retry wins
        return views, refs, moved

    def _views(self) -> dict[int, tuple[int, SlotView]]:
        """Each task's latest slot and its view: {task number: (slot, view)}."""
        views, refs, moved = self._slots()
        latest: dict[int, tuple[int, SlotView]] = {}
        for number, view in enumerate(views):
            if number in refs:
                continue
            slot = moved.get(number)
            latest[number] = (number, view) if slot is None else (slot, views[slot])
        return latest

    def _result(self, number: int, view: SlotView, cancelled: bool) -> TaskResult:
        state = view.state
        if cancelled and not state.is_terminal:
            state = TaskState.CANCELLED
        end = view.end or {}
        code = end.get("code")
        line = self.dir.slot(number)
        return TaskResult(
            number,
            str(line["id"]) if "id" in line else None,
            state,
            int(code) if isinstance(code, int) else None,
            view.tries,
            str(end["w"]) if "w" in end else None,
            str(end["why"]) if "why" in end else None,
        )

    def results(self) -> list[TaskResult]:
        """Every task, in order, as it stands."""
        cancelled = self.dir.cancelled
        return [self._result(n, view, cancelled) for n, (_, view) in self._views().items()]

    def status(self) -> PipeStatus:
        """Counts per state, throughput, ETA, live workers. Reads the journals (only
        what was appended since the last call) and no task spec but the failed ones'."""
        latest_views = self._views()
        cancelled = self.dir.cancelled
        counts = dict.fromkeys(_STATES, 0)
        failed: list[TaskResult] = []
        tasks = len(latest_views)
        for number, (_, latest) in latest_views.items():
            state = latest.state
            if cancelled and not state.is_terminal:
                state = TaskState.CANCELLED
            counts[state.value] += 1
            if state is TaskState.FAILED:
                failed.append(self._result(number, latest, cancelled))
        now = time.time()
        recent = sorted(
            t
            for t in (float(e.get("at", 0.0)) for e in self._resolver.ends.values())  # type: ignore[arg-type]
            if now - t <= 60.0
        )
        throughput = 0.0
        if len(recent) >= 2 and recent[-1] > recent[0]:
            throughput = (len(recent) - 1) / (recent[-1] - recent[0])
        remaining = counts["pending"] + counts["running"]
        eta = remaining / throughput if throughput > 0 else (0.0 if not remaining else None)
        live = len(self.dir.live_workers(self.dir.fs_now()))
        return PipeStatus(
            self._run_state(counts, tasks), counts, tasks, live, throughput, eta, failed
        )

    def _run_state(self, counts: Mapping[str, int], tasks: int) -> RunState:
        if self.dir.cancelled:
            return RunState.CANCELLED
        if counts["completed"] == tasks and tasks:
            return RunState.COMPLETED
        if counts["completed"] + counts["failed"] == tasks and tasks:
            return RunState.FAILED
        return RunState.RUNNING if self.submissions() else RunState.CREATED

    def logs(self, task: str | int) -> str:
        """The output of a task's counted attempt (its latest, until it ends)."""
        number = self._number(task)
        slot, view = self._views()[number]
        end = view.end
        if end is None:  # not ended: its latest attempt so far, if any
            ends = [e for (s, _), e in self._resolver.ends.items() if s == slot]
            end = ends[-1] if ends else None
        if end is None or "out" not in end:
            state = view.state.value
            raise SpecError("TASK", f"task {number} has no output recorded yet (it is {state})")
        offset, length = (int(x) for x in end["out"])  # type: ignore[attr-defined]
        with open(self.dir.end_output_path(end), "rb") as fh:
            fh.seek(offset)
            return fh.read(length).decode("utf-8", errors="replace")

    def outputs(self) -> dict[int, str]:
        """The output of every task that ended, by task number (each worker's output
        file read once)."""
        wanted: dict[Path, list[tuple[int, int, int]]] = {}
        for number, (_, view) in self._views().items():
            end = view.end
            if end is not None and "out" in end:
                offset, length = (int(x) for x in end["out"])  # type: ignore[attr-defined]
                path = self.dir.end_output_path(end)
                wanted.setdefault(path, []).append((number, offset, length))
        out: dict[int, str] = {}
        for path, spans in wanted.items():
            data = path.read_bytes()
            for number, offset, length in spans:
                out[number] = data[offset : offset + length].decode("utf-8", errors="replace")
        return out

    def _number(self, task: str | int) -> int:
        total = self.dir.total()
        if isinstance(task, int) or str(task).isdigit():
            number = int(task)
            if 0 <= number < total and number not in self.dir.retry_refs():
                return number
        for slot in range(total):
            line = self.dir.slot(slot)
            if "id" in line and str(line["id"]) == str(task):
                return slot
        raise SpecError("TASK", f"{self.path}: no task {task!r} (give its number or its id)")

    # -- changing ------------------------------------------------------------------
    def retry(self) -> int:
        """Run the failed tasks again (each with a fresh budget); how many."""
        if self.dir.cancelled:
            raise SpecError("pipe", f"{self.path}: the run was cancelled; make a new one")
        failed = [r.number for r in self.results() if r.state is TaskState.FAILED]
        if failed:
            self.dir.add_lines({"ref": n} for n in failed)
        return len(failed)

    def cancel(self, *, fleet: Any = None) -> None:
        """Cancel the run: workers stop claiming, their jobs are cancelled, tasks that had
        not ended read cancelled. For good: a cancelled run takes nothing more; a run
        whose every task completed cannot be cancelled."""
        if not self.dir.cancelled:
            check_transition("the run", self.status().state, RunState.CANCELLED, str(self.path))
        self.dir.cancelled_path.touch()
        ids = [str(s["job_id"]) for s in self.submissions()]
        if ids:
            from jobfleet.pipe.submit import cancel_workers

            cancel_workers(ids, fleet=fleet)

    def top_up(self, status: PipeStatus | None = None, *, fleet: Any = None) -> str | None:
        """Submit the last submission again when none of the run's worker jobs is still
        waiting or running (their scheduler says so: a worker killed leaves a heartbeat
        file that looks alive for a lease) and tasks remain; the new job's id, or None.
        A top-up never makes a task run twice: claims decide who runs what."""
        from jobfleet.pipe.submit import worker_jobs_active

        submissions = self.submissions()
        if not submissions or self.dir.cancelled:
            return None
        status = status or self.status()
        if status.ended:
            return None
        last = submissions[-1]
        ids = [str(s["job_id"]) for s in submissions]
        if worker_jobs_active(ids, fleet=fleet, profile=last.get("profile")):
            return None
        ended = status.tasks - status.counts["pending"] - status.counts["running"]
        if len(submissions) > 1 and last.get("ended") == ended:
            # The workers submitted last ended without ending any task: submitting the
            # same again would loop for ever. Say so, with where to look.
            raise SpecError(
                "pipe",
                f"{self.path}: the workers of job {last['job_id']} ended without ending any "
                f"task; see `jobfleet logs {last['job_id']} --index 1 --stderr`",
            )
        given = last.get("resources") or None
        if isinstance(given, dict) and "all" in given:  # a whole Resources was given
            from jobfleet.resources import Resources

            given = Resources.from_dict(given["all"])
        return self.submit(
            int(last["workers"]), backend=last.get("backend"), profile=last.get("profile"),
            resources=given, max_concurrent=last.get("max_concurrent"),
            python=last.get("python"), env=last.get("env") or None,
            name=last.get("name"), fleet=fleet,
        )  # fmt: skip

    def wait(
        self,
        *,
        timeout: float | None = None,
        keep_alive: bool = False,
        interval: float = 1.0,
        on_progress: Callable[[PipeStatus], None] | None = None,
        fleet: Any = None,
    ) -> PipeStatus:
        """Wait until every task ended (or ``timeout`` seconds); with ``keep_alive``,
        submit workers again (as the last submission did) whenever none is left and
        tasks remain."""

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            began = time.monotonic()
            status = self.status()
            if on_progress is not None:
                on_progress(status)
            if status.ended:
                return status
            if keep_alive:
                self.top_up(status, fleet=fleet)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return status
            # A status reads every task: on a huge run, look less often than it costs.
            pause = max(interval, 4 * (now - began))
            time.sleep(pause if deadline is None else min(pause, max(deadline - now, 0.0)))
