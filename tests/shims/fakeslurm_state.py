"""The fake SLURM's state (see fakeslurm.py): one JSON file under a lock, with sbatch's
journal merged in, and how a job's entry reads.

Beside the JSON file (``$FAKESLURM_STATE``): ``.lock`` (the lock every program and
:class:`FakeSlurm` take), ``.next_id`` and ``.submitted`` (sbatch's counter and
journal, merged into the JSON by the next reader) and ``.fail.PROGRAM`` (see
:meth:`FakeSlurm.fail`).

A job in the JSON (``{"jobs": {id: job}}``) is ``{"name", "script", "state",
"exit", "reason", "queue", "acct", "signals"}``: ``state`` as SLURM prints it
(``CANCELLED by 0``), ``exit`` as ``code:signal``; optionally ``batch``, the state of
its batch step (``ID.batch`` in sacct) where it differs from the job's; ``submit``,
``start`` and ``end`` (Unix times, set by sbatch and ``slurmd``) and ``max_rss`` (its
batch step's MaxRSS as printed, set by a test) for sacct's usage columns; ``acct_lag``,
the state sacct still shows while slurmdbd lags behind the controller; ``completing``,
set while slurmd stops a cancelled or timed-out job's processes (squeue shows
COMPLETING, sacct the final state already: fixtures/22.05/cancel-lag-*). An array
job is one entry per element, ``ID_INDEX``, with ``array_id``, ``task`` and ``limit``
(its ``%N``, 0 for none). What sbatch was told, for ``slurmd``: ``output``,
``dependency``, ``kill_invalid``, ``time_s`` (None: no limit) and ``cwd``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

Job = dict[str, Any]
State = dict[str, Any]

#: States squeue shows without --states (SLURM's default: the active ones).
ACTIVE = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED")


class FakeSlurm:
    """The fake cluster's state, for the programs and for the test to read and change."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _side(self, suffix: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{suffix}")

    @contextlib.contextmanager
    def locked(self) -> Iterator[State]:
        """The state, locked, with sbatch's journal merged in; written back on leaving."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._side("lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(self.path.read_text()) if self.path.exists() else {"jobs": {}}
            journal = self._side("submitted")
            if journal.exists():
                for line in journal.read_text().splitlines():
                    state["jobs"].update(_submitted(line))
            yield state
            tmp = self._side("tmp")
            tmp.write_text(json.dumps(state))
            tmp.replace(self.path)
            journal.unlink(missing_ok=True)

    def jobs(self) -> dict[str, Job]:
        with self.locked() as state:
            return dict(state["jobs"])

    def set(
        self,
        ids: Iterable[str],
        *,
        state: str | None = None,
        exit: str | None = None,  # SLURM's own word for it
        reason: str | None = None,
        queue: bool | None = None,
        acct: bool | None = None,
        batch: str | None = None,
        acct_lag: str | None = None,
    ) -> None:
        """Change these jobs: the state SLURM reports, its ``code:signal``, whether
        squeue and scontrol (``queue``) and sacct (``acct``) know them, the state of
        the batch step (``batch``), the state sacct still shows while slurmdbd lags
        behind the controller (``acct_lag``: ``PENDING`` or ``RUNNING``, with exit
        ``0:0``; ``""`` ends the lag). A job set RUNNING, or given a batch step, has
        started (``start``, if it had none): sacct lists its batch step; one that
        started and is set to a final state has ended (``end``)."""
        given = {
            "state": state,
            "exit": exit,
            "reason": reason,
            "queue": queue,
            "acct": acct,
            "batch": batch,
            "acct_lag": acct_lag,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        started = state == "RUNNING" or batch is not None
        with self.locked() as st:
            for native_id in ids:
                job = st["jobs"][native_id]
                job.update(changes)
                if started and not job.get("start"):
                    job["start"] = time.time()
                if job.get("start") and not job.get("end") and word(job) not in ACTIVE:
                    job["end"] = time.time()

    def fail(self, program: str, rc: int, stderr: str, *, after_s: float = 0.0) -> None:
        """Make ``program`` print ``stderr`` and exit ``rc``, changing nothing, until
        :meth:`recover`; after ``after_s`` seconds, as the real clients do against a
        controller that is down (they retry the connection for MessageTimeout, 10 s
        by default, before they give up)."""
        with self.locked():
            self._side(f"fail.{program}").write_text(f"{rc} {after_s}\n{stderr}\n")

    def recover(self, program: str) -> None:
        with self.locked():
            self._side(f"fail.{program}").unlink(missing_ok=True)

    def failure(self, program: str) -> tuple[int, float, str] | None:
        """The failure set for ``program``, if any (call with the lock held): exit
        status, seconds before it, message."""
        try:
            first, message = self._side(f"fail.{program}").read_text().split("\n", 1)
        except FileNotFoundError:
            return None
        rc, after_s = first.split()
        return int(rc), float(after_s), message.rstrip("\n")


def _submitted(line: str) -> dict[str, Job]:
    """The jobs of one line of sbatch's journal: one, or one per array element."""
    fields = line.split("\t")
    native_id, name, script = fields[:3]
    output, dependency, kill, array, limit_text, cwd = (fields[3:] + [""] * 6)[:6]
    job: Job = {
        "name": name,
        "script": script,
        "state": "PENDING",
        "exit": "0:0",
        "reason": "None",
        "submit": time.time(),
        "queue": True,
        "acct": True,
        "signals": [],
        "output": output or "slurm-%j.out",
        "dependency": dependency,
        "kill_invalid": kill == "yes",
        "time_s": _duration_s(limit_text),
        "cwd": cwd,
    }
    if not array:
        return {native_id: job}
    indices, limit = _array(array)
    return {
        f"{native_id}_{i}": {**job, "array_id": native_id, "task": i, "limit": limit}
        for i in indices
    }


def _array(text: str) -> tuple[list[int], int]:
    """SLURM's ``--array``: ``1-6%2``, ``1,3-5``, ``0-20:5`` -> (indices, limit)."""
    body, _, limit = text.partition("%")
    indices: list[int] = []
    for part in body.split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        indices += range(int(first), int(last or first) + 1, int(step or 1))
    return sorted(set(indices)), int(limit or 0)


def _duration_s(text: str) -> int | None:
    """Seconds of ``--time=D-HH:MM:SS`` (the form jobfleet writes); None for none."""
    if not text:
        return None
    days, _, clock = text.rpartition("-")
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds + int(days or 0) * 86400


def order(item: tuple[str, Job]) -> tuple[int, int]:
    """Sort key of a job entry: by id, an array's elements by index."""
    native_id, job = item
    return int(job.get("array_id", native_id)), int(job.get("task", -1))


def matches(wanted: set[str], native_id: str, job: Job) -> bool:
    """Whether ``--jobs``/scancel's ``wanted`` names this entry (an array's id names
    every element)."""
    return native_id in wanted or job.get("array_id") in wanted


def word(job: Job) -> str:
    """The state's first word: ``CANCELLED`` for ``CANCELLED by 0``."""
    return str(job["state"]).split(" ", 1)[0]
