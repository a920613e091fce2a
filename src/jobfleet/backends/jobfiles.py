"""What a job script leaves in its job directory, read to complete or correct a
scheduler's report: the exit codes it recorded, the reasons it wrote (a dependency
never met, an environment set-up that failed), when it started and ended. Read only
for the rare jobs that need it (see :meth:`~jobfleet.backends.command.CommandBackend.poll`).

Times: the job script creates ``started[.<i>]`` as it starts and writes
``exit_code[.<i>]`` as its command ends; their modification times are the file
system's clock (on a shared file system, the file server's), the same clock for both.
They fill in what accounting does not tell (a cluster without accounting, a row not
there yet): accounting's own times, when they come, replace them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jobfleet.backends.base import NativeStatus, PollTarget
from jobfleet.jobdir import (
    exit_code_path,
    legacy_path,
    read_exit_code,
    read_never_met,
    read_setup_failed,
    started_path,
)
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.scriptsetup import EXIT_SETUP_FAILED
from jobfleet.states import JobState, never_met
from jobfleet.usage import Usage

__all__ = [
    "FROM_EXIT_FILE",
    "RECORDED",
    "add_file_times",
    "file_times",
    "from_exit_files",
    "mark_explained",
    "recorded_exit_codes",
]

#: One element's report: (state, exit code, reason); as command.Element.
_Element = tuple[JobState, int | None, str | None]
_FAILED = JobState.FAILED
_NEVER = EXIT_DEPENDENCY_NEVER_MET
#: Ends whose exit code the job script may have recorded better than the scheduler:
#: the script outlives a cancel's or a time-out's SIGTERM and records the command's
#: status (143); nothing outlives a SIGKILL, which leaves the scheduler's word.
#: The reason of an outcome read from an exit-code file alone (:func:`from_exit_files`):
#: a backend with a better source for how such a job ended may replace it.
FROM_EXIT_FILE = "from the job's exit-code file"
RECORDED = frozenset(
    {JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.OUT_OF_MEMORY}
)


def _expected(target: PollTarget) -> list[int | None]:
    return list(target.indices) if target.indices is not None else [None]


def from_exit_files(
    target: PollTarget, reported: Mapping[int | None, _Element]
) -> dict[int | None, _Element]:
    """Outcomes the job script recorded, for elements the scheduler has forgotten."""
    found: dict[int | None, _Element] = {}
    for index in _expected(target):
        if index in reported:
            continue
        code = read_exit_code(exit_code_path(target.job_dir, index))
        if code is not None:
            state = JobState.COMPLETED if code == 0 else JobState.FAILED
            found[index] = (state, code, FROM_EXIT_FILE)
    return found


def mark_explained(target: PollTarget, elements: dict[int | None, _Element]) -> None:
    """_Elements whose script found a dependency never met ended cancelled, not failed;
    those whose environment set-up failed say why (``module X could not be loaded``)."""
    for index, (state, code, _) in list(elements.items()):
        if state.is_terminal and code == _NEVER:
            reason = read_never_met(target.job_dir, index)
            if reason is not None:  # else a command that exited 196 by itself
                elements[index] = (JobState.CANCELLED, None, never_met(reason))
        elif state.is_terminal and code == EXIT_SETUP_FAILED:
            reason = read_setup_failed(target.job_dir, index)
            if reason is not None:
                elements[index] = (state, code, reason)


def recorded_exit_codes(
    target: PollTarget, elements: dict[int | None, _Element], substitutes: bool
) -> None:
    """The exit code of a failed, cancelled, timed-out or killed job's command as its
    job script recorded it, where it did.

    Accounting may not say it right: sacct shows a job that exited 137 (its command
    killed by SIGKILL) as ``9:0`` (tests/backends/slurm/fixtures/22.05/oom-*); the script
    wrote 137. A job cancelled or timed out while running shows ``0:0`` in sacct, whose
    script recorded 143 (its command ended by the SIGTERM: 22.05/same-event-sacct). With
    ``substitutes``, the job script exits 1 in place of a code its scheduler reserves
    (Grid Engine's 99 and 100): the recorded code is the command's own, and a recorded 0
    behind such an exit 1 is a success. Nothing else makes a recorded 0 count: it never
    turns a failure into a success, nor gives a cancelled job a success's code.
    """
    for index, (state, code, reason) in list(elements.items()):
        if state not in RECORDED:
            continue
        recorded = read_exit_code(exit_code_path(target.job_dir, index))
        if recorded is None or recorded == code:
            continue
        if recorded != 0:
            elements[index] = (state, recorded, reason)
        elif substitutes and code == 1 and state is _FAILED:
            elements[index] = (JobState.COMPLETED, 0, reason)


def _mtime(path: str) -> float | None:
    try:
        return Path(path).stat().st_mtime
    except FileNotFoundError:
        old = legacy_path(path)  # a job written before elements were sharded
        return None if old is None else _mtime(old)
    except OSError:
        return None


def file_times(job_dir: str, index: int | None) -> Usage | None:
    """When the job script started and when its command ended, from its files; None
    when it left neither (it never started, or its directory is gone)."""
    started = _mtime(started_path(job_dir, index))
    ended = _mtime(exit_code_path(job_dir, index))
    if started is None and ended is None:
        return None
    if started is not None and ended is not None and ended < started:
        ended = None  # a code left by an earlier attempt: this one has not ended
    return Usage(started_at=started, ended_at=ended)


#: The states of an ended job or element.
_ENDED = frozenset(s for s in JobState if s.is_terminal)


def _timed(usage: Usage | None) -> bool:
    return usage is not None and usage.started_at is not None and usage.ended_at is not None


def add_file_times(statuses: dict[str, NativeStatus], targets: Mapping[str, PollTarget]) -> None:
    """Give each job or element this poll saw end, whose start or end accounting did
    not tell, the times its own files tell (accounting's values win where it has them).

    Jobs that had ended before this poll (asked about for their usage only) are not
    looked at again: their files were read the poll they ended. Kept cheap for the
    usual poll, where nothing ended: one look at each status.
    """
    changed: dict[str, NativeStatus] = {}
    for native_id, status in statuses.items():
        if not status.elements:
            if status.state not in _ENDED or _timed(status.usage):
                continue
            target = targets.get(native_id)
            if target is None or target.ended:
                continue
            times = file_times(target.job_dir, None)
            if times is not None:
                changed[native_id] = NativeStatus(
                    status.state, status.exit_code, status.reason, status.elements,
                    times.merged(status.usage), status.element_usage,
                )  # fmt: skip
            continue
        target = targets.get(native_id)
        if target is None or target.ended:
            continue
        added: dict[int, Usage] = {}
        for index, (state, _, _) in status.elements.items():
            used = status.element_usage.get(index)
            if state not in _ENDED or _timed(used):
                continue
            times = file_times(target.job_dir, index)
            if times is not None:
                added[index] = times.merged(used)
        if added:
            changed[native_id] = NativeStatus(
                status.state, status.exit_code, status.reason, status.elements, status.usage,
                {**status.element_usage, **added},
            )  # fmt: skip
    statuses.update(changed)
