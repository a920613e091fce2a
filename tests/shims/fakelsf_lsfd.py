"""The fake LSF's ``lsfd``: runs the jobs of :mod:`fakelsf`'s queue (``fakelsf.py lsfd``).

Each job's command runs in its own session, with ``LSB_JOBID``, ``LSB_JOBINDEX``,
``LSB_JOBNAME`` and ``LSB_DJOB_NUMPROC``, its output in ``-o`` (``%J``, ``%I``), after its
``-w`` dependencies, within its array's ``%N`` and its ``-W`` run limit. A bkill sends
SIGINT and SIGTERM, then SIGKILL after :data:`TERMINATE_INTERVAL_S` (LSF's
JOB_TERMINATE_INTERVAL, 10 s, shortened); the run limit sends SIGUSR2, then SIGKILL
(bsub -W, IBM LSF 10.1: "the job is sent a SIGUSR2 signal, and is killed if it does
not terminate within ten minutes"; shortened to the same interval).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

try:  # imported by the tests as shims.fakelsf_lsfd, or run by fakelsf.py lsfd
    from shims import fakeserver
    from shims.fakelsf import _COND_ANY, _ENDED, FakeLsf, Job, _elements, _value
except ImportError:
    import fakeserver  # type: ignore[no-redef]
    from fakelsf import _COND_ANY, _ENDED, FakeLsf, Job, _elements, _value  # type: ignore[no-redef]

__all__ = ["TERMINATE_INTERVAL_S", "lsfd"]

TERMINATE_INTERVAL_S = 2.0
#: bhist's and bjobs' reason of a job killed at its run limit.
RUNLIMIT_REASON = "TERM_RUNLIMIT: job killed after reaching LSF run time limit"


class _Running:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.started = time.monotonic()
        self.signals_sent = 0
        self.term_at: float | None = None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)


def _verdict(jobs: dict[str, Job], text: str) -> str:
    """``met``, ``wait`` or ``never`` for an expression of conditions joined by ``&&``
    (the fake treats ``||`` as ``&&``: jobfleet writes only ``&&``)."""
    verdict = "met"
    for kind, job_id in _COND_ANY.findall(text):
        stats = [j["stat"] for j in _elements(jobs, job_id)]
        if kind == "started":
            verdict = verdict if all(s != "PEND" for s in stats) else "wait"
            continue
        if not all(s in _ENDED for s in stats):
            verdict = "wait"
            continue
        want = {"done": "DONE", "exit": "EXIT"}.get(kind)
        if want is not None and not all(s == want for s in stats):
            return "never"
    return verdict


def _start(job: Job) -> _Running:
    index = str(job["index"])
    env = {
        **os.environ,
        "LSB_JOBID": job["id"],
        "LSB_JOBINDEX": index,
        "LSB_JOBNAME": _value("job_name", job),
        "LSB_DJOB_NUMPROC": str(job["slots"]),
    }
    output = job["output"].replace("%J", job["id"]).replace("%I", index) or os.devnull
    with open(Path(job["cwd"]) / output, "ab") as out:
        proc = subprocess.Popen(
            job["command"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=job["cwd"],
            env=env,
            start_new_session=True,
        )
    return _Running(proc)


def _step(jobs: dict[str, Job], running: dict[str, _Running], slots: int) -> None:
    now = time.monotonic()
    for key, run in list(running.items()):
        job = jobs[key]
        for name in job["signals"][run.signals_sent :]:
            run.signal(signal.Signals[f"SIG{name.upper().removeprefix('SIG')}"])
        run.signals_sent = len(job["signals"])
        if job["limit_s"] is not None and now - run.started > job["limit_s"] and not job["kill"]:
            job.update(kill=True, exit_reason=RUNLIMIT_REASON)
        if job["kill"] and run.term_at is None:
            run.term_at = now
            if job["exit_reason"] == RUNLIMIT_REASON:
                run.signal(signal.SIGUSR2)
            else:
                run.signal(signal.SIGINT)
                run.signal(signal.SIGTERM)
        if run.term_at is not None and now - run.term_at > TERMINATE_INTERVAL_S:
            run.signal(signal.SIGKILL)
        rc = run.proc.poll()
        if rc is None:
            continue
        del running[key]
        code = rc if rc >= 0 else 128 - rc
        if code == 0 and not job["kill"]:
            job.update(stat="DONE", exit_code="", end=time.time())
        else:
            job.update(stat="EXIT", exit_code=str(code), end=time.time())
    busy = [j for j in jobs.values() if j["stat"] == "RUN"]
    for key, job in sorted(jobs.items(), key=lambda kv: (int(kv[1]["id"]), kv[1]["index"])):
        if job["stat"] != "PEND":
            continue
        verdict = _verdict(jobs, job["dependency"]) if job["dependency"] else "met"
        if verdict == "never":
            if job["ti"]:
                job.update(
                    stat="EXIT",
                    exit_reason="TERM_ORPHAN_SYSTEM: orphan job terminated",
                    end=time.time(),
                )
            else:
                job["pend_reason"] = "Dependency condition invalid or never satisfied"
            continue
        if verdict == "wait":
            job["pend_reason"] = "Job dependency condition not satisfied"
            continue
        if job["limit"] and sum(j["id"] == job["id"] for j in busy) >= job["limit"]:
            job["pend_reason"] = "The job array has reached its job slot limit"
            continue
        if sum(j["slots"] for j in busy) + job["slots"] > slots:
            job["pend_reason"] = "Job slot limit reached"
            continue
        running[key] = _start(job)
        job.update(stat="RUN", start=time.time(), pend_reason="")
        busy.append(job)


def lsfd(fake: FakeLsf, slots: int = 8, tick_s: float = 0.05) -> int:
    """Run the fake cluster's jobs until SIGTERM, then kill those still running."""
    running: dict[str, _Running] = {}

    def tick() -> None:
        with fake.locked() as state:
            _step(state["jobs"], running, slots)

    fakeserver.serve(tick, tick_s)
    for run in running.values():
        run.signal(signal.SIGKILL)
    return 0
