"""What became of the calls of a job, read from their outcome files (``jobfleet result``)."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

from jobfleet.errors import FilesRemovedError, SpecError
from jobfleet.futures.layout import call_directory
from jobfleet.futures.payload import read_outcomes, read_payload_header
from jobfleet.futures.run import call_files
from jobfleet.states import JobRecord

__all__ = ["CallResult", "call_results"]

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 2000
_SHOWN.maxlist = _SHOWN.maxdict = _SHOWN.maxtuple = _SHOWN.maxset = 100


@dataclass(frozen=True)
class CallResult:
    """One call of a job: its element (None: a single job), its place in the element,
    and what became of it (``ok`` with ``value``, the repr of what it returned; else
    the exception's ``type``, ``message`` and ``traceback``, or no outcome at all)."""

    index: int | None
    position: int
    ok: bool
    value: str | None = None
    type: str | None = None
    message: str = ""
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "position": self.position,
            "ok": self.ok,
            "value": self.value,
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
        }


def _shown(blob_value: Any) -> str:
    return _SHOWN.repr(blob_value)


def call_results(record: JobRecord) -> list[CallResult]:
    """The calls of an ended job and what became of each, in order.

    Raises:
        SpecError: the job does not run calls of an Executor.
        FilesRemovedError: ``jobfleet clean`` removed its files.
    """
    directory = call_directory(record.spec.get("command", ()))
    if directory is None:
        raise SpecError("job_id", f"job {record.id} does not run a Python call of an Executor")
    if record.cleaned_at is not None:
        raise FilesRemovedError(record.id, record.cleaned_at, "its results went with them")
    indices: list[int | None] = list(record.elements) if record.elements else [None]
    found: list[CallResult] = []
    for index in indices:
        payload, outcome_file = call_files(directory, index)
        try:
            count = int(read_payload_header(payload).get("calls", 1))
        except (OSError, ValueError):
            count = 1
        try:
            outcomes = read_outcomes(outcome_file) or []
        except (OSError, ValueError) as exc:
            outcomes = []
            missing = f"its outcome file cannot be read: {exc}"
        else:
            element = record.elements.get(index) if index is not None else None
            state = element.state if element is not None else record.state
            missing = f"no result: the job ended {state.value} without one"
        for position in range(count):
            if position >= len(outcomes):
                found.append(CallResult(index, position, False, message=missing))
                continue
            outcome = outcomes[position]
            if not outcome.ok:
                found.append(
                    CallResult(
                        index,
                        position,
                        False,
                        type=outcome.type_name,
                        message=outcome.message,
                        traceback=outcome.traceback,
                    )
                )
                continue
            try:
                value = _shown(outcome.value())
            except Exception as exc:  # a class this process cannot import
                value = f"<a result that cannot be unpickled here: {exc!r}>"
            found.append(CallResult(index, position, True, value=value))
    return found
