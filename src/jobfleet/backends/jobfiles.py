"""What a job script leaves in its job directory, read to complete or correct a
scheduler's report: the exit codes it recorded, the reasons it wrote (a dependency
never met, an environment set-up that failed). Read only for the rare jobs that
need it (see :meth:`~jobfleet.backends.command.CommandBackend.poll`)."""

from __future__ import annotations

from collections.abc import Mapping

from jobfleet.backends.base import PollTarget
from jobfleet.jobdir import exit_code_path, read_exit_code, read_never_met, read_setup_failed
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.scriptsetup import EXIT_SETUP_FAILED
from jobfleet.states import JobState, never_met

__all__ = [
    "FROM_EXIT_FILE",
    "RECORDED",
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
