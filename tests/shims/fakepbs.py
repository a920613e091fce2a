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

Environment: FAKEPBS_STATE (the JSON file; ``.lock`` next to it), FAKEPBS_DIALECT,
FAKEPBS_PYTHON, FAKEPBS_NAME_LIMIT, FAKEPBS_CALLS (a file each call appends a line to).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

Job = dict[str, Any]
State = dict[str, Any]
SERVER = "fakepbs"
KILL_WAIT_S = 2.0
LIMIT = 78  # PBS's CHAR_LINE_LIMIT (Torque's linesize is 77)
FLAGS = set("ANSVjonlqWJtPMmpahrevkcCuIXzn")  # options with a value: all but the next
NO_VALUE = set("VhIXzn")


def dialect() -> str:
    return os.environ.get("FAKEPBS_DIALECT", "pbs")


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


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


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
        "owner": _user(),
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


def _finished(job: Job) -> bool:
    return job["state"] in ("F", "X", "C")


def _made_up(job: Job, jobs: dict[str, Job]) -> list[tuple[str, str]]:
    """A PBS element without a job of its own (deleted before it started): qstat
    prints its array's attributes but the array ones, with the element's state letter
    and a comment for it (OpenPBS stat_job.c, status_subjob)."""
    parent = jobs[job["parent"]]
    shown = _attributes(job["parent"], parent, jobs)
    out = [(k, v) for k, v in shown if k not in ("array", "array_indices_submitted", "comment")]
    out = [(k, job["state"] if k == "job_state" else v) for k, v in out]
    return [*out, ("comment", "Subjob finished")]


def _attributes(job_id: str, job: Job, jobs: dict[str, Job]) -> list[tuple[str, str]]:
    torque = dialect() == "torque"
    if job.get("no_record"):
        return _made_up(job, jobs)
    ctime = lambda t: str(int(t)) if torque else time.ctime(t)  # noqa: E731
    state = job["state"]
    if job.get("array") and "index" not in job:
        kids = [j for j in jobs.values() if j.get("parent") == job_id]
        state = (
            "F"
            if all(_finished(k) for k in kids)
            else ("B" if any(k["state"] not in ("Q", "H") for k in kids) else "Q")
        )
        if torque and state == "F":
            state = "C"
    a = [("Job_Name", job["name"]), ("Job_Owner", f"{job['owner']}@{SERVER}")]
    if job.get("start"):
        a += [
            ("resources_used.cput", "00:00:00"),
            ("resources_used.mem", "1024kb"),
            ("resources_used.walltime", _hms((job.get("end") or time.time()) - job["start"])),
        ]
    a += [
        ("job_state", state),
        ("queue", "workq"),
        ("server", SERVER),
        ("ctime", ctime(job["qtime"])),
    ]
    if job.get("start"):
        a.append(("exec_host", f"{SERVER}/0" if torque else f"{SERVER}/0*1"))
    a += [("Output_Path", f"{SERVER}:{job['output']}"), ("qtime", ctime(job["qtime"]))]
    if job.get("walltime") is not None:
        a.append(("Resource_List.walltime", _hms(job["walltime"])))
    if job.get("depend"):
        a.append(("depend", job["depend"]))
    if job.get("start"):
        a.append(("stime" if not torque else "start_time", ctime(job["start"])))
    if not torque:
        substate = {"B": 70, "F": 92}.get(state) if job.get("array") else None
        a.append(("substate", str(substate or job.get("substate", 10))))
    a.append(("Variable_List", f"PBS_O_WORKDIR={job['workdir']},PBS_O_HOST={SERVER}"))
    if job.get("comment"):
        a.append(("comment", job["comment"]))
    if job.get("exit") is not None:
        a.append(("exit_status" if torque else "Exit_status", str(job["exit"])))
    if job.get("end") and job.get("start"):
        a.append(("comp_time" if torque else "obittime", ctime(job["end"])))
    if job.get("array") and "index" not in job and not torque:
        a += [("array", "True"), ("array_indices_submitted", _span(job["indices"]))]
    if "index" in job:
        a.append(("job_array_id" if torque else "array_index", str(job["index"])))
    return a


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _span(indices: list[int]) -> str:
    return f"{indices[0]}-{indices[-1]}"


def _text(job_id: str, attrs: list[tuple[str, str]], limit: int) -> list[str]:
    """``qstat -f``: PBS's and Torque's prt_attr, continuation lines and all."""
    lines = [f"Job Id: {job_id}"]
    for name, value in attrs:
        out, start, first = [f"    {name} = "], len(name) + 7, True
        pieces = [p for p in value.split(",") if p]
        for i, piece in enumerate(pieces):
            if len(piece) + start < limit:
                out.append(piece)
                start += len(piece)
            else:
                if not first:
                    out.append("\n\t")
                    start = 9
                for ch in piece:
                    out.append(ch)
                    start += 1
                    if start > limit:
                        start = 8
                        out.append("\n\t")
            if i + 1 < len(pieces):
                first = False
                out.append(",")
        lines.append("".join(out))
    return [*lines, ""]


def _number(value: str) -> bool:
    """Whether OpenPBS 22.05's JSON writer prints the value unquoted (strtod reads it)."""
    try:
        val = float(value)
    except ValueError:
        return False
    return bool(value.strip()) and (not value.startswith("0") or val < 1)


def _json_value(value: str) -> str:
    return value if _number(value) else json.dumps(value)


def _json(records: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    lines = [
        "{",
        f'    "timestamp":{int(time.time())},',
        '    "pbs_version":"22.05.11",',
        f'    "pbs_server":"{SERVER}",',
        '    "Jobs":{',
    ]
    for n, (job_id, attrs) in enumerate(records):
        items, groups = [], {}
        for name, value in attrs:
            head, _, resource = name.partition(".")
            if resource:
                groups.setdefault(head, []).append((resource, value))
                if len(groups[head]) == 1:
                    items.append((head, None))
            elif name == "Variable_List":
                pairs = [p.partition("=") for p in value.split(",")]
                items.append((name, [(k, v) for k, _, v in pairs]))
            else:
                items.append((name, value))
        body = []
        for name, value in items:
            inner = (
                groups.get(name) if value is None else value if isinstance(value, list) else None
            )
            if inner is not None:
                rows = ",\n".join(f'                "{k}":{_json_value(v)}' for k, v in inner)
                body.append(f'            "{name}":{{\n{rows}\n            }}')
            else:
                shown = json.dumps(value) if name == "Job_Name" else _json_value(str(value))
                body.append(f'            "{name}":{shown}')
        comma = "," if n + 1 < len(records) else ""
        lines += [f'        "{job_id}":{{', ",\n".join(body), f"        }}{comma}"]
    return [*lines, "    }", "}"]


def _xml(records: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    parts = ["<Data>"]
    for job_id, attrs in records:
        parts.append(f"<Job><Job_Id>{job_id}</Job_Id>")
        open_group = None
        for name, value in attrs:
            head, _, resource = name.partition(".")
            if open_group and head != open_group:
                parts.append(f"</{open_group}>")
                open_group = None
            value = value.replace("<", "\x0e")  # MXMLSetVal; nothing else is escaped
            if resource:
                if open_group is None:
                    parts.append(f"<{head}>")
                    open_group = head
                parts.append(f"<{resource}>{value}</{resource}>")
            else:
                parts.append(f"<{name}>{value}</{name}>")
        if open_group:
            parts.append(f"</{open_group}>")
        parts.append("</Job>")
    return ['<?xml version="1.0"?>', "".join([*parts, "</Data>"])]


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
        if ids and not torque and not history and _finished(job):
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
            if not torque and not history and _finished(jobs[name]) and not ids:
                continue
            chosen.append(name)
    records = [(n, _attributes(n, jobs[n], jobs)) for n in dict.fromkeys(chosen)]
    if torque and "x" in flags:
        out += _xml(records)
    elif "json" in args or "JSON" in args:
        out += _json(records)
    else:
        for job_id, attrs in records:
            out += _text(job_id, attrs, 77 if torque else LIMIT)
    return rc


def qselect(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    name = args[args.index("-N") + 1] if "-N" in args else None
    history = "-x" in args or dialect() == "torque"
    for job_id, job in state["jobs"].items():
        if "index" in job or (name is not None and job["name"] != name):
            continue
        if _finished(job) and not history:
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
        if _finished(jobs[job_id]) and dialect() == "pbs" and "index" in jobs[job_id]:
            # PBSE_NOHISTARRAYSUBJOB (OpenPBS req_delete.c); qdel exits with the code
            err.append(f"qdel: Request invalid for finished array subjob {job_id}")
            rc = 15159 % 256
            continue
        if _finished(jobs[job_id]) and dialect() == "pbs":
            err.append(f"qdel: Job has finished {job_id}")
            rc = 35
            continue
        for name in _targets(jobs, job_id):
            job = jobs[name]
            if job["state"] in ("Q", "H") and "index" in job and dialect() == "pbs":
                # OpenPBS keeps no job for it, only its state in the array's table
                # (req_delete.c): qstat makes its record up from the array's.
                job.update(state="X", no_record=True)
            elif job["state"] in ("Q", "H"):
                job.update(state="C" if dialect() == "torque" else "F", substate=91)
            elif job["state"] == "R":
                job["deleting"] = True
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
        if any(not _finished(j) for j in named):
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
        job.update(
            state="X" if "index" in job and not torque else done, end=time.time(), substate=92
        )
        if run["why"] == "walltime":
            job.update(exit=-11 if torque else -29, substate=93)
        elif run["why"] == "qdel":
            # Torque keeps the top shell's status (req_jobobit.c): 143 from jobfleet's
            # script, which outlives the SIGTERM; PBS marks the job terminated.
            job.update(exit=(rc if rc >= 0 else 256 - rc) if torque else 271, substate=91)
        else:
            job["exit"] = rc if rc >= 0 else 256 - rc
        if "index" in job and not torque:  # the array's Exit_status (array_func.c)
            jobs[job["parent"]]["exit"] = 0 if job["exit"] == 0 else 1 if job["exit"] > 0 else 2
    for job in jobs.values():  # subjobs become F once their whole array is
        if job["state"] == "X" and all(
            _finished(j) for j in jobs.values() if j.get("parent") == job.get("parent")
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


def server(path: Path, slots: int = 8, tick_s: float = 0.05) -> int:
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    running: dict[str, Any] = {}
    while not stop:
        with locked(path) as state:
            _step(state["jobs"], running, slots)
        time.sleep(tick_s)
    for run in running.values():
        _signal(run["proc"], signal.SIGKILL)
    return 0


def main(argv: Sequence[str]) -> int:
    program, args = Path(argv[0]).name, list(argv[1:])
    path = Path(os.environ["FAKEPBS_STATE"])
    if program == "server":
        return server(path)
    out: list[str] = []
    err: list[str] = []
    with locked(path) as state:
        calls = os.environ.get("FAKEPBS_CALLS")
        if calls:
            with open(calls, "a") as log:
                log.write("\t".join([program, *args]) + "\n")
        rc = PROGRAMS[program](state, args, out, err)
    if out:
        sys.stdout.write("\n".join(out) + "\n")
    if err:
        sys.stderr.write("\n".join(err) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
