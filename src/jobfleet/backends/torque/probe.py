"""Finding Torque on this machine, and the outputs its parsers read (light: the
parsers load only when a format is read)."""

from __future__ import annotations

import re

from jobfleet.backends.command import Seen
from jobfleet.backends.detect import Found
from jobfleet.backends.formats import OutputFormat
from jobfleet.backends.pbs.probe import detect_qstat, is_text, qsub_format, saved_seen
from jobfleet.runner import CommandResult, Runner

__all__ = ["detect_torque", "torque_formats"]

_TORQUE_VERSION = re.compile(r"^Version:\s*(\S+)", re.MULTILINE)


def detect_torque(runner: Runner | None = None) -> Found | None:
    """Torque, if its qstat is on PATH."""
    facts = {
        "job names": "up to 256 characters by qsub; sites may limit more (torque.name_limit)",
        "arrays": "-t list%N",
        "finished jobs": "shown while the server's keep_completed keeps them",
    }
    return detect_qstat("torque", _TORQUE_VERSION, facts, runner)


def _is_torque_text(stdout: str, stderr: str) -> bool:
    pbs = ("\n    Exit_status = ", "\n    Submit_arguments = ", "\n    substate = ")
    return is_text(stdout, stderr) and not any(word in stdout for word in pbs)


def _torque_xml(result: CommandResult) -> Seen:
    from jobfleet.backends.torque import parse

    return saved_seen(parse.read_xml(result.stdout), parse.map_record, parse.epoch_text)


def _torque_text(result: CommandResult) -> Seen:
    from jobfleet.backends.pbs.parse import ctime_text, read_text
    from jobfleet.backends.torque import parse

    return saved_seen(read_text(result.stdout), parse.map_record, ctime_text)


def torque_formats() -> list[OutputFormat]:
    """What the torque backend's parsers read."""
    return [
        qsub_format(),
        OutputFormat(
            "qstat-xml",
            "qstat -x -t",
            lambda out, err: out.lstrip().startswith("<?xml") and "<Data" in out,
            _torque_xml,
        ),
        OutputFormat(
            "qstat-text",
            "qstat -f -t",
            _is_torque_text,
            _torque_text,
        ),
    ]
