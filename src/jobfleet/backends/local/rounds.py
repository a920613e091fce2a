"""One round of the local agent: what it knows of its tasks, and what it decides.

The daemon around it (lock, wake-ups, signals, idle exit) is :mod:`.agent`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jobfleet.backends.local.capacity import stored_cpu_ids
from jobfleet.backends.local.dependencies import READY, WAIT, Verdicts
from jobfleet.backends.local.plan import Amount, Running, Waiting, plan
from jobfleet.backends.local.processes import (
    affinity_of,
    group_alive,
    is_job_process,
    signal_group,
    spawn_task,
)
from jobfleet.backends.local.queue import (
    CAPACITY_KEY,
    NO_INDEX,
    TERMINAL_TASK_STATES,
    QueueStore,
    TaskRow,
)
from jobfleet.jobdir import (
    exit_code_path,
    read_guard,
    read_never_met,
    read_number,
    read_setup_failed,
)
from jobfleet.owner import user_name
from jobfleet.script import EXIT_ALREADY_STARTED, EXIT_SETUP_FAILED
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.states import cancelled_by, never_met, walltime_exceeded

__all__ = ["Key", "Outcome", "Rounds"]

log = logging.getLogger(__name__)

Key = tuple[int, int]
#: (state, exit code, reason) a task ends with.
Outcome = tuple[str, int | None, str | None]

#: How long a refused duplicate start waits for the first start's marker.
_MARKER_WAIT_S = 10.0
#: How the reason of a task held for want of capacity starts.
_HELD = "held: "


@dataclass(slots=True)
class _Run:
    """What the agent knows of one started task's processes."""

    pid: int | None  # the script's pid, which is also its process group and session
    child: bool  # our child (reaped through waitpid) or adopted (watched through /proc)
    ending: str | None = None  # "timeout" or "cancelled" once the agent decided to end it
    kill_at: float | None = None  # when to send SIGKILL to what is left of the group
    outcome: Outcome | None = None  # set when the script ended while the group drains
    verify_until: float | None = None  # waiting for a first start's marker (pid is None)
    cpus: tuple[int, ...] = ()  # the CPU ids it is pinned to (none: not pinned)
    used: tuple[int, float] | None = None  # (peak RSS bytes, CPU s) from wait4, our child's


@dataclass(slots=True)
class _Capacity:
    amount: Amount
    gpu_ids: list[str] = field(default_factory=list)
    cpu_ids: list[int] = field(default_factory=list)  # empty: jobs are not pinned


def _tag(task: TaskRow) -> str:
    return "" if task.idx == NO_INDEX else f".{task.idx}"


def _need(task: TaskRow) -> Amount:
    return Amount(task.cores, task.memory, task.gpu_count)


class Rounds:
    """The agent's state and one scheduling round (:meth:`_tick`): reap what ended,
    take new jobs and cancels from the queue, watch adopted jobs, enforce walltimes,
    settle dependencies, choose what starts, write it all in one transaction, start.

    Args:
        directory: the queue directory.
        cancel_grace_s: how long a job may take to exit after SIGTERM.
    """

    def __init__(self, directory: Path, cancel_grace_s: float) -> None:
        self.directory = directory
        self.cancel_grace_s = cancel_grace_s
        self.store = QueueStore(directory)
        self.capacity = _Capacity(Amount())
        self.tasks: dict[Key, TaskRow] = {}  # every unfinished task
        # Per job (FIFO order), its tasks in index order: the pending ones, and at the
        # front maybe some no longer pending, dropped as a round meets them. A round
        # looks at what is at the front, never at every pending element of an array.
        self.queued: dict[int, deque[Key]] = {}
        self.unfinished: dict[int, int] = {}  # job -> how many of its tasks
        self.runs: dict[Key, _Run] = {}  # started tasks
        self.by_pid: dict[int, Key] = {}  # our children
        self.with_deps: set[int] = set()  # unfinished jobs that have dependencies
        self.held: set[Key] = set()  # pending tasks larger than the capacity now
        self._stored_capacity: dict[str, object] | None = None  # as last read
        self.last_job = 0
        self._updates: dict[Key, TaskRow] = {}
        self.verdicts = Verdicts(self.store)

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
        if stored == self._stored_capacity:
            return
        self._stored_capacity = stored
        gpu_ids = [str(g) for g in stored.get("gpu_ids", [])]
        amount = Amount(int(stored.get("cores", 1)), int(stored.get("memory", 0)), len(gpu_ids))
        # The CPU ids come from this agent's view of the machine, never a client's.
        cpu_ids = list(stored_cpu_ids(stored))
        if (amount, gpu_ids, cpu_ids) == (
            self.capacity.amount,
            self.capacity.gpu_ids,
            self.capacity.cpu_ids,
        ):
            return
        self.capacity = _Capacity(amount, gpu_ids, cpu_ids)
        log.info("capacity: %s, GPUs %s, pinned to CPUs %s", amount, gpu_ids, cpu_ids or "no")
        for key, task in list(self.tasks.items()):
            if key not in self.runs and task.state == "pending":
                self._hold_if_too_big(key, task)

    def _hold_if_too_big(self, key: Key, task: TaskRow) -> bool:
        """Keep a task that no longer fits waiting, saying why (or stop saying so).

        Held, not failed: the capacity may grow again (a configuration put back),
        and the user can cancel it. Submission refuses what never fitted.
        """
        cap = self.capacity.amount
        if _need(task).fits_in(cap):
            # (A restarted agent finds the reason in the queue, not in self.held.)
            if key in self.held or (task.reason or "").startswith(_HELD):
                self.held.discard(key)
                task.reason = None
                self._save(key, task)
            return False
        reason = (
            f"{_HELD}asks for {task.cores} cores, {task.memory} bytes and {task.gpu_count} GPUs; "
            f"the local backend now has {cap.cores}, {cap.memory} and {cap.gpus}: "
            "raise local.cores, local.memory or local.gpus again, or cancel it"
        )
        if task.reason != reason:
            log.warning("job %s%s: %s", task.jf_id, _tag(task), reason)
            task.reason = reason
            self._save(key, task)
        self.held.add(key)
        return True

    def _load_new(self) -> None:
        for task in self.store.active_tasks(after_job=self.last_job):
            key = (task.job, task.idx)
            self.last_job = max(self.last_job, task.job)
            self.tasks[key] = task
            self.queued.setdefault(task.job, deque()).append(key)
            self.unfinished[task.job] = self.unfinished.get(task.job, 0) + 1
            if task.deps:
                self.with_deps.add(task.job)
            if task.state == "pending":
                self._hold_if_too_big(key, task)

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
                t.max_rss,
                t.cpu_time,
                t.job,
                t.idx,
            )
            for t in self._updates.values()
        ]
        with self.store.write() as db:
            db.executemany(
                "UPDATE tasks SET state=?, pid=?, started_at=?, exit_code=?, reason=?, gpus=?,"
                " ending=?, ended_at=coalesce(ended_at, ?), max_rss=coalesce(?, max_rss),"
                " cpu_time=coalesce(?, cpu_time) WHERE job=? AND idx=?",
                rows,
            )
        self._updates.clear()

    def _finish(self, key: Key, state: str, exit_code: int | None, reason: str | None) -> None:
        task = self.tasks.pop(key)
        left = self.unfinished.pop(task.job, 1) - 1
        if left:
            self.unfinished[task.job] = left
        else:
            self.with_deps.discard(task.job)
            self.queued.pop(task.job, None)
        self.held.discard(key)
        task.state, task.exit_code, task.reason = state, exit_code, reason
        self._save(key, task)
        run = self.runs.pop(key, None)
        if run is not None and run.used is not None:
            task.max_rss, task.cpu_time = run.used
        if run is not None and run.pid is not None:
            self.by_pid.pop(run.pid, None)
        log.info("job %s%s: %s (exit code %s)", task.jf_id, _tag(task), state, exit_code)

    @staticmethod
    def _outcome(ending: str | None, code: int | None, task: TaskRow) -> Outcome:
        # Only this user's processes may ask this agent (its queue is the user's own).
        if ending == "timeout":
            return "timeout", code, walltime_exceeded(task.walltime)
        if ending == "cancelled":
            return "cancelled", code, cancelled_by(user_name())
        if code is None:
            return "lost", None, "the job's script ended without recording an exit code"
        if code == EXIT_SETUP_FAILED:  # the script says which set-up step failed
            return "failed", code, read_setup_failed(task.job_dir, task.index)
        if code == EXIT_DEPENDENCY_NEVER_MET:  # a study's point (jobfleet.studies.launch)
            why = read_never_met(task.job_dir, task.index)
            if why is not None:  # else a command that exited 196 by itself
                return "cancelled", None, never_met(why)
        return ("completed" if code == 0 else "failed"), code, None

    def _reap(self, now: float) -> None:
        while True:
            try:
                # wait4: the script's resource usage, its own and that of the processes
                # it waited for (its command): peak RSS (KiB on Linux), CPU time.
                pid, status, rusage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            key = self.by_pid.pop(pid, None)  # else a reparented grandchild: just reaped
            if key is not None and key in self.runs:
                cpu = round(rusage.ru_utime + rusage.ru_stime, 6)
                self.runs[key].used = (rusage.ru_maxrss * 1024, cpu)
                self._script_ended(key, os.waitstatus_to_exitcode(status), now)

    def _script_ended(self, key: Key, status: int | None, now: float) -> None:
        """The job's script (the group leader) is gone; ``status`` when it was our child."""
        task, run = self.tasks[key], self.runs[key]
        if status == EXIT_ALREADY_STARTED and run.child:
            # Our start was refused: an earlier start of this task is the real one.
            guard = read_guard(task.job_dir, task.index)
            if guard is None or guard.pid != run.pid:
                run.pid, run.child = None, False
                run.verify_until = now + _MARKER_WAIT_S
                self._watch(now)
                return
        recorded = read_number(exit_code_path(task.job_dir, task.index))
        if recorded is None and status is not None:
            recorded = 128 - status if status < 0 else status
        outcome = self._outcome(run.ending, recorded, task)
        if run.pid is not None and group_alive(run.pid):
            if run.ending is None:
                # The script ended, processes it left behind end with it (as
                # under a batch scheduler's process tracking).
                signal_group(run.pid, signal.SIGKILL)
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
        if pid is not None and is_job_process(pid, task.script):
            run.pid, run.child, run.verify_until = pid, False, None
            if self.capacity.cpu_ids:  # its CPUs stay taken while it runs
                run.cpus = affinity_of(pid)
            if task.state != "running" or task.pid != pid:
                task.state, task.pid = "running", pid
                task.started_at = task.started_at or time.time()
                self._save(key, task)
            if run.ending:
                signal_group(pid, signal.SIGTERM)
            log.info("job %s%s: adopted running process %s", task.jf_id, _tag(task), pid)
            return
        run.pid = None
        code = read_number(exit_code_path(task.job_dir, task.index))
        self._finish(key, *self._outcome(run.ending, code, task))

    def _watch(self, now: float) -> None:
        """Adopted scripts that ended, groups that drained, markers that appeared."""
        for key, run in list(self.runs.items()):
            task = self.tasks[key]
            if run.outcome is not None:
                if run.pid is None or not group_alive(run.pid):
                    self._finish(key, *run.outcome)
            elif run.verify_until is not None:
                guard = read_guard(task.job_dir, task.index)
                if guard is not None:  # the first start runs, or has recorded its code
                    self._adopt(key, guard.pid)
                elif now > run.verify_until:
                    self._finish(key, "lost", None, "started twice, and the first start vanished")
            elif not run.child and run.pid is not None and not is_job_process(run.pid, task.script):
                self._script_ended(key, None, now)

    def _reconcile(self) -> None:
        """Take over from a previous agent: adopt live jobs, settle finished ones."""
        self._load_new()
        for key, task in list(self.tasks.items()):
            if task.state == "pending":
                continue
            guard = read_guard(task.job_dir, task.index)
            pid = guard.pid if guard is not None and guard.pid is not None else task.pid
            if guard is not None or (pid is not None and is_job_process(pid, task.script)):
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
            signal_group(run.pid, signal.SIGTERM)

    def _handle_cancels(self, now: float) -> None:
        for job, idx, name in self.store.signal_requests():
            run = self.runs.get((job, idx))
            if run is not None and run.pid is not None:
                log.info("job %s: sending SIG%s", self.tasks[(job, idx)].jf_id, name)
                signal_group(run.pid, signal.Signals[f"SIG{name}"])
            self.store.clear_signal(job, idx)
        for job, idx in self.store.cancel_requests():
            key = (job, idx)
            task = self.tasks.get(key)
            if task is None:
                continue
            run = self.runs.get(key)
            if run is None:
                self._finish(
                    key, "cancelled", None, f"{cancelled_by(user_name())} before it started"
                )
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
                signal_group(run.pid, signal.SIGKILL)
                run.kill_at = now + 5.0  # keep trying until it is gone

    # -- dependencies and choosing -------------------------------------------------

    def _resolve_dependencies(self, now: float) -> None:
        """Cancel tasks whose dependencies can never be met, through whole chains.

        A job's tasks share its dependencies: one verdict per job, from its first
        pending task."""
        changed = bool(self.with_deps)
        while changed:
            changed = False
            self._flush()  # outcomes of jobs that just ended are read from the queue
            self.verdicts.new_round(set(self.unfinished))
            for job in list(self.with_deps):
                first = next(self._pending(job), None)
                if first is None:
                    continue
                verdict = self.verdicts.verdict(first[1])
                if verdict not in (READY, WAIT):
                    for key, _ in list(self._pending(job)):
                        self._finish(key, "cancelled", None, never_met(verdict))
                    changed = True

    def _pending(self, job: int) -> Iterator[tuple[Key, TaskRow]]:
        """The pending tasks of ``job`` in index order; those no longer pending at the
        front of its queue are dropped on the way."""
        keys = self.queued.get(job)
        while keys:
            task = self.tasks.get(keys[0])
            if task is not None and task.state == "pending":
                break
            keys.popleft()
        for key in keys or ():
            task = self.tasks.get(key)
            if task is not None and task.state == "pending":
                yield key, task

    def _eligible(self) -> Iterator[Waiting[Key]]:
        """Tasks that may start, in FIFO order. Of one job (its tasks ask for the same),
        at most as many as there are cores: every task takes a core, so no round starts
        more, and one that does not start means its identical followers do not either.
        """
        in_flight: dict[int, int] = {}
        for job, _ in self.runs:
            in_flight[job] = in_flight.get(job, 0) + 1
        most = max(self.capacity.amount.cores, 1)
        for job in list(self.queued):
            # Each turn yields or breaks: ``offered`` tasks of the job were yielded.
            for offered, (key, task) in enumerate(self._pending(job)):
                if key in self.held or offered >= most:
                    break
                if task.deps and self.verdicts.get(task.job) != READY:
                    break
                if task.max_concurrent is not None:
                    if in_flight.get(task.job, 0) >= task.max_concurrent:
                        break
                    # Counted as if started, so one pass never exceeds the limit.
                    in_flight[task.job] = in_flight.get(task.job, 0) + 1
                yield Waiting(key, _need(task), task.walltime)
            if not self.queued.get(job, True):
                del self.queued[job]  # nothing pending left (its tasks run or ended)

    def _choose(self, now: float) -> list[Key]:
        running = [
            Running(_need(t), (t.started_at or now) + t.walltime if t.walltime else None)
            for t in (self.tasks[key] for key in self.runs)
        ]
        chosen = plan(self.capacity.amount, running, self._eligible(), now)
        taken = {g for key in self.runs for g in (self.tasks[key].gpus or "").split(",") if g}
        free_gpus = [g for g in self.capacity.gpu_ids if g not in taken]
        held = {c for run in self.runs.values() for c in run.cpus}
        free_cpus = [c for c in self.capacity.cpu_ids if c not in held]
        for key in chosen:
            task = self.tasks[key]
            gpus, free_gpus = free_gpus[: task.gpu_count], free_gpus[task.gpu_count :]
            task.state, task.gpus = "starting", ",".join(gpus)
            # As many CPUs as cores; fewer free (capacity just shrank): not pinned.
            cpus = tuple(free_cpus[: task.cores]) if len(free_cpus) >= task.cores else ()
            free_cpus = free_cpus[len(cpus) :]
            self.runs[key] = _Run(pid=None, child=True, cpus=cpus)
            self._save(key, task)
        return chosen

    def _spawn(self, keys: list[Key]) -> None:
        for key in keys:
            task = self.tasks[key]
            try:
                pid = spawn_task(task, self.runs[key].cpus)
            except OSError as exc:
                log.error("job %s%s: cannot start: %s", task.jf_id, _tag(task), exc)
                self._finish(key, "failed", None, f"could not start: {exc}")
                continue
            self.runs[key].pid = pid
            self.by_pid[pid] = key
            task.state, task.pid, task.started_at = "running", pid, time.time()
            self._save(key, task)
