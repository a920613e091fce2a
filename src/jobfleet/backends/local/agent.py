"""The local agent: a per-user daemon that runs the local backend's jobs.

Design (see docs/local-backend.md):

* One agent per queue directory, guaranteed by an exclusive ``flock`` on
  ``agent.lock`` held for the agent's life. Clients start one on demand and
  start a new one whenever none holds the lock, so a dead agent is replaced
  at the next submit, status or cancel.
* The agent is the only writer of task states. Clients enqueue jobs and ask
  for cancellation in the queue database, then write a byte to the ``wake``
  FIFO. Children's exits wake it through SIGCHLD.
* Jobs run as ``/bin/sh job.sh`` in their own session (process group), so they
  outlive the agent and the submitter, and a cancel or time-out signals the
  whole group (SIGTERM, then SIGKILL after the grace period).
* No job is started twice: a task is marked ``starting`` (committed) before
  its process is created, and the job script itself refuses a second start
  (a ``noclobber`` marker holding its PID, exit status 197). A restarted
  agent adopts still-running jobs through that marker and takes the outcome
  of finished ones from their exit-code files.
* The agent exits after ``idle_exit_s`` with nothing to do, releasing its
  lock while it holds the queue's write lock, so a job enqueued at that
  moment is either seen by it or finds no agent and starts a new one.
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
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from jobfleet.backends.local.plan import Amount, Running, Waiting, plan
from jobfleet.backends.local.queue import (
    LOCK_NAME,
    NO_INDEX,
    TERMINAL_TASK_STATES,
    WAKE_NAME,
    QueueStore,
    TaskRow,
)
from jobfleet.script import EXIT_ALREADY_STARTED, LOCAL, exit_code_path, started_path

__all__ = ["Agent", "main"]

log = logging.getLogger(__name__)

Key = tuple[int, int]


@dataclass(slots=True)
class _Proc:
    """A job process being watched: our child, or adopted from a previous agent."""

    pid: int
    child: bool
    proc_start: str | None = None


def _proc_alive(pid: int, proc_start: str | None) -> tuple[bool, str | None]:
    """Whether ``pid`` is a live (not zombie) process started at ``proc_start``.

    Orphans of a dead agent are reparented to PID 1, which in containers may
    never reap them, so a zombie counts as dead; the start time guards
    against PID reuse.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return False, None
    fields = stat[stat.rfind(")") + 2 :].split()
    state, start = fields[0], fields[19]
    if state in ("Z", "X"):
        return False, start
    if proc_start is not None and start != proc_start:
        return False, start
    return True, start


def _read_int(path: str) -> int | None:
    """The number in a marker or exit-code file; None until it is fully written
    (the job script writes it in one go, ending with a newline)."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
        return int(text) if text.endswith("\n") else None
    except (OSError, ValueError):
        return None


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


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - only if the group changed owner
        log.warning("process group %s: no permission to send signal %s", pid, sig)


class Agent:
    """The scheduling loop. Create, then :meth:`run` (blocks until idle exit or SIGTERM)."""

    def __init__(
        self, directory: Path, capacity: Amount, cancel_grace_s: float, idle_exit_s: float
    ) -> None:
        self.directory = directory
        self.capacity = capacity
        self.cancel_grace_s = cancel_grace_s
        self.idle_exit_s = idle_exit_s
        self.store = QueueStore(directory)
        self.tasks: dict[Key, TaskRow] = {}  # every unfinished task, FIFO order
        self.with_deps: set[Key] = set()  # unfinished tasks that have dependencies
        self.procs: dict[Key, _Proc] = {}
        self.by_pid: dict[int, Key] = {}
        self.ending: dict[Key, str] = {}  # final state decided by us: timeout / cancelled
        self.kill_at: dict[Key, float] = {}
        self.gpus_of: dict[Key, list[int]] = {}
        self.free_gpus = list(range(capacity.gpus))
        self.outcomes: dict[int, tuple[bool, bool]] = {}  # finished jobs: (ended, ok)
        self.last_job = 0
        self.stopping = False
        self._updates: dict[Key, TaskRow] = {}
        self._active_jobs: set[int] = set()
        self._verdicts: dict[int, str] = {}

    # -- life cycle ------------------------------------------------------------

    def run(self) -> int:
        lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
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
        log.info("agent %s started: capacity %s", os.getpid(), self.capacity)
        try:
            self._reconcile()
            idle_since: float | None = None
            look_at_queue = True
            while not self.stopping:
                now = time.time()
                self._tick(now, look_at_queue)
                if self.tasks or self.procs:
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
            os.close(wake_w)
            os.close(wake_r)
            os.close(lock_fd)

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
        deadlines = list(self.kill_at.values())
        for key in self.procs:
            task = self.tasks[key]
            if task.walltime and task.started_at and key not in self.ending:
                deadlines.append(task.started_at + task.walltime)
        if any(not p.child for p in self.procs.values()):
            deadlines.append(now + 0.5)  # adopted processes are watched by polling
        if idle_since is not None:
            deadlines.append(idle_since + self.idle_exit_s)
        if not deadlines:
            return 5.0  # a safety net; wake-ups come through the FIFO and SIGCHLD
        return min(max(min(deadlines) - now, 0.0), 5.0)

    # -- one round ---------------------------------------------------------------

    def _tick(self, now: float, look_at_queue: bool = True) -> None:
        self._reap(now)
        if look_at_queue:
            self._load_new()
            self._handle_cancels(now)
        self._watch_adopted(now)
        self._enforce_walltimes(now)
        self._resolve_dependencies(now)
        starting = self._choose(now)
        # One transaction: what ended, what is about to start (committed before
        # any process is created), and the pids of what started last round.
        self._flush()
        if starting:
            self._spawn(starting, now)

    def _load_new(self) -> None:
        for task in self.store.active_tasks(after_job=self.last_job):
            key = (task.job, task.idx)
            self.tasks[key] = task
            if task.deps:
                self.with_deps.add(key)
            self.last_job = max(self.last_job, task.job)

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
                now if t.state in TERMINAL_TASK_STATES else None,
                t.job,
                t.idx,
            )
            for t in self._updates.values()
        ]
        with self.store.write() as db:
            db.executemany(
                "UPDATE tasks SET state=?, pid=?, started_at=?, exit_code=?, reason=?,"
                " ended_at=coalesce(ended_at, ?) WHERE job=? AND idx=?",
                rows,
            )
        self._updates.clear()

    def _finish(self, key: Key, state: str, exit_code: int | None, reason: str | None) -> None:
        task = self.tasks.pop(key)
        self.with_deps.discard(key)
        task.state, task.exit_code, task.reason = state, exit_code, reason
        self._save(key, task)
        proc = self.procs.pop(key, None)
        if proc is not None:
            self.by_pid.pop(proc.pid, None)
        self.ending.pop(key, None)
        self.kill_at.pop(key, None)
        self.free_gpus.extend(self.gpus_of.pop(key, []))
        self.free_gpus.sort()
        log.info("job %s%s: %s (exit code %s)", task.jf_id, _tag(task), state, exit_code)

    def _outcome_of_exit(self, key: Key, code: int | None) -> tuple[str, int | None, str | None]:
        decided = self.ending.get(key)
        if decided == "timeout":
            return "timeout", code, "walltime exceeded"
        if decided == "cancelled":
            return "cancelled", code, "cancelled by user"
        if code is None:
            return "lost", None, "process ended without recording an exit code"
        return ("completed" if code == 0 else "failed"), code, None

    def _reap(self, now: float) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            key = self.by_pid.get(pid)
            if key is None or key not in self.tasks:
                continue
            task = self.tasks[key]
            code = os.waitstatus_to_exitcode(status)
            marker = _read_int(started_path(task.job_dir, task.index))
            if code == EXIT_ALREADY_STARTED and marker is not None and marker != pid:
                # Our start was refused: an earlier start of this task is the real one.
                self.by_pid.pop(pid, None)
                self._adopt(key, marker)
                continue
            recorded = _read_int(exit_code_path(task.job_dir, task.index))
            if recorded is None and code is not None:
                recorded = 128 - code if code < 0 else code
            self._finish(key, *self._outcome_of_exit(key, recorded))

    def _adopt(self, key: Key, pid: int) -> None:
        alive, start = _proc_alive(pid, None)
        task = self.tasks[key]
        if alive:
            self.procs[key] = _Proc(pid, child=False, proc_start=start)
            task.state, task.pid = "running", pid
            task.started_at = task.started_at or time.time()
            self._save(key, task)
            log.info("job %s%s: adopted running process %s", task.jf_id, _tag(task), pid)
        else:
            code = _read_int(exit_code_path(task.job_dir, task.index))
            self.procs.pop(key, None)
            self._finish(key, *self._outcome_of_exit(key, code))

    def _watch_adopted(self, now: float) -> None:
        for key, proc in list(self.procs.items()):
            if proc.child:
                continue
            alive, _ = _proc_alive(proc.pid, proc.proc_start)
            if not alive:
                task = self.tasks[key]
                code = _read_int(exit_code_path(task.job_dir, task.index))
                self._finish(key, *self._outcome_of_exit(key, code))

    def _reconcile(self) -> None:
        """Take over from a previous agent: adopt live jobs, settle finished ones."""
        self._load_new()
        for key, task in list(self.tasks.items()):
            if task.state == "pending":
                continue
            marker = _read_int(started_path(task.job_dir, task.index))
            pid = marker if marker is not None else task.pid
            if pid is not None and (marker is not None or _proc_alive(pid, None)[0]):
                self._adopt(key, pid)
            else:
                # Never reached its first line: safe to start (the script's
                # guard refuses a second start should the first one wake up).
                task.state, task.pid = "pending", None
                self._save(key, task)
        self._flush()

    def _signal_task(self, key: Key, sig: int) -> None:
        proc = self.procs.get(key)
        if proc is not None:
            _signal_group(proc.pid, sig)

    def _handle_cancels(self, now: float) -> None:
        for job, idx in self.store.cancel_requests():
            key = (job, idx)
            task = self.tasks.get(key)
            if task is None or key in self.ending:
                continue
            if task.state == "pending":
                self._finish(key, "cancelled", None, "cancelled by user before it started")
            else:
                self.ending[key] = "cancelled"
                self.kill_at[key] = now + self.cancel_grace_s
                self._signal_task(key, signal.SIGTERM)

    def _enforce_walltimes(self, now: float) -> None:
        for key in self.procs:
            task = self.tasks[key]
            if (
                task.walltime
                and task.started_at
                and key not in self.ending
                and now >= task.started_at + task.walltime
            ):
                self.ending[key] = "timeout"
                self.kill_at[key] = now + self.cancel_grace_s
                self._signal_task(key, signal.SIGTERM)
        for key, when in list(self.kill_at.items()):
            if now >= when:
                self._signal_task(key, signal.SIGKILL)
                self.kill_at[key] = now + 5.0  # keep trying until it is gone

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

    def _dependency_verdict(self, task: TaskRow, cache: dict[int, str]) -> str:
        """``ready``, ``wait`` or a reason why the dependency can never be met."""
        if task.job in cache:
            return cache[task.job]
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
                    cache[task.job] = verdict
                    return verdict
        cache[task.job] = verdict
        return verdict

    def _jf_id(self, job: int) -> str:
        rows = self.store.read("SELECT jf_id FROM jobs WHERE id = ?", (job,))
        return str(rows[0][0]) if rows else f"local:{job}"

    def _resolve_dependencies(self, now: float) -> None:
        """Cancel tasks whose dependencies can never be met, through whole chains."""
        changed = bool(self.with_deps)
        while changed:
            changed = False
            self._flush()  # outcomes of jobs that just ended are read from the queue
            self._active_jobs = {job for job, _ in self.tasks}
            self._verdicts = {}
            for key, task in list(self._pending_with_deps()):
                verdict = self._dependency_verdict(task, self._verdicts)
                if verdict not in ("ready", "wait"):
                    self._finish(key, "cancelled", None, verdict)
                    changed = True

    def _pending_with_deps(self) -> Iterator[tuple[Key, TaskRow]]:
        for key in self.with_deps:
            task = self.tasks.get(key)
            if task is not None and task.state == "pending":
                yield key, task

    def _eligible(self) -> Iterator[Waiting]:
        in_flight: dict[int, int] = {}
        for job, _ in self.procs:
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
            yield Waiting(key, Amount(task.cores, task.memory, task.gpus), task.walltime)

    def _choose(self, now: float) -> list[Key]:
        running = [
            Running(
                Amount(t.cores, t.memory, t.gpus),
                (t.started_at or now) + t.walltime if t.walltime else None,
            )
            for t in (self.tasks[key] for key in self.procs)
        ]
        chosen = plan(self.capacity, running, self._eligible(), now)
        keys: list[Key] = []
        for chosen_key in chosen:
            key = cast(Key, chosen_key)
            task = self.tasks[key]
            task.state = "starting"
            self._save(key, task)
            keys.append(key)
        return keys

    def _spawn(self, keys: list[Key], now: float) -> None:
        for key in keys:
            task = self.tasks[key]
            env = dict(task.env)
            if task.index is not None:
                env["JOBFLEET_ARRAY_INDEX"] = str(task.index)
            else:
                env.pop("JOBFLEET_ARRAY_INDEX", None)
            if self.capacity.gpus:
                gpus, self.free_gpus = self.free_gpus[: task.gpus], self.free_gpus[task.gpus :]
                self.gpus_of[key] = gpus
                env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
            tag = _tag(task)
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, f"{task.job_dir}/stdout{tag}", _APPEND, 0o644),
                (os.POSIX_SPAWN_OPEN, 2, f"{task.job_dir}/stderr{tag}", _APPEND, 0o644),
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
            self.procs[key] = _Proc(pid, child=True)
            self.by_pid[pid] = key
            task.state, task.pid, task.started_at = "running", pid, time.time()
            self._save(key, task)


_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND
#: Longest delay before the pid and start time of a started job are written.
_FLUSH_DELAY_S = 0.02


def _tag(task: TaskRow) -> str:
    return "" if task.idx == NO_INDEX else f".{task.idx}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m jobfleet.backends.local.agent --dir DIR ...``."""
    parser = argparse.ArgumentParser(prog="jobfleet-local-agent")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--cores", required=True, type=int)
    parser.add_argument("--memory", required=True, type=int)
    parser.add_argument("--gpus", required=True, type=int)
    parser.add_argument("--cancel-grace", type=float, default=10.0)
    parser.add_argument("--idle-exit", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    agent = Agent(
        args.dir,
        Amount(args.cores, args.memory, args.gpus),
        cancel_grace_s=args.cancel_grace,
        idle_exit_s=args.idle_exit,
    )
    try:
        return agent.run()
    except Exception:
        log.exception("agent %s crashed; the next client call starts a new one", os.getpid())
        return 1


if __name__ == "__main__":
    sys.exit(main())
