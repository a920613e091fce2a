"""The local backend's client: jobs on this machine, no scheduler needed.

The client half lives here: it enqueues jobs in the local queue, asks for
cancellation and reads states (one query per poll), starting the per-user
agent (:mod:`.agent`) whenever none is running. See the agent's docstring for
the design and docs/local-backend.md for the user's view.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from jobfleet.backends.base import (
    Backend,
    Capabilities,
    NativeStatus,
    PollTarget,
    QueueEntry,
    SubmitRequest,
    user_name,
)
from jobfleet.backends.local.capacity import LocalCapacity, detect_capacity, inside_a_job
from jobfleet.backends.local.plan import Amount
from jobfleet.backends.local.queue import (
    CAPACITY_KEY,
    LOCK_NAME,
    LOG_NAME,
    NO_INDEX,
    TERMINAL_TASK_STATES,
    WAKE_NAME,
    NewLocalJob,
    QueueStore,
    TaskRow,
)
from jobfleet.backends.local.request import MAPPING, check_local_request, local_amount
from jobfleet.backends.local.usage import add_usage
from jobfleet.errors import BackendError, SubmitError
from jobfleet.script import LOCAL, Dialect
from jobfleet.spec import ArraySpec, JobSpec
from jobfleet.states import JobState, aggregate

__all__ = [
    "LocalBackend",
    "LocalCapacity",
    "detect_capacity",
    "queue_directory",
    "queue_entries",
]

log = logging.getLogger(__name__)


_STATE_MAP = {
    "pending": JobState.PENDING,
    "starting": JobState.PENDING,
    "running": JobState.RUNNING,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
    "timeout": JobState.TIMEOUT,
    "lost": JobState.LOST,
}


def _elements(
    tasks: Sequence[tuple[int, str, int | None, str | None]],
) -> dict[int, tuple[JobState, int | None, str | None]]:
    """An array's tasks as element statuses; the many alike (pending, completed with
    0) share one tuple."""
    alike: dict[tuple[str, int | None, str | None], tuple[JobState, int | None, str | None]]
    alike = {}
    elements = {}
    for idx, state, exit_code, reason in tasks:
        status = alike.get((state, exit_code, reason))
        if status is None:
            status = (_STATE_MAP.get(state, JobState.UNKNOWN), exit_code, reason)
            alike[(state, exit_code, reason)] = status
        elements[idx] = status
    return elements


#: What a job that does not carry the submitter's environment (``export_env: false``)
#: keeps of it: who and where it is, as a login would set; PATH is the system's.
_CLEAN_KEEP = ("HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ")
_CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


def _job_env(spec: JobSpec, env: Mapping[str, str]) -> dict[str, str]:
    """The environment the agent starts a job in: the submitter's, unless the job
    asked not to carry it over (the job script then exports only the job's own)."""
    if spec.environment.export_env is not False:
        return dict(env)
    kept = {k: env[k] for k in _CLEAN_KEEP if k in env}
    return {**kept, "PATH": _CLEAN_PATH}


def queue_directory(home: str | os.PathLike[str]) -> Path:
    """The local queue of a jobfleet home on this host.

    One per host: a home on a file system shared by several machines (a
    cluster's login nodes) gets one agent per machine, each running its own
    machine's jobs, never adopting another machine's processes.
    """
    return Path(home) / "local" / (socket.gethostname().split(".")[0] or "localhost")


class LocalBackend(Backend):
    """Runs jobs on this machine through the per-user local agent.

    Args:
        directory: where the queue, the agent's lock, FIFO and log live
            (see :func:`queue_directory`).
        capacity: cores, memory and GPUs the agent may hand out.
        cancel_grace_s: time between SIGTERM and SIGKILL on cancel or time-out.
        idle_exit_s: the agent exits after this long with nothing to do.
    """

    name = "local"
    capabilities = Capabilities(
        accounting=False,  # the queue itself keeps every outcome
        shared_queue=False,  # one queue per user (and home and host)
        polls_scheduler=False,  # reads its own queue: no rate limit to respect
        submit_in_flight_s=0.0,  # the enqueue cannot outlive its caller
        peak_memory_per_process=True,  # wait4's ru_maxrss: the largest single process
        bulk_submit=True,  # one queue transaction for a whole batch
    )

    def __init__(
        self,
        directory: str | os.PathLike[str],
        capacity: LocalCapacity | None = None,
        *,
        cancel_grace_s: float = 10.0,
        idle_exit_s: float = 60.0,
    ) -> None:
        self.directory = Path(directory)
        self.capacity = capacity or detect_capacity()
        self.cancel_grace_s = cancel_grace_s
        self.idle_exit_s = idle_exit_s
        old_umask = os.umask(0o077)  # the queue holds the submitters' environments
        try:
            self.store = QueueStore(self.directory)
        finally:
            os.umask(old_umask)
        self._capacity_stored = False
        if inside_a_job():
            # A job's own view (its pinned CPUs, its CUDA_VISIBLE_DEVICES) is not
            # the machine's: what the queue holds stands, for checks too.
            stored = self.store.setting(CAPACITY_KEY)
            if stored:
                self.capacity = LocalCapacity.from_setting(stored)
                self._capacity_stored = True

    def close(self) -> None:
        self.store.close()

    def script_dialect(self) -> Dialect:
        return LOCAL

    # -- the agent ----------------------------------------------------------------

    def agent_running(self) -> bool:
        """True when an agent holds the lock for this queue."""
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def ensure_agent(self) -> None:
        """Start an agent unless one is running, then wake it."""
        if not self._capacity_stored:
            # The agent reads what it may hand out from the queue when woken.
            if self.store.setting(CAPACITY_KEY) != self.capacity.to_setting():
                self.store.set_setting(CAPACITY_KEY, self.capacity.to_setting())
            self._capacity_stored = True
        if not self.agent_running():
            self._start_agent()
        self._wake()

    def _start_agent(self, wait_s: float = 20.0) -> None:
        """Start an agent and wait until it (or a rival) holds the lock.

        Waiting keeps concurrent clients from each starting one, and turns an
        agent that cannot start into an error naming its log.
        """
        argv = [
            sys.executable,
            "-m",
            "jobfleet.backends.local.agent",
            "--dir",
            str(self.directory),
            "--cancel-grace",
            str(self.cancel_grace_s),
            "--idle-exit",
            str(self.idle_exit_s),
        ]
        log.debug("starting local agent: %s", argv)
        with open(self.directory / LOG_NAME, "ab") as logfile:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=logfile,
                    stderr=logfile,
                    start_new_session=True,
                    close_fds=True,
                    cwd="/",
                )
            except OSError as exc:
                raise BackendError(f"cannot start the local agent ({argv[0]}): {exc}") from exc
        deadline = time.monotonic() + wait_s
        while not self.agent_running():
            # Status 0 means a rival won the race to the lock: keep waiting for it.
            if proc.poll() not in (None, 0):
                raise BackendError(
                    f"the local agent exited with status {proc.returncode}; "
                    f"see {self.directory / LOG_NAME}"
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"the local agent did not start within {wait_s:g}s; "
                    f"see {self.directory / LOG_NAME}"
                )
            time.sleep(0.01)

    def _wake(self) -> None:
        try:
            fd = os.open(self.directory / WAKE_NAME, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return  # no agent listening yet: a new one reads the whole queue when it starts
        try:
            os.write(fd, b"!")
        except BlockingIOError:
            pass  # the FIFO is full of wake-ups already
        except OSError:
            pass  # the agent left meanwhile (EPIPE): the next one reads the whole queue
        finally:
            os.close(fd)

    option_notes: ClassVar[Mapping[str, str]] = {
        **{f"resources.{k}": v for k, v in MAPPING.items()},
        "environment.export_env": "false: the job gets HOME, USER, LOGNAME, SHELL, LANG, "
        "LC_ALL, TZ and a system PATH only; otherwise the submitter's environment",
    }

    # -- Backend ------------------------------------------------------------------

    def check_request(self, spec: JobSpec) -> None:
        cap = self.capacity
        check_local_request(spec.resources, Amount(cap.cores, cap.memory, cap.gpus))

    def submit(self, request: SubmitRequest) -> str:
        result = self.submit_many([request])[0]
        if isinstance(result, SubmitError):
            raise result
        return result

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | SubmitError]:
        jobs = []
        for req in requests:
            spec = req.spec
            need = local_amount(spec.resources, self.capacity.cores)
            deps = []
            for kind, native_ids in req.dependencies:
                deps.append((kind.value, [int(n) for n in native_ids]))
            jobs.append(
                NewLocalJob(
                    jf_id=req.job_id,
                    name=req.name,
                    script=req.script_path,
                    job_dir=req.job_dir,
                    cores=need.cores,
                    memory=need.memory,
                    gpus=need.gpus,
                    walltime=spec.resources.walltime_s,
                    max_concurrent=spec.array.max_concurrent if spec.array else None,
                    indices=list(spec.array.indices) if spec.array else [NO_INDEX],
                    deps=deps,
                    env=_job_env(spec, req.env),
                )
            )
        problem = self._check_dependencies(requests)
        if problem:
            return [SubmitError(r.name, problem) for r in requests]
        try:
            ids = self.store.enqueue(jobs)
        except BackendError as exc:
            return [SubmitError(r.name, str(exc)) for r in requests]
        try:
            self.ensure_agent()
        except BackendError as exc:
            # The jobs are queued: they run when an agent starts (the next
            # status, wait or submit tries again). Submission did succeed.
            log.warning("queued, but the local agent did not start: %s", exc)
        return [str(i) for i in ids]

    def _check_dependencies(self, requests: Sequence[SubmitRequest]) -> str | None:
        """Why a dependency cannot be trusted, if so: each native id must still
        be the queue job of the jobfleet job the spec names (a removed queue
        directory starts its ids again)."""
        expected = {
            int(native): jf_id
            for req in requests
            for native, jf_id in req.dependency_owners.items()
        }
        if not expected:
            return None
        actual = self.store.jf_ids(list(expected))
        for native, jf_id in expected.items():
            if actual.get(native) != jf_id:
                return (
                    f"dependency job {jf_id} is not in the local queue {self.directory} "
                    "(was it removed, or submitted on another host?)"
                )
        return None

    def submit_argv(self, request: SubmitRequest) -> list[str] | None:
        return None

    def find_submitted(self, name: str, job_id: str) -> str | None:
        native = self.store.find_job(job_id, name)
        return None if native is None else str(native)

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        owner = {int(t.native_id): t.job_id for t in targets if t.native_id.isdigit()}
        # Only the queue's jobs that are the ones asked about: the queue was removed and
        # ids restarted, another job's outcome is not reported.
        jobs = {
            job: submitted
            for job, (jf_id, submitted) in self.store.polled_jobs(list(owner)).items()
            if jf_id == owner.get(job)
        }
        by_job: dict[int, list[tuple[int, str, int | None, str | None]]] = {}
        for job, idx, state, exit_code, reason in self.store.task_rows(list(jobs)):
            by_job.setdefault(job, []).append((idx, state, exit_code, reason))
        result: dict[str, NativeStatus] = {}
        unfinished = False
        ended: list[int] = []
        for job, tasks in by_job.items():
            if tasks[0][0] == NO_INDEX:
                _, state, exit_code, reason = tasks[0]
                mapped = _STATE_MAP.get(state, JobState.UNKNOWN)
                result[str(job)] = NativeStatus(mapped, exit_code, reason)
            else:
                elements = _elements(tasks)
                mapped = aggregate(e[0] for e in elements.values())
                result[str(job)] = NativeStatus(mapped, None, None, elements)
            unfinished = unfinished or not mapped.is_terminal
            if any(t[1] in TERMINAL_TASK_STATES for t in tasks):
                ended.append(job)
        if ended:  # only polls in which jobs ended read what they used
            add_usage(result, self.store.task_usage(ended), jobs)
        if unfinished and not self.agent_running():
            log.warning("local agent is not running while jobs are unfinished; restarting it")
            self._start_agent()
        return result

    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
        wait_s: float | None = None,
    ) -> dict[str, list[int | None]]:
        """Ask the agent to cancel (or signal), and wait (up to the grace period)
        until the cancelled tasks have ended."""
        wanted = [int(n) for n in native_ids if n.isdigit()]
        if signal is not None:
            if self.store.request_signal(wanted, indices, signal):
                self.ensure_agent()
            return {}  # the agent records what happens
        if not self.store.request_cancel(wanted, indices):
            return {}
        self.ensure_agent()
        chosen = None if indices is None else set(indices)
        deadline = time.monotonic() + (self.cancel_grace_s + 5.0 if wait_s is None else wait_s)
        while time.monotonic() < deadline:
            states = [s for s in self.store.task_rows(wanted) if chosen is None or s[1] in chosen]
            if all(_STATE_MAP.get(s[2], JobState.UNKNOWN).is_terminal for s in states):
                break
            time.sleep(0.05)
        return {}

    # -- the queue view -------------------------------------------------------------

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        """The unfinished jobs of this local queue (one query).

        The queue belongs to one user's jobfleet home (each user has their own
        agent), so ``all_users`` lists the same jobs: nobody else's are here.
        """
        user = user_name() or str(os.geteuid())
        host = socket.gethostname().split(".")[0] or "localhost"
        return queue_entries(self.store.active_tasks(), time.time(), user, host)


def queue_entries(tasks: Sequence[TaskRow], now: float, user: str, host: str) -> list[QueueEntry]:
    """Queue rows from unfinished tasks: a row per started task and per single job,
    and, as SLURM shows them, one row for the waiting tasks of each array."""
    entries: list[QueueEntry] = []
    by_job: dict[int, list[TaskRow]] = {}
    for task in tasks:
        by_job.setdefault(task.job, []).append(task)
    for job, group in by_job.items():
        waiting = []
        for task in group:
            if task.idx != NO_INDEX and task.state == "pending":
                waiting.append(task)
                continue
            index = None if task.idx == NO_INDEX else str(task.idx)
            shown = str(job) if index is None else f"{job}_{index}"
            entries.append(_queue_entry(task, index, shown, now, user, host))
        if waiting:
            text = ArraySpec(tuple(t.idx for t in waiting), waiting[0].max_concurrent).to_text()
            entries.append(_queue_entry(waiting[0], text, f"{job}_[{text}]", now, user, host))
    return entries


def _queue_entry(
    task: TaskRow, tasks: str | None, shown: str, now: float, user: str, host: str
) -> QueueEntry:
    started = task.started_at
    return QueueEntry(
        native_id=str(task.job),
        tasks=tasks,
        display_id=shown,
        name=task.name,
        user=user,
        state=_STATE_MAP.get(task.state, JobState.UNKNOWN),
        native_state=task.state,
        elapsed_s=None if started is None else max(0, round(now - started)),
        nodes=None if started is None else host,
        queue=None,
        reason=task.reason,
    )
