#!/usr/bin/env python3
"""Fake LSF programs for end-to-end tests of the LSF backend without a cluster.

``bsub``, ``bjobs``, ``bhist`` and ``bkill`` in ``lsfbin/`` run this file as
``$FAKELSF_PYTHON fakelsf.py PROGRAM ARG...``; the queue is one JSON file locked with
:func:`fcntl.flock`. Jobs run only while a test runs the fake's ``lsfd``
(``fakelsf.py lsfd``, in :mod:`fakelsf_lsfd`).

What it answers follows docs/lsf-notes.md and tests/backends/lsf/fixtures: ``Job <N>
is submitted to default queue <normal>.``; ``bjobs -o ... -json`` with ``/`` written
``\\/``, ``EXIT_CODE`` empty for DONE, an ``ERROR`` record and ``Job <N> is not found``
on stderr for an unknown id (exit 255, as with ``LSB_BJOBS_CONSISTENT_EXIT_CODE=Y``);
``bjobs`` forgets finished jobs after ``$FAKELSF_CLEAN_PERIOD`` seconds (default 3600),
and ``bhist -l`` still tells how they ended, in 80-column lines wrapped at column 22.
It refuses what bsub refuses: an unknown option, a malformed ``-w`` expression, a
dependency on an unknown job, an array larger than 1000 or with an index above it
(``MAX_JOB_ARRAY_SIZE``), an array specification over 255 characters.
bkill records who killed a job (its caller, ``$USER``), as bhist -l shows it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

try:  # imported by the tests, as shims.fakelsf
    from shims import fakeserver
except ImportError:  # run as a program (python -I: no folder of its own on sys.path)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fakeserver

Job = dict[str, Any]
State = dict[str, Any]

MAX_JOB_ARRAY_SIZE = 1000
NOT_SUBMITTED = "Job not submitted."
#: bsub's options with a value, and without.
_WITH_VALUE = {"-J", "-o", "-e", "-w", "-n", "-R", "-M", "-W", "-q", "-P", "-gpu", "-U", "-u"}
_WITH_VALUE |= {"-sp", "-b", "-env", "-app", "-sla", "-G", "-cwd", "-g", "-m", "-c", "-v", "-t"}
_FLAGS = {"-ti", "-x", "-B", "-N", "-r", "-rn", "-K", "-I"}
#: The bjobs -o fields the fake knows.
_FIELDS = {"jobid", "jobindex", "stat", "exit_code", "exit_reason", "pend_reason", "job_name"}
_FIELDS |= {"max_mem", "cpu_used", "exec_host", "submit_time", "start_time", "finish_time"}
_FIELDS |= {"run_time", "user", "queue", "runtimelimit"}
_COND_ANY = re.compile(r"(done|exit|ended|started)\(\s*([0-9]+)\s*\)")
_ENDED = ("DONE", "EXIT")


class FakeLsf:
    """The fake cluster's state, for the programs and for tests."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[State]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(self.path.read_text()) if self.path.exists() else {}
            state.setdefault("next", 1001)
            state.setdefault("jobs", {})
            yield state
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(state))
            tmp.replace(self.path)

    def jobs(self) -> dict[str, Job]:
        with self.locked() as state:
            return dict(state["jobs"])


def _user() -> str:
    """Who runs the fake's programs (bsub's owner, bkill's caller)."""
    return os.environ.get("USER", "user")


def _key(job_id: str, index: int) -> str:
    return f"{job_id}[{index}]" if index else job_id


def _elements(jobs: dict[str, Job], job_id: str) -> list[Job]:
    return [j for j in jobs.values() if j["id"] == job_id]


# -- bsub ----------------------------------------------------------------------------------


def _indices(text: str) -> list[int] | None:
    out: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+)(?::([0-9]+))?)?", part)
        if match is None or int(match[1]) < 1:
            return None
        out += range(int(match[1]), int(match[2] or match[1]) + 1, int(match[3] or 1))
    return sorted(set(out))


def _check_dependency(jobs: dict[str, Job], text: str) -> str | None:
    """Why bsub refuses ``-w text``, or None: conditions joined by && or ||, in
    balanced brackets, each naming a job the cluster knows."""
    shape = _COND_ANY.sub("X", text)
    depth, ok = 0, bool(re.fullmatch(r"[X&|!()\s]*", shape))
    for char in shape:
        depth += {"(": 1, ")": -1}.get(char, 0)
        ok = ok and depth >= 0
    words = re.sub(r"[()!\s]", "", shape)
    if not ok or depth or not re.fullmatch(r"X(?:(?:&&|\|\|)X)*", words):
        return f"{text}: Dependency condition syntax error. {NOT_SUBMITTED}"
    for _, job_id in _COND_ANY.findall(text):
        if not _elements(jobs, job_id):
            return f"{job_id}: No matching job found. {NOT_SUBMITTED}"
    return None


#: What ``bsub -V`` and ``lsid`` print first (bsub -V writes it to stderr).
VERSION = "IBM Spectrum LSF Standard 10.1.0.13, Jun 08 2022"


def bsub(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    if list(args) == ["-V"]:
        err.append(VERSION)
        return 0
    options: dict[str, list[str]] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        opt = args[i]
        if opt in _FLAGS:
            options.setdefault(opt, []).append("")
        elif opt in _WITH_VALUE and i + 1 < len(args):
            options.setdefault(opt, []).append(args[i + 1])
            i += 1
        else:
            err.append(f"{opt}: Illegal option. {NOT_SUBMITTED}")
            return 255
        i += 1
    command = list(args[i:])
    if not command:
        err.append(f"No command given (the fake reads no job script from stdin). {NOT_SUBMITTED}")
        return 255
    jobs = state["jobs"]
    name_text = options.get("-J", [command[-1].rsplit("/", 1)[-1]])[-1]
    match = re.fullmatch(r"([^\[\]%]+)(?:\[([^\]]+)\](?:%([0-9]+))?)?", name_text)
    if match is None:
        err.append(f"{name_text}: Bad job name. {NOT_SUBMITTED}")
        return 255
    indices = [0] if match[2] is None else _indices(match[2])
    if indices is None:
        err.append(f"{name_text}: Bad job array index list. {NOT_SUBMITTED}")
        return 255
    if match[2] is not None and len(name_text) > 255:  # IBM LSF 10.1, "Job arrays"
        err.append(f"Array specification is longer than 255 characters. {NOT_SUBMITTED}")
        return 255
    if len(indices) > MAX_JOB_ARRAY_SIZE or max(indices) > MAX_JOB_ARRAY_SIZE:
        err.append(f"The job array size exceeds MAX_JOB_ARRAY_SIZE. {NOT_SUBMITTED}")
        return 255
    dependency = options.get("-w", [""])[-1]
    if dependency and (why := _check_dependency(jobs, dependency)) is not None:
        err.append(why)
        return 255
    limit_text = options.get("-W", [""])[-1]
    limit_s = None
    if limit_text:
        minutes = re.fullmatch(r"(?:([0-9]+):)?([0-9]+)", limit_text)
        if minutes is None:
            err.append(f"{limit_text}: Bad RUNLIMIT specification. {NOT_SUBMITTED}")
            return 255
        limit_s = (int(minutes[1] or 0) * 60 + int(minutes[2])) * 60
    job_id = str(state["next"])
    state["next"] += 1
    queue = options.get("-q", ["normal"])[-1]
    for index in indices:
        jobs[_key(job_id, index)] = {
            "id": job_id,
            "index": index,
            "name": match[1],
            "command": command,
            "output": options.get("-o", [""])[-1],
            "cwd": os.getcwd(),
            "dependency": dependency,
            "ti": "-ti" in options,
            "limit": int(match[3] or 0),
            "limit_s": limit_s,
            "slots": int(options.get("-n", ["1"])[-1]),
            "queue": queue,
            "user": _user(),
            "stat": "PEND",
            "exit_code": "",
            "exit_reason": "",
            "pend_reason": "New job is waiting for scheduling",
            "submit": time.time(),
            "start": None,
            "end": None,
            "signals": [],
            "kill": False,
        }
    where = "queue" if "-q" in options else "default queue"
    out.append(f"Job <{job_id}> is submitted to {where} <{queue}>.")
    return 0


# -- bjobs ---------------------------------------------------------------------------------


def _when(at: float | None, finish: bool = False) -> str:
    if at is None:
        return ""
    text = time.strftime("%b %e %H:%M", time.localtime(at))
    return text + " L" if finish else text


def _value(field: str, job: Job) -> str:
    ran = job["start"] is not None
    return {
        "jobid": job["id"],
        "jobindex": str(job["index"]),
        "stat": job["stat"],
        "exit_code": job["exit_code"],
        "exit_reason": job["exit_reason"],
        "pend_reason": job["pend_reason"] if job["stat"] == "PEND" else "",
        "job_name": f"{job['name']}[{job['index']}]" if job["index"] else job["name"],
        "max_mem": "2 Mbytes" if ran else "",
        "cpu_used": "0.0 second(s)" if ran else "",
        "exec_host": "fakehost" if ran else "",
        "submit_time": _when(job["submit"]),
        "start_time": _when(job["start"]),
        "finish_time": _when(job["end"], finish=True),
        "run_time": f"{int((job['end'] or time.time()) - job['start'])} second(s)"
        if ran
        else "0 second(s)",
        "user": job.get("user") or _user(),
        "queue": job["queue"],
        # minutes with one decimal, as without -hms (argonne-lcf/balsam: "1440.0")
        "runtimelimit": f"{job['limit_s'] / 60:.1f}" if job["limit_s"] else "",
    }[field]


def _selected(jobs: dict[str, Job], ids: Sequence[str], every: bool) -> tuple[list[Job], list[str]]:
    clean = float(os.environ.get("FAKELSF_CLEAN_PERIOD", "3600"))
    now = time.time()

    def known(job: Job) -> bool:
        if job["stat"] in _ENDED:
            return every and now - (job["end"] or now) < clean
        return True

    if not ids:
        return [j for j in jobs.values() if known(j)], []
    found, missing = [], []
    for text in ids:
        match = re.fullmatch(r"([0-9]+)(?:\[([0-9]+)\])?", text)
        chosen = []
        if match is not None:
            chosen = [
                j
                for j in _elements(jobs, match[1])
                if known(j) and (match[2] is None or j["index"] == int(match[2]))
            ]
        if chosen:
            found += chosen
        else:
            missing.append(text)
    return found, missing


def bjobs(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    every = json_out = noheader = False
    fmt, name, ids = "", None, []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-a":
            every = True
        elif arg == "-json":
            json_out = True
        elif arg == "-noheader":
            noheader = True
        elif arg in ("-o", "-J", "-u") and i + 1 < len(args):
            i += 1
            if arg == "-o":
                fmt = args[i]
            elif arg == "-J":
                name = args[i]
        elif arg.startswith("-"):
            err.append(f"{arg}: Illegal option.")
            return 255
        else:
            ids.append(arg)
        i += 1
    if json_out and noheader:
        err.append("-json and -noheader cannot be used together.")
        return 255
    if not fmt:
        err.append("The fake bjobs answers only -o formats.")
        return 255
    delimiter = " "
    if (m := re.search(r"delimiter='(.)'", fmt)) is not None:
        delimiter, fmt = m[1], fmt[: m.start()]
    fields = fmt.split()
    bad = [f for f in fields if f.lower() not in _FIELDS]
    if bad:
        err.append(f"{bad[0]}: Illegal field name.")
        return 255
    found, missing = _selected(state["jobs"], ids, every)
    if name is not None:
        found = [j for j in found if j["name"] == name]
    for text in missing:
        err.append(f"Job <{text}> is not found")
    if json_out:
        records: list[dict[str, str]] = [
            {f.upper(): _value(f.lower(), j) for f in fields} for j in found
        ]
        records += [{"JOBID": t, "ERROR": f"Job <{t}> is not found"} for t in missing]
        body = {"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}
        out.append(json.dumps(body, indent=2, separators=(",", ":")).replace("/", "\\/"))
    elif found:
        if not noheader:
            out.append(delimiter.join(f.upper() for f in fields))
        out += [delimiter.join(_value(f.lower(), j) or "-" for f in fields) for j in found]
    elif not ids:
        out.append("No unfinished job found" if not every else "No job found")
    return 255 if missing else 0


# -- bhist -l ------------------------------------------------------------------------------


def _wrapped(text: str) -> list[str]:
    """One logical line as LSF prints it: 80 columns, going on at column 22."""
    lines, rest = [text[:80]], text[80:]
    while rest:
        lines.append(" " * 21 + rest[:59])
        rest = rest[59:]
    return lines


def _stamp(at: float) -> str:
    return time.strftime("%a %b %e %H:%M:%S", time.localtime(at))


def bhist(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    args = list(args)
    if "-n" in args:  # the number of event log files: the fake has one, all of it
        at = args.index("-n")
        if at + 1 >= len(args) or not args[at + 1].isdigit():
            err.append("-n: Illegal option value.")
            return 255
        del args[at : at + 2]
    ids = [a for a in args if not a.startswith("-")]
    if "-l" not in args or any(a not in ("-l",) for a in args if a.startswith("-")):
        err.append("The fake bhist answers only -l (and -n).")
        return 255
    wanted = {i.split("[")[0] for i in ids}
    found = [j for j in state["jobs"].values() if not ids or j["id"] in wanted]
    if not found:
        err.append("No matching job found")
        return 255
    for n, job in enumerate(found):
        if n:
            out.append("-" * 78)
        head = f"Job <{_key(job['id'], job['index'])}>, Job Name <{_value('job_name', job)}>, "
        head += (
            f"User <{_value('user', job)}>, Project <default>, Command <{' '.join(job['command'])}>"
        )
        out += _wrapped(head)
        out += _wrapped(
            f"{_stamp(job['submit'])}: Submitted from host <fakehost>, "
            f"to Queue <{job['queue']}>, CWD <{job['cwd']}>;"
        )
        if job["limit_s"]:  # openlava cmd.prt.c prtResourceLimit: 25 columns a limit
            out += ["", " RUNLIMIT".ljust(25), f" {job['limit_s'] / 60:.1f} min".ljust(25)]
        if job["start"] is not None:
            out += _wrapped(
                f"{_stamp(job['start'])}: Dispatched to <fakehost>, Effective RES_REQ "
                "<select[type == local] >;"
            )
        if job["stat"] == "DONE":
            out += _wrapped(
                f"{_stamp(job['end'])}: Done successfully. The CPU time used is 0.0 seconds;"
            )
        elif job["stat"] == "EXIT":
            if job.get("killed_by"):  # openlava bhist.c, EVENT_JOB_SIGNAL
                out += _wrapped(
                    f"{_stamp(job['killed_at'])}: Signal <KILL> requested by user or "
                    f"administrator <{job['killed_by']}>;"
                )
            if job["start"] is not None and job["exit_code"] not in ("", "0"):
                out += _wrapped(
                    f"{_stamp(job['end'])}: Exited with exit code {job['exit_code']}. "
                    "The CPU time used is 0.0 seconds;"
                )
            reason = f"; {job['exit_reason']}" if job["exit_reason"] else ""
            out += _wrapped(f"{_stamp(job['end'])}: Completed <exit>{reason};")
        out += ["", "Summary of time in seconds spent in various states by  " + _stamp(time.time())]
        out += [
            "  PEND     PSUSP    RUN      USUSP    SSUSP    UNKWN    TOTAL",
            "  0        0        0        0        0        0        0",
        ]
    return 0


# -- bkill ---------------------------------------------------------------------------------


def bkill(state: State, args: Sequence[str], out: list[str], err: list[str]) -> int:
    sig, targets, i = None, [], 0
    while i < len(args):
        if args[i] == "-s" and i + 1 < len(args):
            sig, i = args[i + 1], i + 2
            continue
        if args[i].startswith("-"):
            err.append(f"{args[i]}: Illegal option.")
            return 255
        targets.append(args[i])
        i += 1
    rc = 0
    for text in targets:
        match = re.fullmatch(r"([0-9]+)(?:\[([0-9,:\-]+)\])?", text)
        chosen = _elements(state["jobs"], match[1]) if match else []
        if match and match[2]:
            wanted = set(_indices(match[2]) or [])
            chosen = [j for j in chosen if j["index"] in wanted]
        if not chosen:
            err.append(f"Job <{text}>: No matching job found")
            rc = 255
            continue
        for job in chosen:
            key = _key(job["id"], job["index"])
            if job["stat"] in _ENDED:
                err.append(f"Job <{key}>: Job has already finished")
                rc = 255
            elif sig is not None:
                job["signals"].append(sig)
                out.append(f"Job <{key}> is being signaled")
            else:
                owner = job.get("user") in (None, _user())
                why = "TERM_OWNER: job killed by owner"
                if not owner:
                    why = "TERM_ADMIN: job killed by root or LSF administrator"
                job.update(exit_reason=why, killed_by=_user(), killed_at=time.time())
                if job["stat"] == "PEND":
                    job.update(stat="EXIT", end=time.time())
                else:
                    job.update(kill=True)
                out.append(f"Job <{key}> is being terminated")
    return rc


PROGRAMS = {"bsub": bsub, "bjobs": bjobs, "bhist": bhist, "bkill": bkill}


def main(argv: Sequence[str]) -> int:
    program, args = Path(argv[0]).name, list(argv[1:])
    fake = FakeLsf(os.environ["FAKELSF_STATE"])
    if program == "lsfd":
        # The daemon is a sibling module that imports this one by name: this file,
        # run as a script, is that module (and its directory on sys.path: python -I).
        sys.modules.setdefault("fakelsf", sys.modules[__name__])
        from fakelsf_lsfd import lsfd

        return lsfd(fake)
    return fakeserver.answer(program, args, fake.locked(), PROGRAMS, "FAKELSF_CALLS")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
