"""Finding PBS Pro on this machine, and the outputs its parsers read (Torque's
module :mod:`jobfleet.backends.torque.probe` builds on these).

Both answer ``qstat``: ``qstat --version`` tells them apart (PBS: ``pbs_version =
22.05.11``; Torque: ``Version: 6.1.3``; Grid Engine's qstat has no ``--version`` and
prints its usage). Light: the parsers load only when a format is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from jobfleet.backends.command import Element, PollContext, Seen
from jobfleet.backends.detect import Found, probe, which
from jobfleet.backends.formats import OutputFormat
from jobfleet.runner import CommandResult, Runner
from jobfleet.states import JobState

__all__ = ["detect_pbs", "detect_qstat", "is_text", "pbs_formats", "qsub_format", "saved_seen"]

_PBS_VERSION = re.compile(r"pbs_version\s*=\s*(\S+)")
_SUBMITTED = re.compile(r"\d+(?:\[\])?(?:\.[A-Za-z0-9_.-]+)?")


def detect_qstat(
    backend: str, version: re.Pattern[str], facts: Mapping[str, str], runner: Runner | None
) -> Found | None:
    path = which("qstat")
    if path is None:
        return None
    result = probe(["qstat", "--version"], runner)
    if result is None:
        return Found(backend, path, answered=False, why="qstat --version did not answer")
    match = version.search(result.stdout + result.stderr)
    if match is None:
        return None  # another scheduler's qstat (Grid Engine's, or the other PBS)
    return Found(backend, path, version=match[1], facts=dict(facts))


def detect_pbs(runner: Runner | None = None) -> Found | None:
    """PBS Pro / OpenPBS, if its qstat is on PATH."""
    facts = {
        "job names": "up to 230 characters (pbs.name_limit)",
        "arrays": "-J a-b[:step], at least two indices; %N from OpenPBS 22.05",
        "finished jobs": "qstat -x, while the server keeps job history",
    }
    return detect_qstat("pbs", _PBS_VERSION, facts, runner)


def _qsub_recognises(stdout: str, stderr: str) -> bool:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    return 0 < len(lines) <= 5 and bool(_SUBMITTED.fullmatch(lines[-1]))


def _qsub_read(result: CommandResult) -> Seen:
    from jobfleet.backends.pbs.parse import parse_submit

    submitted: Element = (JobState.PENDING, None, "submitted")
    return {parse_submit(result): {None: submitted}}


def qsub_format() -> OutputFormat:
    """qsub's answer (PBS and Torque print the same)."""
    return OutputFormat("qsub", "qsub ...", _qsub_recognises, _qsub_read)


def saved_seen(
    records: Sequence[tuple[str, dict[str, str]]],
    mapper: Callable[[Mapping[str, str]], Element],
    times: Callable[[str], float | None],
) -> Seen:
    """Every job of a saved qstat output, as a poll would see it."""
    from jobfleet.backends.pbs.parse import job_key, records_seen

    ids = list(dict.fromkeys(job_key(job_id)[0] for job_id, _ in records))
    return records_seen(records, PollContext({}, ids), mapper, times)


def _pbs_json(result: CommandResult) -> Seen:
    from jobfleet.backends.pbs import outcome, parse

    return saved_seen(parse.read_json(result.stdout), outcome.map_record, parse.ctime_text)


def _pbs_text(result: CommandResult) -> Seen:
    from jobfleet.backends.pbs import outcome, parse

    return saved_seen(parse.read_text(result.stdout), outcome.map_record, parse.ctime_text)


def is_text(stdout: str, stderr: str) -> bool:
    return stdout.startswith("Job Id: ") and "\n    job_state = " in stdout


def _is_pbs_text(stdout: str, stderr: str) -> bool:
    """PBS's text form, not Torque's (whose attributes are spelled in lower case)."""
    torque = ("\n    exit_status = ", "\n    submit_args = ", "\n    euser = ")
    return is_text(stdout, stderr) and not any(word in stdout for word in torque)


def pbs_formats() -> list[OutputFormat]:
    """What the pbs backend's parsers read."""
    return [
        qsub_format(),
        OutputFormat(
            "qstat-json",
            "qstat -f -x -t -F json ID...",
            lambda out, err: out.lstrip().startswith("{") and '"pbs_version"' in out,
            _pbs_json,
        ),
        OutputFormat("qstat-text", "qstat -f -x -t ID...", _is_pbs_text, _pbs_text),
    ]
