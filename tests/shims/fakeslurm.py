#!/usr/bin/env python3
"""Fake SLURM programs for end-to-end tests of the SLURM backend without a cluster.

The executables in ``bin/`` are what a test puts first on PATH: ``squeue``,
``sacct``, ``scontrol`` and ``scancel`` run this file as
``$FAKESLURM_PYTHON fakeslurm.py PROGRAM ARG...``; ``sbatch`` is plain sh (a
test submits 1,000 jobs, and an interpreter per submission is too slow). The
queue is one JSON file locked with :func:`fcntl.flock` (the idea of psij's
``tests/plugins1/_batch_test``); the test moves jobs between states by editing
it through :class:`FakeSlurm`. Nothing runs unless the test starts the fake's
``slurmd`` (``$FAKESLURM_PYTHON fakeslurm.py slurmd``, see :func:`slurmd`): then
jobs run as SLURM runs them, with dependencies, array throttles, time limits and
scancel; without it a job is only a record the test moves by hand.

Output follows SLURM 22.05 as recorded in ``tests/backends/slurm/fixtures/22.05`` and
``docs/slurm-notes.md``: squeue shows a job while the controller remembers it
(``queue``), finished ones only with ``--states=all``, and answers one unknown
id with ``Invalid job id specified`` (rc 1) but several unknown ids with
nothing (rc 0); sacct lists what accounting holds (``acct``); scontrol shows
the controller's memory (``queue`` too); scancel exits 0 even for unknown ids.

Environment:
    FAKESLURM_STATE: the JSON state file (and the files beside it: fakeslurm_state.py).
    FAKESLURM_CALLS: a file every invocation appends one line to: the program
        and its arguments, separated by tabs (optional).
    FAKESLURM_PYTHON: the interpreter the wrappers run (tests pass sys.executable).

The state, the files beside it and what a job's entry holds are in fakeslurm_state.py
(:class:`FakeSlurm`, which tests import from here or from there).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__:  # imported by a test, as shims.fakeslurm
    from shims import fakeserver
    from shims.fakeslurm_state import ACTIVE, FakeSlurm, Job, State, matches, order, word
else:  # run as a program: `python3 -I` puts no folder of its own on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fakeserver
    from fakeslurm_state import ACTIVE, FakeSlurm, Job, State, matches, order, word

__all__ = ["ACTIVE", "KILL_WAIT_S", "PROGRAMS", "FakeSlurm", "Job", "State", "main", "slurmd"]

_FORMAT_FIELD = re.compile(r"%\.?\d*([a-zA-Z])")


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
    return ids if all(re.fullmatch(r"\d+(_\d+)?", i) for i in ids) else None


def _batch_state(job: Job) -> str:
    """The batch step's state: as recorded, else what SLURM 22.05 shows for the job's
    state (a job that ended by a signal has its batch step CANCELLED)."""
    if job.get("batch"):
        return str(job["batch"])
    signalled = str(job["exit"]).startswith("0:") and word(job) == "FAILED"
    return "CANCELLED" if signalled else word(job)


def shown_state(job: Job) -> str:
    """squeue's state: COMPLETING while a cancelled or timed-out job's processes are
    still being stopped (sacct already has its final row: 22.05/cancel-lag-*)."""
    return "COMPLETING" if job.get("completing") else word(job)


def _squeue_field(code: str, native_id: str, job: Job) -> str:
    values = {
        "i": native_id,
        "A": native_id,
        "F": job.get("array_id", native_id),
        "K": job.get("task", "N/A"),
        "T": shown_state(job),
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
        asked = set(wanted)
        shown = {n: j for n, j in shown.items() if matches(asked, n, j)}
        if len(wanted) == 1 and not shown:
            err.append("slurm_load_jobs error: Invalid job id specified")
            return 1
    if "name" in options:
        names = set(options["name"].split(","))
        shown = {n: j for n, j in shown.items() if j["name"] in names}
    if options.get("states", "").lower() != "all":
        shown = {n: j for n, j in shown.items() if shown_state(j) in ACTIVE}
    form = options.get("format", "%i|%j|%T|%r")
    if "noheader" not in options:
        out.append(_FORMAT_FIELD.sub(lambda m: m[1], form))
    # Real squeue sorts by state, not by id (tests/backends/slurm/fixtures/22.05/squeue-live.out).
    for native_id, job in sorted(shown.items(), key=lambda kv: (word(kv[1]), *order(kv))):
        fields = {code: _squeue_field(code, native_id, job) for code in "iAFKTrj"}
        out.append(_FORMAT_FIELD.sub(lambda m, fields=fields: fields[m[1]], form))
    return 0


def sacct(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    options, _ = _options(args)
    if "starttime" not in options:
        err.append("fake sacct: jobfleet always passes --starttime; this call did not")
        return 1
    listed = {n: j for n, j in state["jobs"].items() if j["acct"]}
    if "jobs" in options:
        wanted = _ids(options["jobs"])
        if wanted is None:
            err.append(f"sacct: error: Invalid job id: {options['jobs']}")
            return 1
        asked = set(wanted)
        listed = {n: j for n, j in listed.items() if matches(asked, n, j)}
    if "name" in options:
        names = set(options["name"].split(","))
        listed = {n: j for n, j in listed.items() if j["name"] in names}
    fields = options.get("format", "JobID,JobName,State,ExitCode").split(",")
    values: dict[str, Callable[[str, Job], str]] = {
        "jobid": lambda n, j: n,
        "jobidraw": lambda n, j: j.get("array_id", n),
        "jobname": lambda n, j: j["name"],
        # What slurmdbd has been told so far (fixtures/22.05/cancel-lag-sacct).
        "state": lambda n, j: j.get("acct_lag") or j["state"],
        "exitcode": lambda n, j: "0:0" if j.get("acct_lag") else j["exit"],
        "reason": lambda n, j: j["reason"],
        "timelimit": lambda n, j: _timelimit(j["time_s"]),
        # What a job used, as SLURM 22.05 prints it (fixtures/22.05/usage-sacct-*): times
        # in local time or Unknown, the node list once started, MaxRSS only on steps.
        "submit": lambda n, j: _when(j.get("submit")),
        "start": lambda n, j: _when(j.get("start")),
        "end": lambda n, j: _when(j.get("end")),
        "nodelist": lambda n, j: "fakenode" if j.get("start") else "None assigned",
        "maxrss": lambda n, j: "",
        "totalcpu": lambda n, j: "00:00.010" if j.get("end") else "00:00:00",
        "elapsed": lambda n, j: _elapsed(j),
    }
    step_values = {
        **values,
        "jobid": lambda n, j: f"{n}.batch",
        "jobidraw": lambda n, j: f"{j.get('array_id', n)}.batch",
        "state": lambda n, j: _batch_state(j),
        "timelimit": lambda n, j: "",
        # The fake measures nothing: an ended step shows 1024K unless a test set one.
        "maxrss": lambda n, j: str(j.get("max_rss", "1024K" if j.get("end") else "")),
    }
    unknown = [f for f in fields if f.lower() not in values]
    if unknown:
        err.append(f'sacct: error: Invalid field requested: "{unknown[0]}"')
        return 1
    sep = "|" if "parsable2" in options else " "
    if "noheader" not in options:
        out.append(sep.join(fields))
    for native_id, job in sorted(listed.items(), key=order):
        out.append(sep.join(values[f.lower()](native_id, job) for f in fields))
        if "allocations" not in options and job.get("start"):
            # Without --allocations sacct lists each job's steps after it: the batch step.
            out.append(sep.join(step_values[f.lower()](native_id, job) for f in fields))
    return 0


def _when(at: float | None) -> str:
    """sacct's time: ``2026-12-06T12:15:52`` (local time), or ``Unknown``."""
    if not at:
        return "Unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(at))


def _elapsed(job: Job) -> str:
    """sacct's Elapsed: from start to end (or now), ``00:00:00`` before it started."""
    start = job.get("start")
    seconds = int((job.get("end") or time.time()) - start) if start else 0
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _timelimit(seconds: float | None) -> str:
    """sacct's Timelimit: ``00:01:00``, or ``UNLIMITED``."""
    if seconds is None:
        return "UNLIMITED"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}"


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
    for native_id, job in sorted(held.items(), key=order):
        array = f"ArrayJobId={job['array_id']} ArrayTaskId={job['task']} " if "task" in job else ""
        out.append(
            f"JobId={native_id} {array}JobName={job['name']} UserId=root(0) "
            f"JobState={word(job)} Reason={job['reason']} "
            f"Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 ExitCode={job['exit']}"
        )
    return 0


def scancel(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    options, positional = _options(args)
    asked = set(positional)
    for native_id, job in state["jobs"].items():
        if not matches(asked, native_id, job) or not job["queue"]:
            continue  # rc 0 for unknown and purged ids, as real scancel
        if "signal" in options:
            job["signals"].append(options["signal"])
        elif word(job) in ACTIVE:
            # A job cancelled while it waited keeps its last reason (JobHeldUser,
            # Dependency: 22.05/cancel-lag-squeue); a running one shows None.
            waited = word(job) == "PENDING"
            job.update(
                state="CANCELLED by 0",
                exit="0:0",
                reason=job["reason"] if waited else "None",
                # Until slurmd has stopped the processes of a job it runs.
                completing=not waited and bool(state.get("slurmd")),
            )
    return 0


PROGRAMS = {"squeue": squeue, "sacct": sacct, "scontrol": scontrol, "scancel": scancel}


# -- slurmd: runs the jobs -----------------------------------------------------------

#: Seconds between a time limit's (or a cancel's) SIGTERM and its SIGKILL (KillWait).
KILL_WAIT_S = 2.0


class _Running:
    """A started job: its process (a session of its own) and what slurmd did to it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.started = time.monotonic()
        self.signals_sent = 0
        self.term_at: float | None = None  # when SIGTERM went out for a cancel or time-out

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)


def _dependency(jobs: dict[str, Job], text: str) -> str:
    """``met``, ``wait`` or ``never`` for sbatch's ``--dependency`` (``,``: all must hold).

    A job a clause names that the controller does not know counts as met, as SLURM
    drops dependencies on purged jobs; an array's id names all its elements.
    """
    verdict = "met"
    for clause in filter(None, text.split(",")):
        kind, *ids = clause.split(":")
        named = [j for n, j in jobs.items() if matches(set(ids), n, j)]
        if any(word(j) in ACTIVE for j in named):
            verdict = "wait"
            continue
        ok = [word(j) == "COMPLETED" for j in named]
        if (kind == "afterok" and not all(ok)) or (kind == "afternotok" and all(ok)):
            return "never"
    return verdict


def _start(native_id: str, job: Job) -> _Running:
    """Run the job's script as slurmd would: its own session, output to ``--output``."""
    base = str(job.get("array_id", native_id))
    task = str(job.get("task", ""))
    env = {**os.environ, "SLURM_JOB_ID": native_id.replace("_", ""), "SLURM_JOB_NAME": job["name"]}
    env.pop("SLURM_ARRAY_TASK_ID", None)
    if task:
        env.update(SLURM_ARRAY_JOB_ID=base, SLURM_ARRAY_TASK_ID=task)
    output = job["output"].replace("%A", base).replace("%a", task).replace("%j", native_id)
    cwd = job["cwd"] or None
    with open(job["script"]) as fh:
        shebang = fh.readline().removeprefix("#!").strip()
    with open(Path(cwd or ".") / output, "ab") as out:
        proc = subprocess.Popen(
            [*shlex.split(shebang), job["script"]],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    return _Running(proc)


def _step(jobs: dict[str, Job], running: dict[str, _Running], cpus: int) -> None:
    """One pass of the controller and the node: signal, reap, time out, then start."""
    now = time.monotonic()
    for native_id, run in list(running.items()):
        job = jobs[native_id]
        for name in job["signals"][run.signals_sent :]:
            run.signal(signal.Signals[f"SIG{name.upper().removeprefix('SIG')}"])
        run.signals_sent = len(job["signals"])
        limit = job["time_s"]
        if word(job) == "RUNNING" and limit is not None and now - run.started > limit:
            job.update(state="TIMEOUT", reason="TimeLimit")
        if word(job) in ("CANCELLED", "TIMEOUT") and run.term_at is None:
            job["completing"] = True
            run.term_at = now
            run.signal(signal.SIGTERM)
        if run.term_at is not None and now - run.term_at > KILL_WAIT_S:
            run.signal(signal.SIGKILL)
        rc = run.proc.poll()
        if rc is None:
            continue
        del running[native_id]
        job.update(end=time.time(), completing=False)
        if word(job) != "RUNNING":
            continue  # cancelled or timed out: that is its state, whatever the exit
        if rc == 0:
            job.update(state="COMPLETED", exit="0:0")
        elif rc < 0:
            job.update(state="FAILED", exit=f"0:{-rc}")
        else:
            job.update(state="FAILED", exit=f"{rc}:0")
    for native_id, job in jobs.items():
        if job.get("completing") and native_id not in running:
            job["completing"] = False  # nothing of it runs here (a test moved it by hand)
    busy = {n: j for n, j in jobs.items() if word(j) == "RUNNING"}
    for native_id, job in sorted(jobs.items(), key=order):
        if word(job) != "PENDING" or not job["queue"]:
            continue
        verdict = _dependency(jobs, job["dependency"])
        if verdict == "never":
            if job["kill_invalid"]:
                job.update(state="CANCELLED", reason="DependencyNeverSatisfied")
            else:
                job.update(reason="DependencyNeverSatisfied")
            continue
        if verdict == "wait":
            job.update(reason="Dependency")
            continue
        if job.get("limit") and job["limit"] <= sum(
            j.get("array_id") == job["array_id"] for j in busy.values()
        ):
            job.update(reason="JobArrayTaskLimit")
            continue
        if len(busy) >= cpus:
            job.update(reason="Resources")
            continue
        running[native_id] = _start(native_id, job)
        job.update(state="RUNNING", reason="None", start=time.time())
        busy[native_id] = job


def slurmd(fake: FakeSlurm, cpus: int = 8, tick_s: float = 0.05) -> int:
    """Run the fake cluster's jobs until SIGTERM, then kill those still running.

    Each tick, under the state's lock: deliver scancel's signals, end what a cancel or
    a time limit ended (SIGTERM, then SIGKILL after :data:`KILL_WAIT_S`), record how
    finished jobs ended (``FAILED 3:0``, ``FAILED 0:9``...), and start the pending jobs
    whose dependencies are met, within their array's ``%N`` and ``cpus`` jobs at once.
    A dependency that can never be met cancels the job when sbatch was given
    ``--kill-on-invalid-dep=yes``, as SLURM does, and leaves it pending with the reason
    ``DependencyNeverSatisfied`` otherwise. Ended jobs stay in the queue (MinJobAge).
    """
    running: dict[str, _Running] = {}
    with fake.locked() as state:
        state["slurmd"] = os.getpid()  # scancel: a running job is COMPLETING for a while

    def tick() -> None:
        with fake.locked() as state:
            _step(state["jobs"], running, cpus)

    fakeserver.serve(tick, tick_s)
    for run in running.values():
        run.signal(signal.SIGKILL)
    with fake.locked() as state:
        state["slurmd"] = None
    return 0


def main(argv: Sequence[str]) -> int:
    program, args = Path(argv[0]).name, list(argv[1:])
    fake = FakeSlurm(os.environ["FAKESLURM_STATE"])
    if program == "slurmd":
        return slurmd(fake)
    out: list[str] = []
    err: list[str] = []
    pause_s = 0.0
    with fake.locked() as state:
        fakeserver.log_call("FAKESLURM_CALLS", program, args)
        failure = fake.failure(program)
        if failure is not None:
            rc, pause_s = failure[0], failure[1]
            err.append(failure[2])
        else:
            rc = PROGRAMS[program](state, args, out, err)
    time.sleep(pause_s)  # retrying a controller that is down (without the lock)
    fakeserver.reply(out, err)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
