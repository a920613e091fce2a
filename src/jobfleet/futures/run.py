"""The job side of a Python call: ``python -m jobfleet.futures.run DIR``.

Runs the calls of ``DIR/call.in`` (a single job) or of ``DIR/<index>.in`` (the
array element ``$JOBFLEET_ARRAY_INDEX``), one after the other, and writes what
became of each to the ``.out`` file beside it (atomically). Exit status 0 when
every call returned, 1 when one raised or could not run; a traceback goes to
standard error too, so the job's log shows it.

Before unpickling anything it checks that this Python's major.minor and this
cloudpickle are the submitter's (cloudpickle is only safe between identical
versions) and fails naming both when they are not.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import cloudpickle  # type: ignore[import-untyped]

from jobfleet.futures.payload import (
    Call,
    Outcome,
    read_calls,
    read_payload_header,
    versions,
    write_outcomes,
)

__all__ = ["call_files", "main", "run_call"]

#: The type name of the error a job reports when it cannot run its calls at all.
CANNOT_RUN = "jobfleet.futures.CannotRun"


def call_files(directory: Path, index: int | None) -> tuple[Path, Path]:
    """The payload and outcome files of a single job (``index`` None) or an element."""
    stem = "call" if index is None else str(index)
    return directory / f"{stem}.in", directory / f"{stem}.out"


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def run_call(call: Call) -> Outcome:
    """Run one call; its outcome (the value or the exception, pickled when they pickle)."""
    try:
        value = call.fn(*call.args, **(call.kwargs or {}))
    except (Exception, SystemExit) as exc:
        text = traceback.format_exc()
        sys.stderr.write(text)
        try:
            blob = cloudpickle.dumps(exc)
        except Exception:
            blob = b""  # the type name, message and traceback still tell
        return Outcome(False, blob, _type_name(exc), str(exc), text)
    try:
        return Outcome(True, cloudpickle.dumps(value))
    except Exception as exc:
        message = f"its return value (a {type(value).__name__}) cannot be pickled: {exc}"
        sys.stderr.write(f"jobfleet: {message}\n")
        return Outcome(False, b"", _type_name(exc), message, traceback.format_exc())


def _cannot_run(outcome: Path, count: int, message: str, text: str = "") -> int:
    sys.stderr.write(f"jobfleet: {message}\n{text}")
    write_outcomes(outcome, [Outcome(False, b"", CANNOT_RUN, message, text)] * max(count, 1))
    return 1


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m jobfleet.futures.run DIRECTORY\n")
        return 2
    index_text = os.environ.get("JOBFLEET_ARRAY_INDEX", "")
    index = int(index_text) if index_text else None
    payload, outcome = call_files(Path(argv[0]), index)
    try:
        header = read_payload_header(payload)
    except (OSError, ValueError) as exc:
        return _cannot_run(outcome, 1, f"cannot read the call's payload: {exc}")
    count = int(header.get("calls", 1))
    here = versions()
    theirs = {k: str(header.get(k)) for k in here}
    if theirs != here:
        return _cannot_run(
            outcome,
            count,
            f"the call was pickled by Python {theirs['python']} with cloudpickle "
            f"{theirs['cloudpickle']}, but this job runs Python {here['python']} with "
            f"cloudpickle {here['cloudpickle']} ({sys.executable}); run it with the same "
            "versions (Executor(python=...), or install the same cloudpickle)",
        )
    try:
        _, calls = read_calls(payload)
    except Exception as exc:  # a module the call needs is missing here, ...
        return _cannot_run(
            outcome, count, f"cannot unpickle the call: {exc!r}", traceback.format_exc()
        )
    outcomes = [run_call(call) for call in calls]
    write_outcomes(outcome, outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
