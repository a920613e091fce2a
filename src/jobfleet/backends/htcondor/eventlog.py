"""The user job event log (``log = ...`` in the submit file): how each proc ended, read
by a pure function. jobfleet reads it only for what neither ``condor_q`` nor
``condor_history`` told (an access point without history), and ``jobfleet debug parse``
reads saved ones.

An event is a header line ``NNN (cluster.proc.subproc) <date> <text>`` (the date
``MM/DD hh:mm:ss`` or, with ISO_DATE, ``YYYY-MM-DD hh:mm:ss``), body lines, and ``...``
(src/condor_utils/condor_event.cpp; fixtures ``eventlog-*.log``). The events read:
000 submitted, 001 executing, 005 terminated (``(1) Normal termination (return value
N)`` or ``(0) Abnormal termination (signal N)``), 009 aborted (removed; the reason on
the next line), 012 held (reason, then ``Code N Subcode M``), 013 released. An abort
by jobfleet's periodic_remove of a job held for its memory (code 34) is out of memory.
"""

from __future__ import annotations

import re

from jobfleet.backends.command import Element
from jobfleet.backends.htcondor import reasons
from jobfleet.states import JobState

__all__ = ["HEADER", "parse_event_log"]

#: An event's first line: number, job id, date and time, text.
HEADER = re.compile(
    r"^(\d{3}) \((-?\d+)\.(-?\d+)\.(-?\d+)\) "
    r"(?:\d{2}/\d{2}|\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2}(?:\.\d+)?Z? ?(.*)$"
)
_NORMAL = re.compile(r"Normal termination \(return value (-?\d+)\)")
_SIGNAL = re.compile(r"Abnormal termination \(signal (\d+)\)")
_CODE = re.compile(r"^Code (\d+) Subcode (-?\d+)$")


def _events(text: str) -> list[tuple[int, int, int, str, list[str]]]:
    """(event number, cluster, proc, header text, body lines) in the log's order."""
    events: list[tuple[int, int, int, str, list[str]]] = []
    current: tuple[int, int, int, str, list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("..."):
            current = None
            continue
        match = HEADER.match(line)
        if match:
            number, cluster, proc, _, rest = match.groups()
            current = (int(number), int(cluster), int(proc), rest.strip(), [])
            events.append(current)
        elif current is not None and line.strip():
            current[4].append(line.strip())
    return events


def parse_event_log(text: str, walltime_s: int | None = None) -> dict[tuple[str, int], Element]:
    """(cluster, proc) -> its state as the event log tells it: the last event's, or the
    first end's (nothing after a job's end changes how it ended). ``walltime_s``: the
    limit jobfleet's periodic_remove enforced (the event log does not say)."""
    found: dict[tuple[str, int], Element] = {}
    holds: dict[tuple[str, int], tuple[int | None, int | None, str]] = {}
    for number, cluster, proc, _, body in _events(text):
        if cluster < 0:
            continue  # a placeholder event (-01.-01.-01)
        key = (str(cluster), proc)
        known = found.get(key)
        if known is not None and known[0].is_terminal:
            continue  # how it ended stands (a test log has an abort after a termination)
        if number == 0:
            found.setdefault(key, (JobState.PENDING, None, None))
        elif number == 1:
            found[key] = (JobState.RUNNING, None, None)
        elif number == 5:
            found[key] = _terminated(body)
        elif number == 9:
            # Newer HTCondor: "Job was aborted." + reason; older: "Job was aborted by the
            # user." (by whom not said: no reason).
            code, subcode, why = holds.get(key, (None, None, ""))
            found[key] = reasons.removed(
                body[0] if body else None,
                walltime_s=walltime_s,
                hold_code=code,
                hold_subcode=subcode,
                hold_reason=why,
            )
        elif number == 12:
            codes = next((m for line in body if (m := _CODE.match(line))), None)
            code = int(codes[1]) if codes else None
            why = next((line for line in body if not _CODE.match(line)), "no reason given")
            holds[key] = (int(codes[1]), int(codes[2]), why) if codes else (None, None, why)
            found[key] = (JobState.PENDING, None, reasons.held(why, code))
        elif number == 13:
            holds.pop(key, None)
            found[key] = (JobState.PENDING, None, "released")
    return found


def _terminated(body: list[str]) -> Element:
    for line in body:
        if match := _NORMAL.search(line):
            code = int(match[1])
            return (JobState.COMPLETED if code == 0 else JobState.FAILED), code, None
        if match := _SIGNAL.search(line):
            signal = int(match[1])
            return JobState.FAILED, 128 + signal, f"killed by signal {signal}"
    return JobState.UNKNOWN, None, "terminated; the event log does not say how"
