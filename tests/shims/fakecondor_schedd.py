"""The fake HTCondor access point's schedd and starter: runs the procs of the pool
(``fakecondor.py schedd``), enforces jobfleet's periodic_remove and request_memory,
and stops removed jobs the way the real starter does.

Stopping a job (condor_rm, a periodic_remove): the starter sends the job's kill signal
(SIGTERM unless ``kill_sig``) to the job's MAIN process only, ``kill(JobPid, sig)``
(src/condor_starter.V6.1/os_proc.cpp OsProc::Remove and ShutdownGraceful;
daemon_core.cpp Send_Signal); once the max vacate time passed (``MachineMaxVacateTime``,
600 s by default, or the job's shorter ``job_max_vacate_time``: docs/admin-manual/
configuration/startd.rst) it hard-kills the whole process family (vanilla_proc.cpp
ShutdownFast, ``Kill_Family``). When the main process exits, the rest of its family is
killed too (JobReaper). Here the vacate time is ``$FAKECONDOR_MAX_VACATE_TIME`` seconds
(default 600, as the real one), and a job's family is its session: each proc starts a
new one, which a process group made inside the job (``set -m``) does not leave.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import fakeserver
from fakecondor_pool import Ad, State, event, leave, locked

Running = dict[int, "subprocess.Popen[bytes]"]


def vacate_time_s() -> float:
    """MachineMaxVacateTime, as this fake's environment sets it."""
    return float(os.environ.get("FAKECONDOR_MAX_VACATE_TIME", "600"))


def _family(sid: int) -> list[int]:
    """The processes of a job's family: those of its session (from /proc/N/stat)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:  # fields after the command: state, ppid, pgrp, session
            pids.append(int(entry.name))
    return pids


def kill_family(sid: int) -> None:
    """SIGKILL to every process of the job's family (Kill_Family)."""
    for pid in _family(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _rss_mib(sid: int) -> int:
    """The resident memory of a job's family, in MiB."""
    pages = 0
    for pid in _family(sid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pages += int(fields[21])  # rss
    return pages * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)


def _start(ad: Ad, running: Running) -> None:
    env = ad["_env"] or {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
    try:
        with open(ad["_out"], "a") as stdout, open(ad["_err"], "a") as stderr:
            proc = subprocess.Popen(
                [ad["_exe"], *ad["_args"]],
                cwd=ad["_iwd"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # the job's family: its session
            )
    except OSError as exc:
        # The starter puts such a job on hold (os_proc.cpp: FailedToCreateProcess, 6).
        why = f"Error from slot1_1@fakecondor: Failed to execute '{ad['_exe']}': {exc.strerror}"
        ad.update(JobStatus=5, HoldReason=why, HoldReasonCode=6, HoldReasonSubCode=exc.errno)
        event(ad, 12, "Job was held.", [why, f"Code 6 Subcode {exc.errno}"])
        return
    running[proc.pid] = proc  # kept: its exit status is this schedd's to read
    now = int(time.time())
    ad.update(JobStatus=2, _pid=proc.pid, JobCurrentStartDate=now, EnteredCurrentStatus=now)
    ad.setdefault("JobStartDate", now)
    ad["RemoteHost"] = "slot1_1@fakecondor"
    event(ad, 1, "Job executing on host: <127.0.0.1:9618?sock=startd>")


def tick(state: State, running: Running) -> None:
    now = time.time()
    for ad in list(state["queue"]):
        pid = ad.get("_pid")
        if _memory_removed(ad, now):
            leave(state, ad)
            continue
        if pid is None:
            continue
        done = _reap(running, pid)
        if done is None and ad["JobStatus"] == 2 and _over_memory(ad, running):
            continue
        if done is None:
            limit = ad.get("JobfleetWalltime")
            rule = ad.get("_periodic_remove") or ""
            late = bool(limit) and now - ad["JobCurrentStartDate"] > limit
            if ad["JobStatus"] == 2 and late and "JobfleetWalltime" in rule:
                why = f"The job attribute PeriodicRemove expression '{rule}' evaluated to TRUE"
                ad.update(JobStatus=3, RemoveReason=why, EnteredCurrentStatus=int(now))
            if ad["JobStatus"] == 3:
                _stop(ad, now)
            continue
        ad["RemoteWallClockTime"] = float(int(now) - ad["JobCurrentStartDate"])
        ad.update(RemoteUserCpu=0.0, RemoteSysCpu=0.0, ResidentSetSize=1024)
        ad["LastRemoteHost"] = ad.pop("RemoteHost", "slot1_1@fakecondor")
        if ad["JobStatus"] != 3:
            code, sig = done
            ad.update(JobStatus=4, ExitBySignal=sig is not None)
            if sig is None:
                ad["ExitCode"] = code
                event(ad, 5, "Job terminated.", [f"(1) Normal termination (return value {code})"])
            else:
                ad["ExitSignal"] = sig
                event(ad, 5, "Job terminated.", [f"(0) Abnormal termination (signal {sig})"])
        leave(state, ad)
    _materialize(state)
    for ad in state["queue"]:
        if ad["JobStatus"] == 1:
            _start(ad, running)


def _over_memory(ad: Ad, running: Running) -> bool:
    """Hold a job using more than its request_memory, killing it, as the starter does
    (vanilla_proc.cpp outOfMemoryEvent: HoldReasonCode 34 JobOutOfResources, subcode
    102 memory)."""
    limit = ad.get("RequestMemory")
    if not isinstance(limit, int):
        return False
    used = _rss_mib(ad["_pid"])
    if used <= limit:
        return False
    why = (
        f"Error from slot1_1@fakecondor: Job has gone over cgroup memory limit of {limit} "
        f"megabytes. Last measured usage: {used} megabytes.  Consider resubmitting with a "
        "higher request_memory."
    )
    kill_family(ad["_pid"])
    proc = running.pop(ad.pop("_pid"), None)
    if proc is not None:
        proc.wait()
    ad.update(JobStatus=5, HoldReason=why, HoldReasonCode=34, HoldReasonSubCode=102)
    ad.update(EnteredCurrentStatus=int(time.time()), ResidentSetSize=used * 1024)
    ad["LastRemoteHost"] = ad.pop("RemoteHost", "slot1_1@fakecondor")
    event(ad, 12, "Job was held.", [why, "Code 34 Subcode 102"])
    return True


def _memory_removed(ad: Ad, now: float) -> bool:
    """jobfleet's periodic_remove for a job held for its memory; a removed job's hold
    reason moves to LastHoldReason* (schedd.cpp fixReasonAttrs, JA_REMOVE_JOBS)."""
    rule = ad.get("_periodic_remove") or ""
    if not (ad["JobStatus"] == 5 and ad.get("HoldReasonCode") == 34):
        return False
    if ad.get("HoldReasonSubCode") == 104 or "HoldReasonCode == 34" not in rule:
        return False
    why = f"The job attribute PeriodicRemove expression '{rule}' evaluated to TRUE"
    ad.update(JobStatus=3, RemoveReason=why, EnteredCurrentStatus=int(now))
    for key in ("HoldReason", "HoldReasonCode", "HoldReasonSubCode"):
        ad[f"Last{key}"] = ad.pop(key)
    return True


def _reap(running: Running, pid: int) -> tuple[int, int | None] | None:
    """(exit code, signal) of an ended job, None while it runs."""
    proc = running.get(pid)
    if proc is None:  # started by an earlier schedd: how it ended is not known
        return (0, signal.SIGKILL)
    code = proc.poll()
    if code is None:
        return None
    del running[pid]
    kill_family(pid)  # JobReaper: what the main process left behind goes too
    return (code, None) if code >= 0 else (0, -code)


def _stop(ad: Ad, now: float) -> None:
    """The starter's soft kill of a removed job, then its hard kill after the vacate time."""
    first = ad.setdefault("_kill_at", now)
    if now - first >= min(vacate_time_s(), ad.get("JobMaxVacateTime", float("inf"))):
        kill_family(ad["_pid"])
        return
    if not ad.get("_termed"):
        ad["_termed"] = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(ad["_pid"], ad.get("_kill_sig", signal.SIGTERM))  # the main process only


def _materialize(state: State) -> None:
    for ad in list(state["pending"]):
        alive = sum(1 for q in state["queue"] if q["ClusterId"] == ad["ClusterId"])
        first = min(p["ProcId"] for p in state["pending"] if p["ClusterId"] == ad["ClusterId"])
        if alive < ad["_limit"] and ad["ProcId"] == first:
            state["pending"].remove(ad)
            state["queue"].append(ad)
            event(ad, 0, "Job submitted from host: <127.0.0.1:9618?sock=fakecondor>")


def schedd(path: Path, tick_s: float = 0.1) -> int:
    """Run the pool's jobs until SIGTERM, then kill those still running."""
    running: Running = {}

    def one_tick() -> None:
        with locked(path) as state:
            tick(state, running)

    fakeserver.serve(one_tick, tick_s)
    with locked(path) as state:
        for ad in state["queue"]:
            if "_pid" in ad:
                kill_family(ad["_pid"])
    return 0
