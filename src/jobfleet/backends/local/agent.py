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
from pathlib import Path

from jobfleet.backends.local.capacity import widen_affinity
from jobfleet.backends.local.processes import (
    become_subreaper,
)
from jobfleet.backends.local.queue import (
    LOCK_NAME,
    WAKE_NAME,
)
from jobfleet.backends.local.rounds import Rounds

__all__ = ["Agent", "main"]

log = logging.getLogger(__name__)

#: Longest delay before the pid and start time of a started job are written.
_FLUSH_DELAY_S = 0.02


class Agent(Rounds):
    """The scheduling loop. Create, then :meth:`run` (blocks until idle exit or SIGTERM)."""

    def __init__(self, directory: Path, cancel_grace_s: float, idle_exit_s: float) -> None:
        super().__init__(directory, cancel_grace_s)
        self.idle_exit_s = idle_exit_s
        self.stopping = False

    # -- life cycle ------------------------------------------------------------

    def run(self) -> int:
        lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        if not self._lock(lock_fd):
            log.info("another agent holds %s; exiting", self.directory / LOCK_NAME)
            os.close(lock_fd)
            return 0
        os.ftruncate(lock_fd, 0)
        os.write(lock_fd, f"{os.getpid()}\n".encode())
        become_subreaper()
        # Started by a pinned job or under taskset, the agent would pass that narrow
        # affinity on to every unpinned job: it runs on what the machine allows.
        widen_affinity()
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
