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
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from jobfleet.futures.payload import (
    Call,
    Outcome,
    read_calls,
    read_payload_header,
    versions,
    write_calls,
    write_outcomes,
)

__all__ = ["arm_checkpoint", "call_files", "main", "next_call_file", "run_call"]

#: The type name of the error a job reports when it cannot run its calls at all.
CANNOT_RUN = "jobfleet.futures.CannotRun"


def call_files(directory: Path, index: int | None) -> tuple[Path, Path]:
    """The payload and outcome files of a single job (``index`` None) or an element."""
    stem = "call" if index is None else str(index)
    return directory / f"{stem}.in", directory / f"{stem}.out"


def next_call_file(payload: Path) -> Path:
    """Where a checkpoint leaves the call the next attempt runs instead of ``payload``."""
    return payload.with_suffix(".next.in")


def _as_call(value: Any) -> Call:
    if isinstance(value, Call):
        return value
    if isinstance(value, tuple) and value and callable(value[0]):
        return Call(value[0], tuple(value[1]) if len(value) > 1 else (), *value[2:3])
    if callable(value):
        return Call(value)
    raise TypeError(f"checkpoint() returned {type(value).__name__}, not Call.of(fn, ...)")


def arm_checkpoint(call: Call, payload: Path) -> None:
    """Before the walltime, let a call with a ``checkpoint`` method say how to go on.

    At ``$JOBFLEET_CHECKPOINT_AFTER_S`` seconds (the executor sets it to the walltime
    less a margin), or at SIGUSR1 (Grid Engine's ``s_rt`` warning; ``jobfleet cancel
    --signal USR1``), ``call.fn.checkpoint(*args, **kwargs)`` returns the call the next
    attempt runs; it is written beside the payload. The call itself goes on until the
    scheduler ends the job at its walltime, and jobfleet submits the next attempt.
    """
    checkpoint = getattr(call.fn, "checkpoint", None)
    if not callable(checkpoint):
        return
    fired = threading.Event()

    def fire() -> None:
        if fired.is_set():
            return
        fired.set()
        try:
            following = _as_call(checkpoint(*call.args, **(call.kwargs or {})))
            write_calls(next_call_file(payload), [following])
        except Exception:
            sys.stderr.write("jobfleet: checkpoint() failed; the next attempt starts over\n")
            traceback.print_exc()
            return
        sys.stderr.write("jobfleet: checkpointed: the next attempt goes on from there\n")

    after = os.environ.get("JOBFLEET_CHECKPOINT_AFTER_S", "")
    if after:
        timer = threading.Timer(max(float(after), 0.0), fire)
        timer.daemon = True
        timer.start()
    signal.signal(signal.SIGUSR1, lambda *_: fire())


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
    if len(argv) not in (1, 2) or (len(argv) == 2 and not argv[1].isdigit()):
        sys.stderr.write("usage: python -m jobfleet.futures.run DIRECTORY [INDEX]\n")
        return 2
    # The calls of an array element; or of INDEX, given by a pipe task (workers=N).
    index_text = argv[1] if len(argv) == 2 else os.environ.get("JOBFLEET_ARRAY_INDEX", "")
    index = int(index_text) if index_text else None
    payload, outcome = call_files(Path(argv[0]), index)
    resumed = next_call_file(payload)
    if resumed.exists():  # an earlier attempt checkpointed: go on from there
        payload = resumed
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
    if len(calls) == 1:
        arm_checkpoint(calls[0], call_files(Path(argv[0]), index)[0])
    outcomes = [run_call(call) for call in calls]
    write_outcomes(outcome, outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
