"""The local agent: a per-user daemon that runs the local backend's jobs.

Design (see docs/local-backend.md):

* One agent per queue directory (one per user, home and host), guaranteed by
  an exclusive ``flock`` on ``agent.lock`` held for the agent's life. Clients
  start one on demand and whenever none holds the lock, so a dead agent is
  replaced at the next submit, status or cancel.
* The agent is the only writer of task states. Clients enqueue jobs, ask for
  cancellation and store the capacity in the queue database, then write a
  byte to the ``wake`` FIFO. Children's exits wake it through SIGCHLD.
* Jobs run as ``/bin/sh job.sh`` in their own session and process group, so
  they outlive the agent and the submitter. A cancel or time-out signals the
  whole group (SIGTERM, then SIGKILL after the grace period), and the job's
  resources stay taken until every process of the group is gone.
* No job is started twice: a task is marked ``starting`` (committed) before
  its process is created, and the job script itself refuses a second start
  (a ``noclobber`` marker holding its PID, exit status 197). A restarted agent
  adopts a still-running job only if that PID is still the job's script (its
  command line names the script), and otherwise takes the outcome from the
  exit-code file. GPU assignments and decisions to end a job are written to
  the queue, so a restarted agent keeps them.
* The agent exits after ``idle_exit_s`` with nothing to do, releasing its lock
  while it holds the queue's write lock, so a job enqueued at that moment is
  either seen by it or finds no agent and starts a new one.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jobfleet.backends.local.plan import Amount, Running, Waiting, plan
from jobfleet.backends.local.queue import (
    CAPACITY_KEY,
    LOCK_NAME,
    NO_INDEX,
    TERMINAL_TASK_STATES,
    WAKE_NAME,
    QueueStore,
    TaskRow,
)
from jobfleet.jobdir import exit_code_path, started_path
from jobfleet.script import EXIT_ALREADY_STARTED, LOCAL

__all__ = ["Agent", "main"]

log = logging.getLogger(__name__)

Key = tuple[int, int]
#: (state, exit code, reason) a task ends with.
Outcome = tuple[str, int | None, str | None]

#: Longest delay before the pid and start time of a started job are written.
_FLUSH_DELAY_S = 0.02
#: How long a refused duplicate start waits for the first start's marker.
_MARKER_WAIT_S = 10.0
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


@dataclass(slots=True)
class _Run:
    """What the agent knows of one started task's processes."""

    pid: int | None  # the script's pid, which is also its process group and session
    child: bool  # our child (reaped through waitpid) or adopted (watched through /proc)
    ending: str | None = None  # "timeout" or "cancelled" once the agent decided to end it
    kill_at: float | None = None  # when to send SIGKILL to what is left of the group
    outcome: Outcome | None = None  # set when the script ended while the group drains
    verify_until: float | None = None  # waiting for a first start's marker (pid is None)


@dataclass(slots=True)
class _Capacity:
    amount: Amount
    gpu_ids: list[str] = field(default_factory=list)


def _read_int(path: str) -> int | None:
    """The number in a marker or exit-code file; None until it is fully written
    (the job script writes it in one go, ending with a newline)."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
        return int(text) if text.endswith("\n") else None
    except (OSError, ValueError):
        return None


def _is_job_process(pid: int, script: str) -> bool:
    """Whether ``pid`` is alive (not a zombie) and is this job's script.

    The command line must name the script: after a reboot or a long time a
    recorded PID may belong to anything, which must never be adopted or signalled.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2 :].split()[0]
    return state not in ("Z", "X") and os.fsencode(script) in argv


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is alive (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a group we do not own
        return True
    # Members may be zombies whose parent is gone: look at each one.
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _become_subreaper() -> None:
    """Adopt orphaned grandchildren (Linux), so they are reaped, not left as zombies.

    A job's processes whose parent died are otherwise handed to PID 1, which in
    many containers never reaps them.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        log.debug("cannot become a child subreaper on this system")


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - only if the group changed owner
        log.warning("process group %s: no permission to send signal %s", pgid, sig)


def _tag(task: TaskRow) -> str:
    return "" if task.idx == NO_INDEX else f".{task.idx}"


def _need(task: TaskRow) -> Amount:
    return Amount(task.cores, task.memory, task.gpu_count)


class Agent:
    """The scheduling loop. Create, then :meth:`run` (blocks until idle exit or SIGTERM)."""

    def __init__(self, directory: Path, cancel_grace_s: float, idle_exit_s: float) -> None:
        self.directory = directory
        self.cancel_grace_s = cancel_grace_s
        self.idle_exit_s = idle_exit_s
        self.store = QueueStore(directory)
        self.capacity = _Capacity(Amount())
        self.tasks: dict[Key, TaskRow] = {}  # every unfinished task, FIFO order
        self.runs: dict[Key, _Run] = {}  # started tasks
        self.by_pid: dict[int, Key] = {}  # our children
        self.with_deps: set[Key] = set()  # unfinished tasks that have dependencies
        self.outcomes: dict[int, tuple[bool, bool]] = {}  # finished jobs: (ended, all ok)
        self.last_job = 0
        self.stopping = False
        self._updates: dict[Key, TaskRow] = {}
        self._active_jobs: set[int] = set()
        self._verdicts: dict[int, str] = {}

    # -- life cycle ------------------------------------------------------------

    def run(self) -> int:
        lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        if not self._lock(lock_fd):
            log.info("another agent holds %s; exiting", self.directory / LOCK_NAME)
            os.close(lock_fd)
            return 0
        os.ftruncate(lock_fd, 0)
        os.write(lock_fd, f"{os.getpid()}\n".encode())
        _become_subreaper()
        wake_r, wake_w = self._open_wake()
        sig_r, sig_w = os.pipe()
        os.set_blocking(sig_r, False)
        os.set_blocking(sig_w, False)
        signal.set_wakeup_fd(sig_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        try:
            self._refresh_capacity()
            log.info("agent %s started: capacity %s", os.getpid(), self.capacity)
            self._reconcile()
            idle_since: float | None = None
            look_at_queue = True
            while not self.stopping:
                now = time.time()
                self._tick(now, look_at_queue)
                if self.tasks or self.runs:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= self.idle_exit_s and self._release_if_idle(lock_fd):
                    log.info("agent %s: idle for %.0fs, exiting", os.getpid(), now - idle_since)
                    return 0
                timeout = self._next_timeout(now, idle_since)
                if self._updates:
                    # States of just-started jobs are written with the next round's
                    # transaction, or after this short pause if nothing else happens.
                    timeout = min(timeout, _FLUSH_DELAY_S)
                ready, _, _ = select.select([wake_r, sig_r], [], [], timeout)
                # Clients write to the FIFO after enqueuing or asking to cancel; a
                # child's exit alone (SIGCHLD) needs no look at the queue.
                look_at_queue = wake_r in ready or not ready
                for fd in ready:
                    try:
                        while os.read(fd, 4096):
                            pass
                    except BlockingIOError:
                        pass
            log.info("agent %s: stopped by signal; running jobs continue", os.getpid())
            return 0
        finally:
            with contextlib.suppress(Exception):
                self._flush()  # what was decided is kept for the next agent
            os.close(wake_w)
            os.close(wake_r)
            os.close(lock_fd)

    @staticmethod
    def _lock(lock_fd: int, wait_s: float = 2.0) -> bool:
        """Take the agent lock, trying for a moment: a client checking whether an
        agent runs holds it very briefly."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)

    def _open_wake(self) -> tuple[int, int]:
        path = self.directory / WAKE_NAME
        with contextlib.suppress(FileExistsError):
            os.mkfifo(path, 0o600)
        wake_r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        # Holding a write end ourselves means readers never see end-of-file.
        wake_w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        return wake_r, wake_w

    def _on_term(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _release_if_idle(self, lock_fd: int) -> bool:
        with self.store.write() as db:
            active = db.execute(
                "SELECT count(*) FROM tasks WHERE state IN ('pending','starting','running')"
            ).fetchone()[0]
            if active:
                return False
            # Still inside the write transaction: an enqueue now waits for us,
            # then finds the lock free and starts a new agent.
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            return True

    def _next_timeout(self, now: float, idle_since: float | None) -> float:
        deadlines: list[float] = []
        for key, run in self.runs.items():
            if run.kill_at is not None:
                deadlines.append(run.kill_at)
            task = self.tasks[key]
            if task.walltime and task.started_at and run.ending is None:
                deadlines.append(task.started_at + task.walltime)
            if not run.child or run.outcome is not None:
                deadlines.append(now + 0.5)  # watched by looking, not woken by SIGCHLD
        if idle_since is not None:
            deadlines.append(idle_since + self.idle_exit_s)
        if not deadlines:
            return 5.0  # a safety net; wake-ups come through the FIFO and SIGCHLD
        return min(max(min(deadlines) - now, 0.0), 5.0)

    # -- one round ---------------------------------------------------------------

    def _tick(self, now: float, look_at_queue: bool = True) -> None:
        self._reap(now)
        if look_at_queue:
            self._refresh_capacity()
            self._load_new()
            self._handle_cancels(now)
        self._watch(now)
        self._enforce_walltimes(now)
        self._resolve_dependencies(now)
        starting = self._choose(now)
        # One transaction: what ended, what is about to start (committed before
        # any process is created), and the pids of what started last round.
        self._flush()
        if starting:
            self._spawn(starting)

    def _refresh_capacity(self) -> None:
        stored = self.store.setting(CAPACITY_KEY) or {}
        gpu_ids = [str(g) for g in stored.get("gpu_ids", [])]
        amount = Amount(int(stored.get("cores", 1)), int(stored.get("memory", 0)), len(gpu_ids))
        if amount == self.capacity.amount and gpu_ids == self.capacity.gpu_ids:
            return
        self.capacity = _Capacity(amount, gpu_ids)
        log.info("capacity: %s, GPUs %s", amount, gpu_ids)
        for key, task in list(self.tasks.items()):
            if key not in self.runs:
                self._refuse_if_too_big(key, task)

    def _refuse_if_too_big(self, key: Key, task: TaskRow) -> bool:
        cap = self.capacity.amount
        if _need(task).fits_in(cap):
            return False
        self._finish(
            key,
            "failed",
            None,
            f"asks for {task.cores} cores, {task.memory} bytes and {task.gpu_count} GPUs; "
            f"the local backend now has {cap.cores}, {cap.memory} and {cap.gpus} "
            "(local.cores, local.memory, local.gpus)",
        )
        return True

    def _load_new(self) -> None:
        for task in self.store.active_tasks(after_job=self.last_job):
            key = (task.job, task.idx)
            self.last_job = max(self.last_job, task.job)
            self.tasks[key] = task
            if task.deps:
                self.with_deps.add(key)
            if task.state == "pending":
                self._refuse_if_too_big(key, task)

    def _save(self, key: Key, task: TaskRow) -> None:
        self._updates[key] = task

    def _flush(self) -> None:
        if not self._updates:
            return
        now = time.time()
        rows = [
            (
                t.state,
                t.pid,
                t.started_at,
                t.exit_code,
                t.reason,
                t.gpus,
                t.ending,
                now if t.state in TERMINAL_TASK_STATES else None,
                t.job,
                t.idx,
            )
            for t in self._updates.values()
        ]
        with self.store.write() as db:
            db.executemany(
                "UPDATE tasks SET state=?, pid=?, started_at=?, exit_code=?, reason=?, gpus=?,"
                " ending=?, ended_at=coalesce(ended_at, ?) WHERE job=? AND idx=?",
                rows,
            )
        self._updates.clear()

    def _finish(self, key: Key, state: str, exit_code: int | None, reason: str | None) -> None:
        task = self.tasks.pop(key)
        self.with_deps.discard(key)
        task.state, task.exit_code, task.reason = state, exit_code, reason
        self._save(key, task)
        run = self.runs.pop(key, None)
        if run is not None and run.pid is not None:
            self.by_pid.pop(run.pid, None)
        log.info("job %s%s: %s (exit code %s)", task.jf_id, _tag(task), state, exit_code)

    @staticmethod
    def _outcome(ending: str | None, code: int | None) -> Outcome:
        if ending == "timeout":
            return "timeout", code, "walltime exceeded"
        if ending == "cancelled":
            return "cancelled", code, "cancelled by user"
        if code is None:
            return "lost", None, "the job's script ended without recording an exit code"
        return ("completed" if code == 0 else "failed"), code, None

    def _reap(self, now: float) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            key = self.by_pid.pop(pid, None)  # else a reparented grandchild: just reaped
            if key is not None and key in self.runs:
                self._script_ended(key, os.waitstatus_to_exitcode(status), now)

    def _script_ended(self, key: Key, status: int | None, now: float) -> None:
        """The job's script (the group leader) is gone; ``status`` when it was our child."""
        task, run = self.tasks[key], self.runs[key]
        if status == EXIT_ALREADY_STARTED and run.child:
            # Our start was refused: an earlier start of this task is the real one.
            marker = _read_int(started_path(task.job_dir, task.index))
            if marker != run.pid:
                run.pid, run.child = None, False
                run.verify_until = now + _MARKER_WAIT_S
                self._watch(now)
                return
        recorded = _read_int(exit_code_path(task.job_dir, task.index))
        if recorded is None and status is not None:
            recorded = 128 - status if status < 0 else status
        outcome = self._outcome(run.ending, recorded)
        if run.pid is not None and _group_alive(run.pid):
            if run.ending is None:
                # The script ended, processes it left behind end with it (as
                # under a batch scheduler's process tracking).
                _signal_group(run.pid, signal.SIGKILL)
            else:
                run.outcome = outcome  # resources stay taken until the group is gone
                return
        self._finish(key, *outcome)

    def _adopt(self, key: Key, pid: int | None) -> None:
        """Watch a task started by an earlier agent, or settle it if it ended."""
        task = self.tasks[key]
        run = self.runs.get(key) or _Run(pid=None, child=False)
        self.runs[key] = run
        run.ending = run.ending or task.ending
        if run.ending and run.kill_at is None:
            run.kill_at = time.time() + self.cancel_grace_s
        if pid is not None and _is_job_process(pid, task.script):
            run.pid, run.child, run.verify_until = pid, False, None
            if task.state != "running" or task.pid != pid:
                task.state, task.pid = "running", pid
                task.started_at = task.started_at or time.time()
                self._save(key, task)
            if run.ending:
                _signal_group(pid, signal.SIGTERM)
            log.info("job %s%s: adopted running process %s", task.jf_id, _tag(task), pid)
            return
        run.pid = None
        code = _read_int(exit_code_path(task.job_dir, task.index))
        self._finish(key, *self._outcome(run.ending, code))

    def _watch(self, now: float) -> None:
        """Adopted scripts that ended, groups that drained, markers that appeared."""
        for key, run in list(self.runs.items()):
            task = self.tasks[key]
            if run.outcome is not None:
                if run.pid is None or not _group_alive(run.pid):
                    self._finish(key, *run.outcome)
            elif run.verify_until is not None:
                marker = _read_int(started_path(task.job_dir, task.index))
                if marker is not None:
                    self._adopt(key, marker)
                elif now > run.verify_until:
                    self._finish(key, "lost", None, "started twice, and the first start vanished")
            elif (
                not run.child and run.pid is not None and not _is_job_process(run.pid, task.script)
            ):
                self._script_ended(key, None, now)

    def _reconcile(self) -> None:
        """Take over from a previous agent: adopt live jobs, settle finished ones."""
        self._load_new()
        for key, task in list(self.tasks.items()):
            if task.state == "pending":
                continue
            marker = _read_int(started_path(task.job_dir, task.index))
            pid = marker if marker is not None else task.pid
            if marker is not None or (pid is not None and _is_job_process(pid, task.script)):
                self._adopt(key, pid)
            else:
                # It never reached its first line: safe to start (the script's
                # guard refuses a second start should the first one wake up).
                task.state, task.pid, task.gpus = "pending", None, None
                self._save(key, task)
        self._flush()

    def _end(self, key: Key, ending: str, now: float) -> None:
        """Decide to end a started task: SIGTERM now, SIGKILL after the grace period."""
        run, task = self.runs[key], self.tasks[key]
        run.ending = ending
        run.kill_at = now + self.cancel_grace_s
        task.ending = ending
        self._save(key, task)  # a restarted agent still reports timeout / cancelled
        if run.pid is not None:
            _signal_group(run.pid, signal.SIGTERM)

    def _handle_cancels(self, now: float) -> None:
        for job, idx, name in self.store.signal_requests():
            run = self.runs.get((job, idx))
            if run is not None and run.pid is not None:
                log.info("job %s: sending SIG%s", self.tasks[(job, idx)].jf_id, name)
                _signal_group(run.pid, signal.Signals[f"SIG{name}"])
            self.store.clear_signal(job, idx)
        for job, idx in self.store.cancel_requests():
            key = (job, idx)
            task = self.tasks.get(key)
            if task is None:
                continue
            run = self.runs.get(key)
            if run is None:
                self._finish(key, "cancelled", None, "cancelled by user before it started")
            elif run.ending is None:
                self._end(key, "cancelled", now)

    def _enforce_walltimes(self, now: float) -> None:
        for key, run in list(self.runs.items()):
            task = self.tasks[key]
            if (
                run.ending is None
                and task.walltime
                and task.started_at
                and now >= task.started_at + task.walltime
            ):
                self._end(key, "timeout", now)
            elif run.kill_at is not None and now >= run.kill_at and run.pid is not None:
                _signal_group(run.pid, signal.SIGKILL)
                run.kill_at = now + 5.0  # keep trying until it is gone

    # -- dependencies and choosing -------------------------------------------------

    def _job_outcome(self, job: int) -> tuple[bool, bool] | None:
        """(ended, every task completed) for a job, or None when it is unknown."""
        if job in self._active_jobs:
            return (False, False)
        if job not in self.outcomes:
            # Only final outcomes are cached: terminal is final, so they never go stale.
            outcome = self.store.job_outcomes([job]).get(job)
            if outcome is None or not outcome[0]:
                return outcome
            self.outcomes[job] = outcome
        return self.outcomes[job]

    def _dependency_verdict(self, task: TaskRow) -> str:
        """``ready``, ``wait`` or a reason why the dependency can never be met."""
        if task.job in self._verdicts:
            return self._verdicts[task.job]
        verdict = "ready"
        for kind, jobs in task.deps:
            for job in jobs:
                outcome = self._job_outcome(job)
                if outcome is None:
                    verdict = f"dependency on unknown local job {job}"
                elif not outcome[0]:
                    verdict = "wait"
                    continue
                elif kind == "after_ok" and not outcome[1]:
                    verdict = f"after_ok dependency on job {self._jf_id(job)} can never be met"
                elif kind == "after_not_ok" and outcome[1]:
                    verdict = f"after_not_ok dependency on job {self._jf_id(job)} can never be met"
                else:
                    continue
                if verdict != "wait":
                    self._verdicts[task.job] = verdict
                    return verdict
        self._verdicts[task.job] = verdict
        return verdict

    def _jf_id(self, job: int) -> str:
        return self.store.jf_ids([job]).get(job, f"local:{job}")

    def _resolve_dependencies(self, now: float) -> None:
        """Cancel tasks whose dependencies can never be met, through whole chains."""
        changed = bool(self.with_deps)
        while changed:
            changed = False
            self._flush()  # outcomes of jobs that just ended are read from the queue
            self._active_jobs = {job for job, _ in self.tasks}
            self._verdicts = {}
            for key, task in list(self._pending_with_deps()):
                verdict = self._dependency_verdict(task)
                if verdict not in ("ready", "wait"):
                    self._finish(key, "cancelled", None, verdict)
                    changed = True

    def _pending_with_deps(self) -> Iterator[tuple[Key, TaskRow]]:
        for key in self.with_deps:
            task = self.tasks.get(key)
            if task is not None and task.state == "pending":
                yield key, task

    def _eligible(self) -> Iterator[Waiting[Key]]:
        in_flight: dict[int, int] = {}
        for job, _ in self.runs:
            in_flight[job] = in_flight.get(job, 0) + 1
        for key, task in self.tasks.items():
            if task.state != "pending":
                continue
            if task.deps and self._verdicts.get(task.job, "ready") != "ready":
                continue
            if task.max_concurrent is not None:
                if in_flight.get(task.job, 0) >= task.max_concurrent:
                    continue
                # Counted as if started, so one pass never exceeds the limit.
                in_flight[task.job] = in_flight.get(task.job, 0) + 1
            yield Waiting(key, _need(task), task.walltime)

    def _choose(self, now: float) -> list[Key]:
        running = [
            Running(_need(t), (t.started_at or now) + t.walltime if t.walltime else None)
            for t in (self.tasks[key] for key in self.runs)
        ]
        chosen = plan(self.capacity.amount, running, self._eligible(), now)
        taken = {g for key in self.runs for g in (self.tasks[key].gpus or "").split(",") if g}
        free_gpus = [g for g in self.capacity.gpu_ids if g not in taken]
        for key in chosen:
            task = self.tasks[key]
            gpus, free_gpus = free_gpus[: task.gpu_count], free_gpus[task.gpu_count :]
            task.state, task.gpus = "starting", ",".join(gpus)
            self.runs[key] = _Run(pid=None, child=True)
            self._save(key, task)
        return chosen

    def _spawn(self, keys: list[Key]) -> None:
        for key in keys:
            task = self.tasks[key]
            env = dict(task.env)
            if task.index is not None:
                env["JOBFLEET_ARRAY_INDEX"] = str(task.index)
            else:
                env.pop("JOBFLEET_ARRAY_INDEX", None)
            # Only the GPUs handed to this job; none at all for a job that asked for none.
            env["CUDA_VISIBLE_DEVICES"] = task.gpus or ""
            tag = _tag(task)
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, f"{task.job_dir}/stdout{tag}", _APPEND, 0o600),
                (os.POSIX_SPAWN_OPEN, 2, f"{task.job_dir}/stderr{tag}", _APPEND, 0o600),
            ]
            try:
                pid = os.posix_spawn(
                    LOCAL.interpreter,
                    [LOCAL.interpreter, task.script],
                    env,
                    file_actions=actions,
                    setsid=True,
                )
            except OSError as exc:
                log.error("job %s%s: cannot start: %s", task.jf_id, tag, exc)
                self._finish(key, "failed", None, f"could not start: {exc}")
                continue
            self.runs[key].pid = pid
            self.by_pid[pid] = key
            task.state, task.pid, task.started_at = "running", pid, time.time()
            self._save(key, task)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m jobfleet.backends.local.agent --dir DIR ...``."""
    parser = argparse.ArgumentParser(prog="jobfleet-local-agent")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--cancel-grace", type=float, default=10.0)
    parser.add_argument("--idle-exit", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    agent = Agent(args.dir, cancel_grace_s=args.cancel_grace, idle_exit_s=args.idle_exit)
    try:
        return agent.run()
    except Exception:
        log.exception("agent %s crashed; the next client call starts a new one", os.getpid())
        return 1


if __name__ == "__main__":
    sys.exit(main())
