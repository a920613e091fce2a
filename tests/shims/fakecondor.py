#!/usr/bin/env python3
"""A fake HTCondor access point for end-to-end tests of the HTCondor backend.

The executables in ``condor_bin/`` (``condor_submit``, ``condor_q``,
``condor_history``, ``condor_rm``, ``condor_release``, ``condor_version``) run this
file as ``$FAKECONDOR_PYTHON fakecondor.py PROGRAM ARG...``. The pool is one JSON
file (``$FAKECONDOR_STATE``) locked with :func:`fcntl.flock` (``fakecondor_pool.py``).
Nothing runs unless the test starts the fake's schedd (``fakecondor.py schedd``,
``fakecondor_schedd.py``): it then runs each proc's
executable as HTCondor's vanilla universe does (in ``initialdir``, stdout and stderr to
``output``/``error``, the submitter's environment with ``getenv = true``), honours
``hold``, ``max_materialize`` (late materialization: only that many procs of a cluster
exist at once), the ``periodic_remove`` jobfleet writes for the walltime and for a job
held for its memory (checked every tick, not every 60 s), ``request_memory`` (a job whose
family's RSS exceeds it is killed and held, HoldReasonCode 34 subcode 102, as the
starter's OOM handling does: vanilla_proc.cpp), ``condor_rm`` (the kill signal to the
job's main process, the whole family killed after ``$FAKECONDOR_MAX_VACATE_TIME``
seconds: ``fakecondor_schedd.py``), and writes the user event log (``log``).

Output follows docs/htcondor-notes.md and tests/backends/htcondor/fixtures: ``-json``
prints nothing when no ad matches; a removed job leaves the queue for the history with
its RemoveReason; a completed one with ExitCode, or ExitBySignal and ExitSignal.
It refuses what condor_submit refuses (no ``queue``, an executable it cannot read,
an unknown universe, a ``$CHOICE`` index out of range, a macro it cannot expand).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import fakeserver
from fakecondor_pool import Ad, State, event, leave, locked
from fakecondor_schedd import schedd

_MACRO = re.compile(r"\$(?:\((\w+)\)|CHOICE\((\w+),\s*([^)]*)\))")


# -- condor_submit ----------------------------------------------------------------------------


def _expand(value: str, proc: int, cluster: int, err: list[str]) -> str | None:
    def one(match: re.Match[str]) -> str:
        name, choice_of, items = match.groups()
        if name is not None:
            known = {"Process": proc, "ProcId": proc, "Cluster": cluster, "ClusterId": cluster}
            if name not in known:
                raise KeyError(name)
            return str(known[name])
        if choice_of != "Process":
            raise KeyError(choice_of)
        listed = [i.strip() for i in items.split(",")]
        if proc >= len(listed):
            raise IndexError(proc)
        return listed[proc]

    try:
        return _MACRO.sub(one, value)
    except (KeyError, IndexError) as exc:
        err.append(f"ERROR: on Line 1 of submit file: cannot expand {value!r} ({exc})")
        return None


def submit(state: State, args: list[str], out: list[str], err: list[str]) -> int:
    files = [a for a in args if not a.startswith("-")]
    if len(files) != 1 or len(files) != len(args):
        err.append(f"ERROR: this fake takes one submit file and no options, got {args}")
        return 1
    commands: dict[str, str] = {}
    attrs: dict[str, str] = {}
    count = None
    for raw in Path(files[0]).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("queue"):
            count = int(line.split()[1]) if len(line.split()) > 1 else 1
            continue
        key, eq, value = line.partition("=")
        if not eq:
            err.append(f"ERROR: on Line 1 of submit file: {line!r} is no command")
            return 1
        key, value = key.strip(), value.strip()
        if key.startswith("+") or key.startswith("My."):
            attrs[key.lstrip("+").removeprefix("My.")] = value
        else:
            commands[key.lower()] = value
    if count is None:
        err.append(f'ERROR: "{files[0]}" doesn\'t contain any "queue" commands -- no jobs queued')
        return 1
    if commands.get("universe", "vanilla").lower() != "vanilla":
        err.append(f"ERROR: this fake runs the vanilla universe only, not {commands['universe']}")
        return 1
    exe = commands.get("executable", "")
    if not os.access(exe, os.R_OK):
        err.append(f"ERROR: Can't access executable file {exe}: No such file or directory")
        return 1
    if not commands.get("request_cpus", "1").isdigit():
        err.append(f"ERROR: request_cpus = {commands['request_cpus']} is no number")
        return 1
    cluster = state["next"]
    procs = []
    for proc in range(count):
        ad: Ad = {
            "ClusterId": cluster,
            "ProcId": proc,
            "JobStatus": 1,
            "Owner": getpass.getuser(),
            "QDate": int(time.time()),
            "EnteredCurrentStatus": int(time.time()),
            "JobBatchName": commands.get("batch_name", ""),
            "TotalSubmitProcs": count,
        }
        for key, value in attrs.items():
            expanded = _expand(value, proc, cluster, err)
            if expanded is None:
                return 1
            ad[key] = json.loads(expanded) if re.fullmatch(r'-?\d+|".*"', expanded) else expanded
        argv = _expand(commands.get("arguments", ""), proc, cluster, err)
        output = _expand(commands.get("output", "/dev/null"), proc, cluster, err)
        error = _expand(commands.get("error", "/dev/null"), proc, cluster, err)
        if argv is None or output is None or error is None:
            return 1
        ad.update(
            _exe=exe,
            _args=argv.split(),
            _iwd=commands.get("initialdir", os.getcwd()),
            _out=output,
            _err=error,
            _log=commands.get("log"),
            _env=dict(os.environ) if commands.get("getenv", "false").lower() == "true" else {},
            _periodic_remove=commands.get("periodic_remove"),
        )
        if commands.get("request_memory", "").isdigit():
            ad["RequestMemory"] = int(commands["request_memory"])
        if commands.get("job_max_vacate_time", "").isdigit():
            ad["JobMaxVacateTime"] = int(commands["job_max_vacate_time"])
        if "kill_sig" in commands:  # a name (SIGUSR1) or a number (htcondor-jdl.rst)
            sig = commands["kill_sig"].upper()
            ad["_kill_sig"] = int(sig) if sig.isdigit() else int(signal.Signals[sig])
        if commands.get("hold", "false").lower() == "true":
            ad.update(JobStatus=5, HoldReason="submitted on hold at user's request")
            ad.update(HoldReasonCode=15, HoldReasonSubCode=0)
        procs.append(ad)
    state["next"] = cluster + 1
    limit = int(commands.get("max_materialize", "0"))
    now = procs if limit < 1 else procs[:limit]
    later = [] if limit < 1 else procs[limit:]
    for ad in later:
        ad["_limit"] = limit
    state["queue"] += now
    state["pending"] += later
    for ad in now:
        event(ad, 0, "Job submitted from host: <127.0.0.1:9618?sock=fakecondor>")
        if ad["JobStatus"] == 5:
            event(ad, 12, "Job was held.", [ad["HoldReason"], "Code 15 Subcode 0"])
    out += ["Submitting job(s)" + "." * count, f"{count} job(s) submitted to cluster {cluster}."]
    return 0


# -- condor_q and condor_history -------------------------------------------------------------------


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def _shown(ads: list[Ad], args: list[str], out: list[str]) -> None:
    wanted = (_option(args, "-attributes") or "").split(",")
    shown = [{k: v for k, v in ad.items() if not k.startswith("_") and k in wanted} for ad in ads]
    shown = [ad for ad in shown if ad]
    if shown:  # the real tools print nothing at all when nothing matched
        out.append("[\n" + "\n,\n".join(json.dumps(a, indent=2) for a in shown) + "\n]")


def _named(ads: list[Ad], args: list[str]) -> list[Ad]:
    constraint = _option(args, "-constraint")
    if constraint is None:
        return ads
    match = re.fullmatch(r'JobBatchName == "([^"]*)"', constraint)
    if match is None:
        raise ValueError(constraint)
    return [ad for ad in ads if ad.get("JobBatchName") == match[1]]


def queue(state: State, args: list[str], out: list[str], err: list[str]) -> int:
    if "-json" not in args:
        err.append("this fake condor_q answers -json only")
        return 1
    if "-factory" in args:  # the cluster ads of late-materialization factories
        _shown(_factories(state, {int(a) for a in _operands(args)}), args, out)
        return 0
    ads = [dict(ad) for ad in state["queue"]]
    for ad in ads:
        rest = [p["ProcId"] for p in state["pending"] if p["ClusterId"] == ad["ClusterId"]]
        if rest:  # a late-materialization factory: the cluster ad's next proc
            ad["JobMaterializeNextProcId"] = min(rest)
    _shown(_named(ads, args), args, out)
    return 0


def _factories(state: State, clusters: set[int]) -> list[Ad]:
    """One cluster ad per factory with procs still to make (``clusters``: only those)."""
    out: dict[int, Ad] = {}
    for ad in sorted(state["pending"], key=lambda a: -int(a["ProcId"])):  # lowest last
        if not clusters or ad["ClusterId"] in clusters:
            keys = ("ClusterId", "TotalSubmitProcs")
            out[ad["ClusterId"]] = {k: ad[k] for k in keys} | {
                "JobMaterializeNextProcId": ad["ProcId"]
            }
    return list(out.values())


def _operands(args: list[str]) -> list[str]:
    """The arguments that are no option nor an option's value."""
    valued = {"-attributes", "-limit", "-constraint"}
    return [
        a
        for i, a in enumerate(args)
        if not a.startswith("-") and (i == 0 or args[i - 1] not in valued)
    ]


def history(state: State, args: list[str], out: list[str], err: list[str]) -> int:
    clusters = {int(a) for a in _operands(args)}
    ads = list(reversed(state["history"]))  # newest first
    if clusters:
        ads = [ad for ad in ads if ad["ClusterId"] in clusters]
    limit = _option(args, "-limit")
    ads = _named(ads, args)[: int(limit)] if limit else _named(ads, args)
    _shown(ads, args, out)
    return 0


# -- condor_rm and condor_release -----------------------------------------------------------------


def _matches(ad: Ad, constraint: str) -> bool:
    """The constraints jobfleet writes: terms ``Attr == N`` joined by ``&&``, each
    alone or an ``||`` of such terms in parentheses."""
    for term in constraint.split(" && "):
        choices = term.strip().removeprefix("(").removesuffix(")").split(" || ")
        pairs = [re.fullmatch(r"(\w+) == (-?\d+)", c.strip()) for c in choices]
        if any(p is None for p in pairs):
            raise ValueError(constraint)
        if not any(ad.get(p[1]) == int(p[2]) for p in pairs if p is not None):
            return False
    return True


def _select(state: State, args: list[str]) -> list[Ad]:
    """Procs named by ids (C, C.P) or by a constraint (materialized ones only)."""
    ads = state["queue"] + state["pending"]
    constraint = _option(args, "-constraint")
    if constraint is not None:
        return [ad for ad in state["queue"] if _matches(ad, constraint)]
    chosen = []
    for arg in args:
        cluster, _, proc = arg.partition(".")
        chosen += [
            ad
            for ad in ads
            if str(ad["ClusterId"]) == cluster and (not proc or str(ad["ProcId"]) == proc)
        ]
    return chosen


def remove(state: State, args: list[str], out: list[str], err: list[str]) -> int:
    """rm.cpp: ``-reason R`` gives RemoveReason ``R``, else ``via condor_rm``; the schedd
    adds `` (by user <owner>)`` to either (schedd.cpp actOnJobs)."""
    reason = _option(args, "-reason")
    if "-reason" in args and reason is None:
        err.append("condor_rm: -reason requires another argument")
        return 1
    if reason is not None:
        i = args.index("-reason")
        args = args[:i] + args[i + 2 :]
    chosen = _select(state, args)
    constraint = _option(args, "-constraint")
    if not chosen and constraint is not None:  # rm.cpp: exit 1, these words
        err.append(f"Couldn't find/remove all jobs matching constraint ({constraint})")
        return 1
    if not chosen:
        err.append("condor_rm:0:There are no jobs in the queue")
        return 0
    why = f"{reason or 'via condor_rm'} (by user {getpass.getuser()})"
    for ad in chosen:
        if ad["JobStatus"] == 3:
            continue
        ad.update(JobStatus=3, RemoveReason=why, EnteredCurrentStatus=int(time.time()))
        if ad in state["pending"]:  # never materialized
            state["pending"].remove(ad)
            state["queue"].append(ad)
        if "_pid" not in ad:  # never started: it leaves at once
            leave(state, ad)
    for arg in args:
        if arg.isdigit():
            out.append(f"All jobs in cluster {arg} have been marked for removal")
        elif re.fullmatch(r"\d+\.\d+", arg):
            out.append(f"Job {arg} marked for removal")
    if constraint is not None:
        out.append(f"All jobs matching constraint ({constraint}) have been marked for removal")
    return 0


def _released(ad: Ad) -> None:
    for key in ("HoldReason", "HoldReasonCode", "HoldReasonSubCode"):
        ad.pop(key, None)
    ad.update(JobStatus=1, EnteredCurrentStatus=int(time.time()))
    event(ad, 13, "Job was released.", [f"via condor_release (by user {getpass.getuser()})"])


def release(state: State, args: list[str], out: list[str], err: list[str]) -> int:
    """rm.cpp's words; exit 1 when a cluster or the constraint matched no held job."""
    constraint = _option(args, "-constraint")
    if constraint is not None:
        groups = [(f"matching constraint ({constraint})", args)]
    else:
        groups = [(f"in cluster {arg}", [arg]) for arg in args]
    rc = 0
    for words, chosen in groups:
        held = [ad for ad in _select(state, chosen) if ad["JobStatus"] == 5]
        for ad in held:
            _released(ad)
        if held:
            out.append(f"All jobs {words} have been released")
        else:
            err.append(f"Couldn't find/release all jobs {words}")
            rc = 1
    return rc


def version(state: State, args: list[str], out: list[str], err: list[str]) -> int:
    out += [
        "$CondorVersion: 25.7.2 2026-03-11 BuildID: fakecondor $",
        "$CondorPlatform: X86_64-fake $",
    ]
    return 0


PROGRAMS = {
    "condor_submit": submit,
    "condor_q": queue,
    "condor_history": history,
    "condor_rm": remove,
    "condor_release": release,
    "condor_version": version,
}


def main(argv: Sequence[str]) -> int:
    program, args = Path(argv[0]).name, list(argv[1:])
    path = Path(os.environ["FAKECONDOR_STATE"])
    if program == "schedd":
        return schedd(path)
    out: list[str] = []
    err: list[str] = []
    with locked(path) as state:
        fakeserver.log_call("FAKECONDOR_CALLS", program, args)
        try:
            rc = PROGRAMS[program](state, args, out, err)
        except ValueError as exc:
            err.append(f"this fake {program} cannot read {exc}")
            rc = 1
    fakeserver.reply(out, err)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
