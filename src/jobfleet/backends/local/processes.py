"""The local agent's view of processes: is this our job, is its group alive, signal it.

Linux ``/proc`` is read directly: a recorded PID is only trusted while its
command line names the job's script.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from jobfleet.backends.local.queue import TaskRow
from jobfleet.jobdir import located, output_path
from jobfleet.script import LOCAL

__all__ = [
    "affinity_of",
    "become_subreaper",
    "group_alive",
    "is_job_process",
    "pinned",
    "signal_group",
    "spawn_task",
]

log = logging.getLogger(__name__)

_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


def spawn_task(task: TaskRow, cpus: tuple[int, ...]) -> int:
    """Start ``task``'s script (``/bin/sh job.sh``) in a session of its own, pinned to
    ``cpus`` (none: not pinned), its output appended to its files; its pid.

    Raises:
        OSError: the process could not be created, or its files opened.
    """
    env = dict(task.env)
    if task.index is not None:
        env["JOBFLEET_ARRAY_INDEX"] = str(task.index)
    else:
        env.pop("JOBFLEET_ARRAY_INDEX", None)
    # Only the GPUs handed to this job; none at all for a job that asked for none.
    env["CUDA_VISIBLE_DEVICES"] = task.gpus or ""
    env.pop("JOBFLEET_CPUS", None)
    # A job queued before elements were sharded writes its files flat.
    out = located(output_path(task.job_dir, "stdout", task.index))
    err = located(output_path(task.job_dir, "stderr", task.index))
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out, _APPEND, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, err, _APPEND, 0o600),
    ]
    with pinned(cpus) as pinning:
        if pinning:  # the CPUs the job runs on, e.g. "0,1"
            env["JOBFLEET_CPUS"] = ",".join(str(c) for c in cpus)
        return os.posix_spawn(
            LOCAL.interpreter,
            [LOCAL.interpreter, task.script],
            env,
            file_actions=actions,
            setsid=True,
        )


def is_job_process(pid: int, script: str) -> bool:
    """Whether ``pid`` is alive (not a zombie) and is this job's script.

    The command line must name the script: after a reboot or a long time a
    recorded PID may belong to anything, which must never be adopted or signalled.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2 :].split()[0]
    return state not in ("Z", "X") and os.fsencode(script) in argv


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is alive (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a group we do not own
        return True
    # Members may be zombies whose parent is gone: look at each one.
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def become_subreaper() -> None:
    """Adopt orphaned grandchildren (Linux), so they are reaped, not left as zombies.

    A job's processes whose parent died are otherwise handed to PID 1, which in
    many containers never reaps them.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        log.debug("cannot become a child subreaper on this system")


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to every process of a group that still exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - only if the group changed owner
        log.warning("process group %s: no permission to send signal %s", pgid, sig)


@contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[bool]:
    """While inside, this thread may run only on ``cpus``; yields whether it could.

    A process spawned inside starts with that affinity: posix_spawn's child is a
    clone of the calling thread and inherits its CPU mask before it runs a single
    instruction of the job, so nothing the job starts can escape it (setting the
    child's mask after the spawn would race with its first forks; ``taskset``
    would add an exec per job and a dependency). The thread's own mask is put back.
    """
    if not cpus:
        yield False
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:  # e.g. CPUs taken away from this agent since it started
        log.warning("cannot pin a job to CPUs %s: %s; it runs unpinned", list(cpus), exc)
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setaffinity(0, before)


def affinity_of(pid: int) -> tuple[int, ...]:
    """The CPUs a process may run on (an adopted job's, as an earlier agent pinned it)."""
    try:
        return tuple(sorted(os.sched_getaffinity(pid)))
    except OSError:
        return ()
