"""Is HTCondor here (``--backend auto``, ``jobfleet info``), and which saved outputs
its parsers read (``jobfleet debug parse``)."""

from __future__ import annotations

import json
import re
from typing import Any

from jobfleet.backends.command import PollContext, Seen
from jobfleet.backends.detect import Found, probe, which
from jobfleet.backends.formats import OutputFormat
from jobfleet.backends.htcondor import parse
from jobfleet.backends.htcondor.eventlog import HEADER, parse_event_log
from jobfleet.runner import CommandResult, Runner

__all__ = ["detect", "output_formats", "parse_version"]

_VERSION = re.compile(r"^\$CondorVersion: (\S+) ", re.MULTILINE)


def parse_version(text: str) -> str | None:
    """``25.7.2`` from condor_version's ``$CondorVersion: 25.7.2 2026-03-11 ... $``."""
    match = _VERSION.search(text)
    return match[1] if match else None


def detect(runner: Runner | None = None) -> Found | None:
    """HTCondor's access-point tools on PATH, and the version condor_version reports."""
    submit = which("condor_submit")
    if submit is None or which("condor_q") is None:
        return None
    result = probe(["condor_version"], runner)
    if result is None or not result.ok:
        why = "condor_version did not answer" if result is None else result.stderr.strip()
        return Found("htcondor", submit, answered=False, why=why or "condor_version failed")
    version = parse_version(result.stdout)
    if version is None:
        return Found("htcondor", submit, answered=False, why="condor_version printed no version")
    return Found("htcondor", submit, version=version)


def _ads(stdout: str) -> list[dict[str, Any]] | None:
    """The job ads of a ``-json`` output, or None when it is not one."""
    text = stdout.strip()
    if not text.startswith("[") or '"ClusterId"' not in text:
        return None
    try:
        ads = json.loads(text)
    except ValueError:
        return None
    if not isinstance(ads, list) or not ads:
        return None
    if not all(
        isinstance(a, dict) and {"ClusterId", "ProcId", "JobStatus"} <= a.keys() for a in ads
    ):
        return None
    return ads


def _is_history(stdout: str, stderr: str) -> bool:
    ads = _ads(stdout)
    # Only ended jobs (removed, completed): what the history holds. A condor_q output of
    # nothing but jobs leaving the queue reads the same, and means the same.
    return ads is not None and all(a["JobStatus"] in (3, 4) for a in ads)


def _is_queue(stdout: str, stderr: str) -> bool:
    return _ads(stdout) is not None and not _is_history(stdout, stderr)


def _everything(result: CommandResult) -> PollContext:
    clusters = {str(a.get("ClusterId")) for a in parse.parse_ads(result)}
    return PollContext({}, sorted(clusters))


def _read_queue(result: CommandResult) -> Seen:
    return parse.parse_queue(result, _everything(result))[0]


def _read_history(result: CommandResult) -> Seen:
    return parse.parse_history(result, _everything(result))


def _is_submit(stdout: str, stderr: str) -> bool:
    return bool(re.search(r"^\d+ job\(s\) submitted to cluster \d+\.$", stdout, re.MULTILINE))


def _read_submit(result: CommandResult) -> Seen:
    return {parse.parse_submit(result): {None: (parse.STATUS[1], None, "submitted")}}


def _is_event_log(stdout: str, stderr: str) -> bool:
    first = stdout.lstrip("\n").partition("\n")[0]
    return HEADER.match(first) is not None


def _read_event_log(result: CommandResult) -> Seen:
    seen: Seen = {}
    for (cluster, proc), element in parse_event_log(result.stdout).items():
        seen.setdefault(cluster, {})[proc] = element
    return seen


def output_formats() -> list[OutputFormat]:
    """Every output the HTCondor backend's parsers read (an event log is keyed by proc)."""
    return [
        OutputFormat("condor_submit", "condor_submit job.sub", _is_submit, _read_submit),
        OutputFormat(
            "condor_history-json",
            "condor_history -json -attributes ...",
            _is_history,
            _read_history,
        ),
        OutputFormat("condor_q-json", "condor_q -json -attributes ...", _is_queue, _read_queue),
        OutputFormat("event-log", "cat <job dir>/condor.log", _is_event_log, _read_event_log),
    ]
