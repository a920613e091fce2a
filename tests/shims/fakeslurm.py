#!/usr/bin/env python3
"""Fake SLURM programs for end-to-end tests of the SLURM backend without a cluster.

The executables in ``bin/`` are what a test puts first on PATH: ``squeue``,
``sacct``, ``scontrol`` and ``scancel`` run this file as
``$FAKESLURM_PYTHON fakeslurm.py PROGRAM ARG...``; ``sbatch`` is plain sh (a
test submits 1,000 jobs, and an interpreter per submission is too slow). The
queue is one JSON file locked with :func:`fcntl.flock` (the idea of psij's
``tests/plugins1/_batch_test``); the test moves jobs between states by editing
it through :class:`FakeSlurm`. Nothing ever runs: a job is only a record.

Output follows SLURM 22.05 as recorded in ``tests/fixtures/slurm/22.05`` and
``docs/slurm-notes.md``: squeue shows a job while the controller remembers it
(``queue``), finished ones only with ``--states=all``, and answers one unknown
id with ``Invalid job id specified`` (rc 1) but several unknown ids with
nothing (rc 0); sacct lists what accounting holds (``acct``); scontrol shows
the controller's memory (``queue`` too); scancel exits 0 even for unknown ids.

Environment:
    FAKESLURM_STATE: the JSON state file; next to it ``.lock`` (the lock every
        program and :class:`FakeSlurm` take), ``.next_id`` and ``.submitted``
        (sbatch's counter and journal, merged into the JSON by the next reader)
        and ``.fail.PROGRAM`` (see :meth:`FakeSlurm.fail`).
    FAKESLURM_CALLS: a file every invocation appends one line to: the program
        and its arguments, separated by tabs (optional).
    FAKESLURM_PYTHON: the interpreter the wrappers run (tests pass sys.executable).

A job in the JSON (``{"jobs": {id: job}}``) is ``{"name", "script", "state",
"exit", "reason", "queue", "acct", "signals"}``: ``state`` as SLURM prints it
(``CANCELLED by 0``), ``exit`` as ``code:signal``; optionally ``batch``, the state of
its batch step (``ID.batch`` in sacct) where it differs from the job's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

Job = dict[str, Any]
State = dict[str, Any]

#: States squeue shows without --states (SLURM's default: the active ones).
ACTIVE = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED")
_FORMAT_FIELD = re.compile(r"%\.?\d*([a-zA-Z])")


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
                    native_id, name, script = line.split("\t")
                    state["jobs"][native_id] = {
                        "name": name,
                        "script": script,
                        "state": "PENDING",
                        "exit": "0:0",
                        "reason": "None",
                        "queue": True,
                        "acct": True,
                        "signals": [],
                    }
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
    ) -> None:
        """Change these jobs: the state SLURM reports, its ``code:signal``, whether
        squeue and scontrol (``queue``) and sacct (``acct``) know them, the state of
        the batch step (``batch``)."""
        given = {
            "state": state,
            "exit": exit,
            "reason": reason,
            "queue": queue,
            "acct": acct,
            "batch": batch,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        with self.locked() as st:
            for native_id in ids:
                st["jobs"][native_id].update(changes)

    def fail(self, program: str, rc: int, stderr: str) -> None:
        """Make ``program`` print ``stderr`` and exit ``rc``, changing nothing, until
        :meth:`recover`."""
        with self.locked():
            self._side(f"fail.{program}").write_text(f"{rc}\n{stderr}\n")

    def recover(self, program: str) -> None:
        with self.locked():
            self._side(f"fail.{program}").unlink(missing_ok=True)

    def failure(self, program: str) -> tuple[int, str] | None:
        """The failure set for ``program``, if any (call with the lock held)."""
        try:
            rc, message = self._side(f"fail.{program}").read_text().split("\n", 1)
        except FileNotFoundError:
            return None
        return int(rc), message.rstrip("\n")


# -- the programs ------------------------------------------------------------------


def _options(args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``--key=value`` and bare ``--flag`` options, and the positional arguments."""
    options: dict[str, str] = {}
    positional: list[str] = []
    for arg in args:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            options[key] = value
        else:
            positional.append(arg)
    return options, positional


def _ids(text: str) -> list[str] | None:
    """The ids of ``--jobs=``; None when one is not a job id (SLURM refuses those)."""
    ids = [i for i in text.split(",") if i]
    return ids if all(i.isdigit() for i in ids) else None


def _batch_state(job: Job) -> str:
    """The batch step's state: as recorded, else what SLURM 22.05 shows for the job's
    state (a job that ended by a signal has its batch step CANCELLED)."""
    if job.get("batch"):
        return str(job["batch"])
    signalled = str(job["exit"]).startswith("0:") and _word(job) == "FAILED"
    return "CANCELLED" if signalled else _word(job)


def _word(job: Job) -> str:
    """The state's first word: ``CANCELLED`` for ``CANCELLED by 0``."""
    return str(job["state"]).split(" ", 1)[0]


def _squeue_field(code: str, native_id: str, job: Job) -> str:
    values = {
        "i": native_id,
        "A": native_id,
        "F": native_id,
        "K": "N/A",
        "T": _word(job),
        "r": job["reason"],
        "j": job["name"],
    }
    return str(values[code])


def squeue(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    options, _ = _options(args)
    shown = {n: j for n, j in state["jobs"].items() if j["queue"]}
    if "jobs" in options:
        wanted = _ids(options["jobs"])
        if wanted is None:
            err.append(f"squeue: error: Invalid job id: {options['jobs']}")
            return 1
        if len(wanted) == 1 and wanted[0] not in shown:
            err.append("slurm_load_jobs error: Invalid job id specified")
            return 1
        shown = {n: shown[n] for n in wanted if n in shown}
    if "name" in options:
        names = set(options["name"].split(","))
        shown = {n: j for n, j in shown.items() if j["name"] in names}
    if options.get("states", "").lower() != "all":
        shown = {n: j for n, j in shown.items() if _word(j) in ACTIVE}
    form = options.get("format", "%i|%j|%T|%r")
    if "noheader" not in options:
        out.append(_FORMAT_FIELD.sub(lambda m: m[1], form))
    # Real squeue sorts by state, not by id (tests/fixtures/slurm/22.05/squeue-live.out).
    for native_id, job in sorted(shown.items(), key=lambda kv: (_word(kv[1]), int(kv[0]))):
        fields = {code: _squeue_field(code, native_id, job) for code in "iAFKTrj"}
        out.append(_FORMAT_FIELD.sub(lambda m, fields=fields: fields[m[1]], form))
    return 0


def sacct(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    options, _ = _options(args)
    if "starttime" not in options:
        err.append("fake sacct: jobfleet always passes --starttime; this call did not")
        return 1
    listed = {n: j for n, j in state["jobs"].items() if j["acct"]}
    if "jobs" in options and all(i.endswith(".batch") for i in options["jobs"].split(",")):
        return _sacct_batch_steps(listed, options, out, err)
    if "jobs" in options:
        wanted = _ids(options["jobs"])
        if wanted is None:
            err.append(f"sacct: error: Invalid job id: {options['jobs']}")
            return 1
        listed = {n: listed[n] for n in wanted if n in listed}
    if "name" in options:
        names = set(options["name"].split(","))
        listed = {n: j for n, j in listed.items() if j["name"] in names}
    fields = options.get("format", "JobID,JobName,State,ExitCode").split(",")
    values: dict[str, Callable[[str, Job], str]] = {
        "jobid": lambda n, j: n,
        "jobidraw": lambda n, j: n,
        "jobname": lambda n, j: j["name"],
        "state": lambda n, j: j["state"],
        "exitcode": lambda n, j: j["exit"],
        "reason": lambda n, j: j["reason"],
    }
    unknown = [f for f in fields if f.lower() not in values]
    if unknown:
        err.append(f'sacct: error: Invalid field requested: "{unknown[0]}"')
        return 1
    sep = "|" if "parsable2" in options else " "
    if "noheader" not in options:
        out.append(sep.join(fields))
    for native_id, job in sorted(listed.items(), key=lambda kv: int(kv[0])):
        out.append(sep.join(values[f.lower()](native_id, job) for f in fields))
    return 0


def _sacct_batch_steps(
    listed: dict[str, Job], options: dict[str, str], out: list[str], err: list[str]
) -> int:
    """sacct --jobs=ID.batch,...: the batch steps, in the columns jobfleet asks for."""
    fields = options.get("format", "").split(",")
    values: dict[str, Callable[[str, Job], str]] = {
        "jobid": lambda n, j: f"{n}.batch",
        "state": lambda n, j: _batch_state(j),
        "maxrss": lambda n, j: "",
    }
    unknown = [f for f in fields if f.lower() not in values]
    if unknown or "noheader" not in options or "parsable2" not in options:
        err.append(f"fake sacct: batch steps only as jobfleet asks for them, not {options}")
        return 1
    for step in options["jobs"].split(","):
        native_id = step.removesuffix(".batch")
        if native_id in listed:
            out.append("|".join(values[f.lower()](native_id, listed[native_id]) for f in fields))
    return 0


def scontrol(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    _, positional = _options(args)
    if positional[:2] != ["show", "job"]:
        err.append(f"fake scontrol: only `show job` is supported, not {' '.join(positional)}")
        return 1
    held = {n: j for n, j in state["jobs"].items() if j["queue"]}
    if len(positional) > 2:
        if positional[2] not in held:
            err.append("slurm_load_jobs error: Invalid job id specified")
            return 1
        held = {positional[2]: held[positional[2]]}
    if not held:
        out.append("No jobs in the system")
        return 0
    for native_id, job in sorted(held.items(), key=lambda kv: int(kv[0])):
        out.append(
            f"JobId={native_id} JobName={job['name']} UserId=root(0) "
            f"JobState={_word(job)} Reason={job['reason']} "
            f"Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 ExitCode={job['exit']}"
        )
    return 0


def scancel(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    options, positional = _options(args)
    for native_id in positional:
        job = state["jobs"].get(native_id)
        if job is None or not job["queue"]:
            continue  # rc 0 for unknown and purged ids, as real scancel
        if "signal" in options:
            job["signals"].append(options["signal"])
        elif _word(job) in ACTIVE:
            job.update(state="CANCELLED by 0", exit="0:0", reason="None")
    return 0


PROGRAMS = {"squeue": squeue, "sacct": sacct, "scontrol": scontrol, "scancel": scancel}


def main(argv: Sequence[str]) -> int:
    program, args = Path(argv[0]).name, list(argv[1:])
    fake = FakeSlurm(os.environ["FAKESLURM_STATE"])
    out: list[str] = []
    err: list[str] = []
    with fake.locked() as state:
        calls = os.environ.get("FAKESLURM_CALLS")
        if calls:
            with open(calls, "a") as log:
                log.write("\t".join([program, *args]) + "\n")
        failure = fake.failure(program)
        if failure is not None:
            rc = failure[0]
            err.append(failure[1])
        else:
            rc = PROGRAMS[program](state, args, out, err)
    if out:
        sys.stdout.write("\n".join(out) + "\n")
    if err:
        sys.stderr.write("\n".join(err) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
