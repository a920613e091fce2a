"""The job side of a study step: ``python -m jobfleet.studies.launch STEP_DIR [INDEX]``.

Every element of a step's array job runs this with its array index
(``$JOBFLEET_ARRAY_INDEX``, from 1: element ``i`` runs the staged point ``i - 1``; a
single job runs point 0); a pipe task of a step with ``workers:`` gives its INDEX. It
reads its point (:mod:`.pointfile`), checks that the point of every step it follows
point by point completed, and then becomes the point's command in the point's
directory (``exec``: the same process, so the job script records the command's own
exit status and the scheduler's signals reach it).

A point whose predecessor did not complete runs nothing: like a job whose dependency
can never be met, it writes why to ``never[.<index>]`` in its job directory
(``$JOBFLEET_JOB_DIR``; a pipe task: ``STEP_DIR``) and exits
:data:`~jobfleet.scriptdeps.EXIT_DEPENDENCY_NEVER_MET`, so that it reads
``cancelled: ...`` with the reason. Exit 127 when the command cannot be started (as a
shell says), 2 for a launch that cannot find its point.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jobfleet.jobdir import never_met_path, read_exit_code
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.studies.pointfile import Requirement, read_point

__all__ = ["main", "unmet"]

#: Exit status when the command cannot be started (not found, not executable).
EXIT_CANNOT_START = 127
#: Exit status when the launch itself cannot go on (its point cannot be read).
EXIT_LAUNCH_FAILED = 2


def unmet(requirement: Requirement) -> str | None:
    """Why a point cannot run after ``requirement``'s point; None when it completed."""
    code = read_exit_code(requirement.exit_file)
    if code == 0:
        return None
    how = "did not run" if code is None else f"exited {code}"
    return (
        f"cancelled: point {requirement.point} of step {requirement.step!r} {how}, "
        "so this point cannot run"
    )


def _never(reason: str, index: int | None, job_dir: str) -> int:
    if job_dir:
        try:
            path = Path(never_met_path(job_dir, index))
            # An element's directory (jobfleet.jobdir), made if the submitter did not.
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.write_text(reason + "\n", encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"jobfleet: cannot record why: {exc}\n")
    sys.stderr.write(f"jobfleet: {reason}; the command was not run\n")
    return EXIT_DEPENDENCY_NEVER_MET


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or (len(argv) == 2 and not argv[1].isdigit()):
        sys.stderr.write("usage: python -m jobfleet.studies.launch STEP_DIRECTORY [INDEX]\n")
        return EXIT_LAUNCH_FAILED
    # INDEX: a pipe task's point (a step with workers:), whose reasons go beside it.
    piped = len(argv) == 2
    index_text = argv[1] if piped else os.environ.get("JOBFLEET_ARRAY_INDEX", "")
    element = int(index_text) if index_text.isdigit() else None
    reasons = argv[0] if piped else os.environ.get("JOBFLEET_JOB_DIR", "")
    index = element - 1 if element is not None else 0
    try:
        point = read_point(argv[0], index)
    except (OSError, LookupError, ValueError) as exc:
        sys.stderr.write(f"jobfleet: cannot read point {index} of {argv[0]}: {exc}\n")
        return EXIT_LAUNCH_FAILED
    for requirement in point.requires:
        reason = unmet(requirement)
        if reason is not None:
            return _never(reason, element, reasons)
    try:
        Path(point.directory).mkdir(parents=True, exist_ok=True)
        os.chdir(point.directory)
    except OSError as exc:
        sys.stderr.write(f"jobfleet: cannot work in {point.directory}: {exc}\n")
        return EXIT_LAUNCH_FAILED
    shell = point.shell
    argv_run = ["/bin/sh", "-c", shell] if shell is not None else list(point.argv or ())
    if not argv_run:
        sys.stderr.write(f"jobfleet: point {index} has no command\n")
        return EXIT_LAUNCH_FAILED
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv_run[0], argv_run)  # noqa: S606 - an argv list, no shell
    except OSError as exc:
        sys.stderr.write(f"jobfleet: cannot run {argv_run[0]!r}: {exc.strerror or exc}\n")
        return EXIT_CANNOT_START
    return EXIT_LAUNCH_FAILED  # not reached: execvp returns only by raising


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
