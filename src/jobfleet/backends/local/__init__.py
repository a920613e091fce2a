"""The local backend: jobs on this machine, no scheduler needed.

The client half lives here: it enqueues jobs in the local queue, asks for
cancellation and reads states (one query per poll), starting the per-user
agent (:mod:`.agent`) whenever none is running. See the agent's docstring for
the design and docs/local-backend.md for the user's view.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from jobfleet.backends.base import Backend, NativeStatus, PollTarget, SubmitRequest
from jobfleet.backends.local.plan import Amount
from jobfleet.backends.local.queue import (
    LOCK_NAME,
    LOG_NAME,
    NO_INDEX,
    WAKE_NAME,
    NewLocalJob,
    QueueStore,
)
from jobfleet.errors import BackendError, SpecError, SubmitError
from jobfleet.spec import JobSpec
from jobfleet.states import JobState, aggregate

__all__ = ["LocalBackend", "LocalCapacity", "detect_capacity"]

log = logging.getLogger(__name__)

LocalCapacity = Amount

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


def _count_gpus() -> int:
    """NVIDIA GPUs visible through their device files (0 when there are none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len([p for p in Path("/dev").glob("nvidia[0-9]*") if p.name[6:].isdigit()])


def detect_capacity(
    cores: int | None = None, memory_bytes: int | None = None, gpus: int | None = None
) -> Amount:
    """What the local backend may hand out; None means detect it."""
    if cores is None:
        cores = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if gpus is None:
        gpus = _count_gpus()
    return Amount(cores, memory_bytes, gpus)


class LocalBackend(Backend):
    """Runs jobs on this machine through the per-user local agent.

    Args:
        directory: where the queue, the agent's lock, FIFO and log live.
        capacity: cores, memory and GPUs the agent may hand out.
        cancel_grace_s: time between SIGTERM and SIGKILL on cancel or time-out.
        idle_exit_s: the agent exits after this long with nothing to do.
    """

    name = "local"
    dialect = "local"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        capacity: Amount | None = None,
        *,
        cancel_grace_s: float = 10.0,
        idle_exit_s: float = 60.0,
    ) -> None:
        self.directory = Path(directory)
        self.capacity = capacity or detect_capacity()
        self.cancel_grace_s = cancel_grace_s
        self.idle_exit_s = idle_exit_s
        self.store = QueueStore(self.directory)

    def close(self) -> None:
        self.store.close()

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
            "--cores",
            str(self.capacity.cores),
            "--memory",
            str(self.capacity.memory),
            "--gpus",
            str(self.capacity.gpus),
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
        finally:
            os.close(fd)

    # -- Backend ------------------------------------------------------------------

    def check_request(self, spec: JobSpec) -> None:
        res = spec.resources
        cap = self.capacity
        if res.nodes != 1:
            raise SpecError("resources.nodes", "the local backend runs on this one machine; use 1")
        if res.cores > cap.cores:
            raise SpecError(
                "resources.cores",
                f"asks for {res.cores} cores but the local backend has {cap.cores} "
                "(set local.cores in the configuration to change that)",
            )
        if (res.memory_bytes or 0) > cap.memory:
            raise SpecError(
                "resources.memory",
                f"asks for {res.memory_bytes} bytes but the local backend has {cap.memory} "
                "(set local.memory in the configuration to change that)",
            )
        if res.gpus > cap.gpus:
            raise SpecError(
                "resources.gpus",
                f"asks for {res.gpus} GPUs but the local backend has {cap.gpus} "
                "(set local.gpus in the configuration to change that)",
            )

    def submit(self, request: SubmitRequest) -> str:
        result = self.submit_many([request])[0]
        if isinstance(result, SubmitError):
            raise result
        return result

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | SubmitError]:
        jobs = []
        for req in requests:
            spec = req.spec
            deps = []
            for kind, native_ids in req.dependencies:
                deps.append((kind.value, [int(n) for n in native_ids]))
            jobs.append(
                NewLocalJob(
                    jf_id=req.job_id,
                    name=req.name,
                    script=req.script_path,
                    job_dir=req.job_dir,
                    cores=spec.resources.cores,
                    memory=spec.resources.memory_bytes or 0,
                    gpus=spec.resources.gpus,
                    walltime=spec.resources.walltime_s,
                    max_concurrent=spec.array.max_concurrent if spec.array else None,
                    indices=list(spec.array.indices) if spec.array else [NO_INDEX],
                    deps=deps,
                    env=dict(req.env),
                )
            )
        try:
            ids = self.store.enqueue(jobs)
        except BackendError as exc:
            return [SubmitError(r.name, str(exc)) for r in requests]
        self.ensure_agent()
        return [str(i) for i in ids]

    def submit_argv(self, request: SubmitRequest) -> list[str] | None:
        return None

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        wanted = [int(t.native_id) for t in targets if t.native_id.isdigit()]
        rows = self.store.task_states(wanted)
        by_job: dict[int, list[tuple[int, str, int | None, str | None]]] = {}
        for job, idx, state, exit_code, reason in rows:
            by_job.setdefault(job, []).append((idx, state, exit_code, reason))
        result: dict[str, NativeStatus] = {}
        unfinished = False
        for job, tasks in by_job.items():
            if tasks[0][0] == NO_INDEX:
                _, state, exit_code, reason = tasks[0]
                mapped = _STATE_MAP.get(state, JobState.UNKNOWN)
                result[str(job)] = NativeStatus(mapped, exit_code, reason)
            else:
                elements = {
                    idx: (_STATE_MAP.get(state, JobState.UNKNOWN), exit_code, reason)
                    for idx, state, exit_code, reason in tasks
                }
                mapped = aggregate(e[0] for e in elements.values())
                result[str(job)] = NativeStatus(mapped, None, None, elements)
            unfinished = unfinished or not mapped.is_terminal
        if unfinished and not self.agent_running():
            log.warning("local agent is not running while jobs are unfinished; restarting it")
            self._start_agent()
        return result

    def cancel(self, native_ids: Sequence[str], *, wait_s: float | None = None) -> None:
        """Ask the agent to cancel, and wait (up to the grace period) until it has."""
        wanted = [int(n) for n in native_ids if n.isdigit()]
        if not self.store.request_cancel(wanted):
            return
        self.ensure_agent()
        deadline = time.monotonic() + (self.cancel_grace_s + 5.0 if wait_s is None else wait_s)
        while time.monotonic() < deadline:
            states = self.store.task_states(wanted)
            if all(_STATE_MAP.get(s[2], JobState.UNKNOWN).is_terminal for s in states):
                return
            time.sleep(0.05)
