"""A pipe worker: what each element of a run's worker array runs
(``python -m jobfleet.pipe.worker RUN_DIR``).

It claims a block of tasks (a fresh one by moving the cursor, else one whose lease
expired or that a crashed claimer left without a lease), runs its tasks one after the
other with a heartbeat renewing the lease, appends what happened to its journal, and
streams their output into its own output file. It keeps looking while any task of
the run has not ended (tasks of a lost worker come back when its lease expires), and
leaves when every task ended, when the run is cancelled, or when its allocation
would end before the next task could.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jobfleet.pipe.model import TaskSpec
from jobfleet.pipe.resolve import Resolver
from jobfleet.pipe.store import Block, Journal, RunDir

__all__ = ["DEADLINE_ENV", "WALLTIME_ENV", "Worker", "main"]

#: The worker's walltime in seconds (set by ``pipe submit`` from the job's walltime).
WALLTIME_ENV = "JOBFLEET_PIPE_WALLTIME_S"
#: An absolute end of the allocation (Unix time), when the backend tells one.
DEADLINE_ENV = "JOBFLEET_PIPE_DEADLINE"
#: Kept free at the end of an allocation: the worker's own wrap-up.
END_MARGIN_S = 5.0


def _worker_id() -> str:
    job = os.environ.get("JOBFLEET_JOB_ID", "x")
    index = os.environ.get("JOBFLEET_ARRAY_INDEX", "") or "0"
    return f"{job}-{index}-{uuid.uuid4().hex[:8]}"


@dataclass
class _Held:
    block: Block
    epoch: int
    inherit: dict[int, int]
    tries: dict[int, int]
    lost: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None  # the task it runs now, if any


class Worker:
    """One worker process of a run."""

    def __init__(self, run_dir: str | os.PathLike[str], deadline: float | None = None) -> None:
        self.run = RunDir.open(run_dir)
        self.settings = self.run.settings
        self.id = _worker_id()
        self.journal = Journal(self.run.journal_path(self.id))
        self.resolver = Resolver(self.run)
        self.started = time.time()
        self.deadline = deadline
        self.durations: list[float] = []
        self._held: _Held | None = None
        self._stop = threading.Event()
        self._orphans: dict[int, float] = {}  # block -> when first seen without a lease
        self.ran = 0

    # -- the loop --------------------------------------------------------------------
    def serve(self) -> int:
        """Claim and run blocks until nothing is left; the number of tasks run."""
        self.run.beat(self.id)
        beat = threading.Thread(target=self._heartbeat, name="pipe-heartbeat", daemon=True)
        beat.start()
        try:
            while not self.run.cancelled:
                held = self._claim()
                if held is None:
                    if self._all_ended() or self._out_of_time(0.0):
                        break
                    time.sleep(min(self.settings.heartbeat_s, 2.0))
                    continue
                if not self._run_block(held):
                    break  # out of time: the block was handed back
        finally:
            self._stop.set()
            beat.join(timeout=5)
            self.journal.close()
            with contextlib.suppress(OSError):
                self.run.leave(self.id)
        return self.ran

    def _heartbeat(self) -> None:
        """Renew the lease held, and say the worker lives. A file system that fails for
        a moment (ESTALE, EIO) is tried again at the next beat; only a lease gone,
        superseded, or not renewed for ``lease - heartbeat`` counts as lost."""
        failing_since: float | None = None
        patience = self.settings.lease_s - self.settings.heartbeat_s
        while not self._stop.wait(self.settings.heartbeat_s):
            held = self._held
            try:
                self.run.beat(self.id)
                if held is not None:
                    start, epoch = held.block.start, held.epoch
                    if not self.run.renew(start, epoch) or self.run.superseded(start, epoch):
                        _lose(held)  # taken over: its task's result would not count
                failing_since = None
            except Exception as exc:
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                print(f"jobfleet pipe worker {self.id}: heartbeat: {exc}", file=sys.stderr)
                if held is not None and now - failing_since > patience:
                    _lose(held)  # others may take the block now: stop

    # -- claiming --------------------------------------------------------------------
    def _claim(self) -> _Held | None:
        asked = time.monotonic()
        block = self.run.claim_fresh()
        if block is not None and self.run.take_claim(block, 0, self.id):
            # A claimer that took half a lease between moving the cursor and taking the
            # lease may find its block taken as an orphan, even done: leave it to that.
            slow = time.monotonic() - asked > self.settings.lease_s / 2
            if not slow and self.run.still_ours(block.start, 0):
                return self._record_claim(block, 0, {}, {})
            self.run.drop_claim(block.start, 0)
        return self._take_over()

    def _record_claim(
        self, block: Block, epoch: int, inherit: dict[int, int], tries: dict[int, int]
    ) -> _Held:
        self.journal.write(
            {
                "k": "claim", "b": block.start, "e": epoch, "end": block.end,
                "inherit": {str(k): v for k, v in inherit.items()},
                "tries": {str(k): v for k, v in tries.items()}, "at": time.time(),
            }
        )  # fmt: skip
        self.journal.sync()  # readers decide which ends count by it: on disk first
        held = _Held(block, epoch, inherit, tries)
        self._held = held
        return held

    def _take_over(self) -> _Held | None:
        """A block whose lease expired, or that a claimer left without any lease."""
        now = self.run.beat(self.id)
        leased: set[int] = set()
        for start, epoch, end, mtime in self.run.claims():
            leased.add(start)
            if now - mtime <= self.settings.lease_s:
                continue
            block = Block(start, end)
            if self.run.take_claim(block, epoch + 1, self.id):
                self.run.drop_claim(start, epoch)
                return self._inherit(block, epoch + 1)
        return self._take_orphan(leased)

    def _take_orphan(self, leased: set[int]) -> _Held | None:
        """A block below the cursor that no claim file holds and no journal says done:
        its claimer moved the cursor and died before taking the lease. Taken once seen
        so for a whole lease (a claimer between the two steps is not an orphan).

        Looked for block by block only when the count says there is one: every block
        below the cursor has a claim recorded or a lease, usually."""
        self.resolver.refresh()
        cursor = self.run.cursor()
        known = {b for b in self.resolver.claims if b < cursor} | {b for b in leased if b < cursor}
        if len(known) >= self.run.blocks_below(cursor):
            self._orphans.clear()
            return None
        start = 0
        seen_now: set[int] = set()
        while start < cursor:
            block = self.run.block_at(start)
            if block is None:
                break
            if block.start not in known:
                seen_now.add(block.start)
                first = self._orphans.setdefault(block.start, time.monotonic())
                waited = time.monotonic() - first > self.settings.lease_s
                # Epoch 1: epoch 0 was its dead claimer's (should it wake, it finds 1).
                if waited and self.run.take_claim(block, 1, self.id):
                    return self._inherit(block, 1)
            start = block.end
        self._orphans = {b: t for b, t in self._orphans.items() if b in seen_now}
        return None

    def _inherit(self, block: Block, epoch: int) -> _Held:
        self.resolver.refresh()
        done, tries = self.resolver.inherit(block.start, block.end)
        return self._record_claim(block, epoch, done, tries)

    def _all_ended(self) -> bool:
        """Every block of the run is done (incremental: no look at each task)."""
        self.resolver.refresh()
        total = self.run.total()
        if self.run.cursor() < total:
            return False
        return len(self.resolver.finished) >= self.run.blocks_below(total)

    # -- running -------------------------------------------------------------------
    def _out_of_time(self, needed: float) -> bool:
        if self.deadline is None:
            return False
        return time.time() + needed + END_MARGIN_S > self.deadline

    def _never_fits(self, task: TaskSpec) -> bool:
        """A task whose estimate is longer than a whole allocation of this worker's."""
        if self.deadline is None or task.estimate_s is None:
            return False
        return task.estimate_s + END_MARGIN_S > self.deadline - self.started

    def _expected(self, task: TaskSpec) -> float:
        if task.estimate_s is not None:
            return task.estimate_s
        return max(self.durations) if self.durations else 0.0

    def _run_block(self, held: _Held) -> bool:
        """Run the block's tasks that fit in the time left; False when some did not (the
        block is handed back at once, the tasks that ended kept: a worker with more
        time takes it)."""
        block, epoch = held.block, held.epoch
        left_behind = False
        for slot in range(block.start, block.end):
            if slot in held.inherit:
                continue
            if held.lost.is_set() or not self.run.still_ours(block.start, epoch):
                self._held = None
                return True  # taken over: its new owner goes on from here
            if self.run.cancelled:
                self._held = None
                return False  # the run ends: nothing more of it is run, nothing marked done
            number, task = self.run.task_of(slot)
            if self._never_fits(task):
                self._end(held, slot, held.tries.get(slot, 0), None, "failed",
                          f"its estimate ({task.estimate_s:g} s) is longer than a worker's "
                          f"allocation ({self.deadline - self.started:.0f} s)")  # type: ignore[operator]  # fmt: skip
                continue
            if self._out_of_time(self._expected(task)):
                left_behind = True
                continue  # a shorter task after it may still fit
            if not self._run_slot(held, slot, number, task):
                left_behind = True
        self._held = None
        if left_behind:
            self.run.expire(block.start, epoch)
            return False
        if not held.lost.is_set() and self.run.still_ours(block.start, epoch):
            self.journal.write({"k": "done", "b": block.start, "e": epoch})
            self.journal.sync()
            self.run.drop_claim(block.start, epoch)
        return True

    def _end(
        self, held: _Held, slot: int, attempt: int, code: int | None, state: str, why: str
    ) -> None:
        self.journal.write(
            {"s": slot, "b": held.block.start, "e": held.epoch, "k": "end", "a": attempt,
             "state": state, "code": code, "why": why, "at": time.time()}
        )  # fmt: skip

    def _run_slot(self, held: _Held, slot: int, number: int, task: TaskSpec) -> bool:
        """Run a task's attempts; False when its next attempt would not end in time
        (it is left for a worker with more time)."""
        tries = held.tries.get(slot, 0)
        base = {"s": slot, "b": held.block.start, "e": held.epoch}
        max_attempts = self.settings.max_attempts
        if tries >= max_attempts:
            self._end(held, slot, tries, None, "failed",
                      f"its worker was lost in each of its {tries} attempts")  # fmt: skip
            return True
        attempt = tries
        while attempt < max_attempts:
            if attempt > tries and self._out_of_time(self._expected(task)):
                return False  # a retry that would not end in time: another worker's
            attempt += 1
            self.journal.write({**base, "k": "start", "a": attempt, "at": time.time()})
            code, offset, length, seconds = self._execute(held, slot, number, task, attempt)
            if held.lost.is_set():
                return True  # killed because its lease was taken over: nothing to record
            self.durations.append(seconds)
            self.ran += 1
            retry = self.settings.retryable(code) and attempt < max_attempts
            state = "retry" if retry else ("completed" if code == 0 else "failed")
            self.journal.write(
                {**base, "k": "end", "a": attempt, "state": state, "code": code,
                 "out": [offset, length], "dur": round(seconds, 6), "at": time.time()}
            )  # fmt: skip
            if not retry:
                return True
        return True

    def _execute(
        self, held: _Held, slot: int, number: int, task: TaskSpec, attempt: int
    ) -> tuple[int, int, int, float]:
        """Run one attempt with its output appended to this worker's output file:
        (exit code, where its output starts, its length, seconds)."""
        out_path = self.run.output_path(self.id)
        if self.settings.per_task_output:
            out_path = self.run.task_output_path(slot, attempt)
            out_path.parent.mkdir(exist_ok=True)
        with open(out_path, "ab") as out:
            if not self.settings.per_task_output:
                header = f"==> jobfleet pipe task {number} (slot {slot}, attempt {attempt}) <==\n"
                out.write(header.encode())
                out.flush()
            offset = out.tell()
            env = {**os.environ, **task.env, "JOBFLEET_PIPE_TASK": str(number)}
            cwd = task.cwd or str(self.run.root / "work")
            started = time.monotonic()
            try:
                proc = subprocess.Popen(
                    task.argv_to_run(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                )
            except (OSError, ValueError) as exc:  # ValueError: a NUL in a value, ...
                out.write(f"jobfleet: cannot run task {number}: {exc}\n".encode())
                out.flush()
                return 127, offset, out.tell() - offset, time.monotonic() - started
            held.proc = proc
            if held.lost.is_set():  # taken over while it was being started
                _kill(proc)
            code = proc.wait()
            seconds = time.monotonic() - started
            held.proc = None
            out.seek(0, os.SEEK_END)
            length = out.tell() - offset
        return (128 - code if code < 0 else code), offset, length, seconds


def _lose(held: _Held) -> None:
    held.lost.set()
    _kill(held.proc)


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    """Kill a task and whatever it started (its own session)."""
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def _deadline() -> float | None:
    """When the allocation ends, from the environment; a clear error for a bad value."""
    for name, absolute in ((DEADLINE_ENV, True), (WALLTIME_ENV, False)):
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value == value and value > 0 and value != float("inf")):
            from jobfleet.errors import SpecError

            what = "a Unix time" if absolute else "seconds"
            raise SpecError(name, f"{text!r} is not {what} (a positive number)")
        return value if absolute else time.time() + value
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m jobfleet.pipe.worker RUN_DIR``: serve the run until nothing is left."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m jobfleet.pipe.worker RUN_DIR", file=sys.stderr)
        return 2
    from jobfleet.errors import JobfleetError

    try:
        worker = Worker(Path(args[0]), deadline=_deadline())
    except (JobfleetError, OSError) as exc:
        print(f"jobfleet pipe worker: {exc}", file=sys.stderr)
        return 2
    print(f"jobfleet pipe worker {worker.id} on {socket.gethostname()}", file=sys.stderr)
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
