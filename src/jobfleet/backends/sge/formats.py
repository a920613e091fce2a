"""The outputs Grid Engine's parsers read, for ``jobfleet debug parse sge FILE``."""

from __future__ import annotations

import re

from jobfleet.backends.command import Seen
from jobfleet.backends.formats import OutputFormat, poll_of_every
from jobfleet.backends.sge import parse
from jobfleet.runner import CommandResult
from jobfleet.states import JobState

__all__ = ["FORMATS"]

_TERSE = re.compile(r"\s*([0-9]+)(?:\.[0-9]+-[0-9]+:[0-9]+)?\s*")
_QACCT_NUMBER = re.compile(r"^jobnumber\s+([0-9]+)\s*$", re.MULTILINE)


def _submitted(result: CommandResult) -> Seen:
    return {parse.parse_submit(result): {None: (JobState.PENDING, None, None)}}


def _queue(result: CommandResult) -> Seen:
    seen, _ = parse.parse_queue(result, poll_of_every(parse.queued_numbers(result)))
    return seen


def _accounting(result: CommandResult) -> Seen:
    numbers = _QACCT_NUMBER.findall(result.stdout)
    return parse.parse_accounting(result, poll_of_every(numbers))


def _is_qacct(stdout: str, stderr: str) -> bool:
    if stdout.startswith("====") and _QACCT_NUMBER.search(stdout):
        return True
    return not stdout.strip() and bool(parse.UNKNOWN_JOB.search(stderr))


#: Every output the Grid Engine backend reads, most specific first.
FORMATS = (
    OutputFormat(
        "qsub-terse",
        "qsub -terse SCRIPT",
        lambda out, err: _TERSE.fullmatch(out) is not None,
        _submitted,
    ),
    OutputFormat(
        "qstat-xml",
        "qstat -xml -g d",
        lambda out, err: out.lstrip().startswith("<?xml") and "<job_info" in out[:4096],
        _queue,
    ),
    OutputFormat("qacct", "qacct -j ID_OR_PATTERN", _is_qacct, _accounting),
)
