#!/usr/bin/env python3
"""Fake PBS Pro and Torque programs for end-to-end tests without a cluster.

``pbsbin/`` holds ``qsub``, ``qstat``, ``qselect``, ``qdel`` and ``qsig``, which run this
file as ``$FAKEPBS_PYTHON fakepbs.py PROGRAM ARG...``; ``$FAKEPBS_DIALECT`` (``pbs`` or
``torque``) says which scheduler they are. The queue is one JSON file locked with
:func:`fcntl.flock`, as in fakeslurm.py. Jobs run only while the fake's server runs
(``fakepbs.py server``): it starts queued jobs whose dependencies are met, within their
array's limit, runs each job script as the real MOM does (a session of its own, in
``$HOME``, the script copied at submission, ``-o``'s file), ends them at their
walltime (SIGTERM, SIGKILL two seconds later) and when qdel asks, and records how they
ended in the scheduler's own words.

What the real commands refuse, these refuse, with the real message (docs/pbs-notes.md,
docs/torque-notes.md): unknown options, PBS's ``-J`` of one index or a list, Torque's
``-t`` with a step, a name longer than ``$FAKEPBS_NAME_LIMIT`` (default: 230 for PBS, 256
for Torque). Answers follow the real formats: PBS's ``qstat -f [-F json]`` written by the
same rules as OpenPBS 22.05's qstat (continuation lines, numbers unquoted in JSON),
Torque's one-line XML with ``<`` as the byte 0x0E; ``Unknown Job Id`` (exit 153) for an
id the server does not know, ``Job has finished`` for a finished PBS job asked about
without ``-x``.

What qstat prints is in fakepbs_output.py. Environment: FAKEPBS_STATE (the JSON file;
``.lock`` next to it), FAKEPBS_DIALECT, FAKEPBS_PYTHON, FAKEPBS_NAME_LIMIT,
FAKEPBS_EXIT_CODE_CANCELED (Torque's exit_code_canceled_job), FAKEPBS_CALLS (a file each
call appends a line to).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

try:  # imported by the tests, as shims.fakepbs
    from shims import fakeserver
except ImportError:  # run as a program (python -I: no folder of its own on sys.path)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fakeserver

if __package__:  # imported by the tests (tests/ on sys.path)
    from . import fakepbs_output as output
else:  # run as a program: python -I fakepbs.py (-I puts no script directory on sys.path)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fakepbs_output as output

SERVER = output.SERVER
dialect, finished = output.dialect, output.finished

Job = dict[str, Any]
State = dict[str, Any]
KILL_WAIT_S = 2.0
FLAGS = set("ANSVjonlqWJtPMmpahrevkcCuIXzn")  # options with a value: all but the next
NO_VALUE = set("VhIXzn")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[State]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text()) if path.exists() else {"next": 1, "jobs": {}}
        yield state
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)


# -- qsub -------------------------------------------------------------------------------


def _lines(script: str) -> Iterator[str]:
    """The script's lines as qsub reads them: fgets(MAX_LINE_LEN = 32768) splits a
    longer one (Torque's qsub_functions.c, cmds.h)."""
    for line in script.splitlines()[1:]:
        for start in range(0, max(len(line), 1), 32767):
            yield line[start : start + 32767]


def _directives(script: str) -> list[str]:
    """The ``#PBS`` lines before the first command, as arguments (qsub reads them)."""
    args: list[str] = []
    for line in _lines(script):
        if line.startswith("#PBS"):
            args += shlex.split(line[4:])
        elif line.strip() and not line.startswith("#"):
            break
    return args


def _options(args: Sequence[str], err: list[str]) -> tuple[list[tuple[str, str]], list[str]] | None:
    opts: list[tuple[str, str]] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        flag = args[i][1:2]
        torque = dialect() == "torque"
        if flag not in FLAGS or flag in ("J" if torque else "tn"):
            err.append(f"qsub: invalid option -- '{args[i][1:]}'")
            err.append("usage: qsub [-a date_time] [-A account_string] [-c interval]")
            return None
        if flag in NO_VALUE:
            opts.append((flag, ""))
            i += 1
            continue
        value = args[i][2:] or (args[i + 1] if i + 1 < len(args) else "")
        i += 1 if args[i][2:] else 2
        opts.append((flag, value))
    return opts, list(args[i:])


def _indices(flag: str, text: str) -> tuple[list[int], int] | None:
    """Array indices and limit of PBS's -J a-b[:s][%n] or Torque's -t list[%n]."""
    span, _, limit = text.partition("%")
    if flag == "J":
        match = re.fullmatch(r"(\d+)-(\d+)(?::(\d+))?", span)
        if not match or int(match[1]) >= int(match[2]) or int(match[3] or 1) < 1:
            return None
        return list(range(int(match[1]), int(match[2]) + 1, int(match[3] or 1))), int(limit or 0)
    out: list[int] = []
    for part in span.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            return None
        out += range(int(match[1]), int(match[2] or match[1]) + 1)
    return sorted(set(out)), int(limit or 0)


def _seconds(text: str) -> int:
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


def qsub(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    parsed = _options(args, err)
    if parsed is None:
        return 2
    opts, rest = parsed
    if not rest:
        err.append("qsub: no script file")
        return 2
    script = Path(rest[0])
    text = script.read_text()
    from_script = _options(_directives(text), err)
    if from_script is None:
        return 2
    given = dict(from_script[0])
    given.update(opts)  # the command line wins over the script's directives
    torque = dialect() == "torque"
    name = given.get("N", script.name)
    limit = int(os.environ.get("FAKEPBS_NAME_LIMIT", "256" if torque else "230"))
    if len(name) > limit or not name or any(c.isspace() for c in name):
        err.append("qsub: illegal -N value")
        return 2
    array = None
    flag = "t" if torque else "J"
    if flag in given:
        array = _indices(flag, given[flag])
        if array is None:
            err.append(f"qsub: illegal -{flag} value")
            return 2
    walltime = None
    for key, value in opts + from_script[0]:
        if key == "l":
            for item in value.split(","):
                if item.startswith("walltime="):
                    walltime = _seconds(item.split("=", 1)[1])
    number = state["next"]
    state["next"] += 1
    job_id = f"{number}[].{SERVER}" if array else f"{number}.{SERVER}"
    copy = Path(os.environ["FAKEPBS_STATE"]).with_name(f"script.{number}")
    copy.write_text(text)
    job: Job = {
        "name": name,
        "script": str(copy),
        "shell": given.get("S", "/bin/sh"),
        "output": given.get("o", f"{os.environ.get('HOME', '/tmp')}/{name}.o{number}"),
        "depend": given.get("W", "").removeprefix("depend="),
        "walltime": walltime,
        "owner": output.user(),
        "state": "Q",
        "qtime": time.time(),
        "workdir": os.getcwd(),
    }
    if array:
        job.update(array=True, indices=array[0], limit=array[1])
        element = {k: v for k, v in job.items() if k != "indices"}  # the array's own
        for index in array[0]:
            state["jobs"][f"{number}[{index}].{SERVER}"] = {
                **element,
                "parent": job_id,
                "index": index,
            }
    state["jobs"][job_id] = job
    out.append(job_id)
    return 0


# -- qstat ------------------------------------------------------------------------------


def qstat(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    torque = dialect() == "torque"
    if "--version" in args:
        out.append("Version: 6.1.3\nCommit: 0000000" if torque else "pbs_version = 22.05.11")
        return 0
    flags = "".join(a[1:] for a in args if a.startswith("-") and a != "-F")
    ids = [a for a in args if not a.startswith("-") and a not in ("json", "JSON")]
    jobs: dict[str, Job] = state["jobs"]
    history = "x" in flags and not torque
    expand = "t" in flags
    chosen: list[str] = []
    rc = 0
    for job_id in ids or list(jobs):
        job = jobs.get(job_id)
        if job is None:
            err.append(f"qstat: Unknown Job Id{' Error' if torque else ''} {job_id}")
            rc = 153
            continue
        if ids and not torque and not history and finished(job):
            hint = "use -x or -H to obtain historical job information"
            err.append(f"qstat: {job_id} Job has finished, {hint}")
            rc = 35
            continue
        family = [job_id]
        if job.get("array") and "index" not in job and expand:
            family += [n for n, j in jobs.items() if j.get("parent") == job_id]
        for name in family:
            if "index" in jobs[name] and not expand and not ids:
                continue
            if not torque and not history and finished(jobs[name]) and not ids:
                continue
            chosen.append(name)
    records = [(n, output.attributes(n, jobs[n], jobs)) for n in dict.fromkeys(chosen)]
    if torque and "x" in flags:
        out += output.as_xml(records)
    elif "json" in args or "JSON" in args:
        out += output.as_json(records)
    else:
        for job_id, attrs in records:
            out += output.text(job_id, attrs, 77 if torque else output.LIMIT)
    return rc


def qselect(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    name = args[args.index("-N") + 1] if "-N" in args else None
    history = "-x" in args or dialect() == "torque"
    for job_id, job in state["jobs"].items():
        if "index" in job or (name is not None and job["name"] != name):
            continue
        if finished(job) and not history:
            continue
        out.append(job_id)
    return 0


def _targets(jobs: dict[str, Job], job_id: str) -> list[str]:
    if jobs[job_id].get("array") and "index" not in jobs[job_id]:
        return [n for n, j in jobs.items() if j.get("parent") == job_id]
    return [job_id]


def qdel(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    jobs: dict[str, Job] = state["jobs"]
    rc = 0
    for job_id in [a for a in args if not a.startswith("-")]:
        if job_id not in jobs:
            err.append(f"qdel: Unknown Job Id {job_id}")
            rc = 153
            continue
        if finished(jobs[job_id]) and dialect() == "pbs" and "index" in jobs[job_id]:
            # PBSE_NOHISTARRAYSUBJOB (OpenPBS req_delete.c); qdel exits with the code
            err.append(f"qdel: Request invalid for finished array subjob {job_id}")
            rc = 15159 % 256
            continue
        if finished(jobs[job_id]) and dialect() == "pbs":
            err.append(f"qdel: Job has finished {job_id}")
            rc = 35
            continue
        if jobs[job_id].get("array") and "index" not in jobs[job_id]:
            jobs[job_id]["terminated"] = True  # req_deletejob2 on the array: ji_terminated
        for name in _targets(jobs, job_id):
            job = jobs[name]
            if job["state"] in ("Q", "H") and "index" in job and dialect() == "pbs":
                # OpenPBS keeps no job for it, only its state in the array's table
                # (req_delete.c): qstat makes its record up from the array's.
                job.update(state="X", no_record=True)
            elif job["state"] in ("Q", "H") and dialect() == "torque":
                # Torque: no exit status, unless the server sets exit_code_canceled_job
                # (req_delete.c); nothing on the job says who.
                job.update(state="C", exit=output.canceled_code())
            elif job["state"] in ("Q", "H"):
                # PBS: substate 91; "and terminated" on a comment if it has one
                # (svr_setjob_histinfo, update_job_finish_comment with no user).
                job.update(state="F", substate=91)
                output.comment(job, " and terminated")
            elif job["state"] == "R":
                job["deleting"] = True
                if dialect() == "pbs":  # req_deletejob2: who, on a running job only
                    output.comment(job, f" and terminated by {output.user()}@{SERVER}")
    return rc


def qsig(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    name = args[args.index("-s") + 1] if "-s" in args else "SIGTERM"
    rc = 0
    for job_id in [a for a in args if not a.startswith("-") and a != name]:
        if job_id not in state["jobs"]:
            err.append(f"qsig: Unknown Job Id {job_id}")
            return 153
        # Only running jobs take it; an array, its running elements (req_signal.c).
        running = [t for t in _targets(state["jobs"], job_id) if state["jobs"][t]["state"] == "R"]
        if not running:  # PBSE_BADSTATE; qsig goes on with the next id
            err.append(f"qsig: Request invalid for state of job {job_id}")
            rc = 15016 % 256
        for target in running:
            state["jobs"][target].setdefault("signals", []).append(name)
    return rc


PROGRAMS = {"qsub": qsub, "qstat": qstat, "qselect": qselect, "qdel": qdel, "qsig": qsig}


# -- the server: runs the jobs --------------------------------------------------------------


def _verdict(jobs: dict[str, Job], depend: str) -> str:
    verdict = "met"
    for clause in filter(None, depend.split(",")):
        kind, *ids = clause.split(":")
        named = [jobs[t] for n in ids if n in jobs for t in _targets(jobs, n)]
        if any(not finished(j) for j in named):
            verdict = "wait"
            continue
        ok = [j.get("exit") == 0 for j in named]
        kind = kind.removesuffix("array")
        if (kind == "afterok" and not all(ok)) or (kind == "afternotok" and all(ok)):
            return f"never:{ids[0]}"
    return verdict


def _start(job_id: str, job: Job) -> subprocess.Popen[bytes]:
    torque = dialect() == "torque"
    env = {
        **os.environ,
        "PBS_JOBID": job_id,
        "PBS_JOBNAME": job["name"],
        "PBS_O_WORKDIR": job["workdir"],
        "PBS_ENVIRONMENT": "PBS_BATCH",
    }
    output = job["output"]
    if "index" in job:
        env["PBS_ARRAYID" if torque else "PBS_ARRAY_INDEX"] = str(job["index"])
        output = (
            f"{output}-{job['index']}"
            if torque
            else output.replace("^array_index^", str(job["index"]))
        )
    with open(output, "ab") as fh:
        return subprocess.Popen(
            [job["shell"], job["script"]],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=os.environ.get("HOME", "/"),
            env=env,
            start_new_session=True,
        )


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def _step(jobs: dict[str, Job], running: dict[str, Any], slots: int) -> None:
    torque = dialect() == "torque"
    done = "C" if torque else "F"
    now = time.monotonic()
    for job_id, run in list(running.items()):
        job, proc = jobs[job_id], run["proc"]
        for name in job.get("signals", [])[run["sent"] :]:
            _signal(proc, signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
        run["sent"] = len(job.get("signals", []))
        if job.get("walltime") is not None and now - run["t0"] > job["walltime"] and not run["why"]:
            run.update(why="walltime", term=now)
            _signal(proc, signal.SIGTERM)
        if job.get("deleting") and not run["why"]:
            run.update(why="qdel", term=now)
            _signal(proc, signal.SIGTERM)
        if run["term"] is not None and now - run["term"] > KILL_WAIT_S:
            _signal(proc, signal.SIGKILL)
        rc = proc.poll()
        if rc is None:
            continue
        del running[job_id]
        job.update(state="X" if "index" in job and not torque else done, end=time.time())
        status = rc if rc >= 0 else 256 - rc  # the top shell's: 256 + N when killed
        if run["why"] == "walltime":
            job.update(exit=-11 if torque else -29, substate=93)
            output.comment(job, " and exceeded resource walltime")
        elif run["why"] == "qdel":
            # Both keep the top shell's status (req_jobobit.c): 143 from jobfleet's
            # script, which outlives the SIGTERM. Torque's exit_code_canceled_job
            # replaces it; PBS marks the job terminated (its comment says by whom).
            job.update(exit=output.canceled_code() or status if torque else status, substate=91)
        else:
            job.update(exit=status, substate=92 if status == 0 else 93)
            output.comment(job, " and finished" if status == 0 else " and failed")
        if "index" in job and not torque:  # the array's Exit_status (array_func.c)
            jobs[job["parent"]]["exit"] = 0 if job["exit"] == 0 else 1 if job["exit"] > 0 else 2
    for job in jobs.values():  # subjobs become F once their whole array is
        if job["state"] == "X" and all(
            finished(j) for j in jobs.values() if j.get("parent") == job.get("parent")
        ):
            job["state"] = "F"
    for job_id, job in sorted(jobs.items(), key=lambda item: item[1]["qtime"]):
        if job["state"] not in ("Q", "H") or (job.get("array") and "index" not in job):
            continue
        verdict = _verdict(jobs, job.get("depend", ""))
        if verdict.startswith("never"):
            if torque:
                job.update(
                    state="C",
                    exit=271,
                    comment=f"Job deleted as result of dependency on job {verdict[6:]}",
                )
            else:  # job_abt: an ordinary finished job (T_FIN_JOB), substate 92
                job.update(state="F", substate=92)
            continue
        if verdict == "wait":
            job.update(state="H", substate=22)
            continue
        job.update(state="Q", substate=10)
        parent = jobs.get(job.get("parent", ""), {})
        if parent.get("limit") and parent["limit"] <= sum(
            1 for n in running if jobs[n].get("parent") == job["parent"]
        ):
            continue
        if len(running) >= slots:
            continue
        running[job_id] = {
            "proc": _start(job_id, job),
            "t0": time.monotonic(),
            "sent": 0,
            "why": "",
            "term": None,
        }
        job.update(state="R", substate=42, start=time.time())
        if not torque:  # req_runjob.c form_attr_comment
            when = time.strftime("%a %b %d at %H:%M")
            job["comment"] = f"Job run at {when} on ({SERVER}:ncpus=1)"


def server(path: Path, slots: int = 8, tick_s: float = 0.05) -> int:
    running: dict[str, Any] = {}

    def tick() -> None:
        with locked(path) as state:
            _step(state["jobs"], running, slots)

    fakeserver.serve(tick, tick_s)
    for run in running.values():
        _signal(run["proc"], signal.SIGKILL)
    return 0


def main(argv: Sequence[str]) -> int:
    program, args = Path(argv[0]).name, list(argv[1:])
    path = Path(os.environ["FAKEPBS_STATE"])
    if program == "server":
        return server(path)
    return fakeserver.answer(program, args, locked(path), PROGRAMS, "FAKEPBS_CALLS")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
