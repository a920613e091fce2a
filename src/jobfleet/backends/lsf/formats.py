"""The outputs LSF's parsers read, for ``jobfleet debug parse`` and ``jobfleet info``:
their formats (:class:`~jobfleet.backends.formats.OutputFormat`) and the look for
LSF's commands on this machine (:func:`detect`)."""

from __future__ import annotations

import json
import re

from jobfleet.backends.base import PollTarget
from jobfleet.backends.command import PollContext, Seen
from jobfleet.backends.detect import Found, probe, which
from jobfleet.backends.formats import OutputFormat
from jobfleet.backends.lsf import parse
from jobfleet.backends.lsf.directives import read_unit_for_limits
from jobfleet.runner import CommandResult, Runner
from jobfleet.states import JobState

__all__ = ["detect", "formats"]

_FIELDS = " ".join(parse.QUEUE_FIELDS)


def _context(ids: list[str]) -> PollContext:
    """A poll asking about exactly these jobs (no names: nothing to compare)."""
    targets = {i: PollTarget(job_id="", native_id=i, job_dir="", submitted_at=0.0) for i in ids}
    return PollContext(targets, list(targets))


def _with_elements(ids: list[tuple[str, str]]) -> PollContext:
    ctx = _context([i for i, _ in ids])
    arrays = {i for i, index in ids if index not in ("", "0")}
    ctx.targets = {
        i: PollTarget("", i, "", 0.0, indices=(1,) if i in arrays else None) for i in ctx.ids
    }
    return ctx


def _read_json(result: CommandResult) -> Seen:
    records = parse.queue_records(result, text_format=False)
    ids = [(r["JOBID"], r.get("JOBINDEX", "0")) for r in records if r.get("JOBID")]
    if len(ids) < len(records):
        raise ValueError("records without JOBID: bjobs -o must list jobid")
    return parse.parse_queue(result, _with_elements(ids), text_format=False)


def _read_text(result: CommandResult) -> Seen:
    records = parse.queue_records(result, text_format=True)
    ids = [(r.get("JOBID", ""), r.get("JOBINDEX", "0")) for r in records]
    return parse.parse_queue(result, _with_elements(ids), text_format=True)


def _read_history(result: CommandResult) -> Seen:
    records = list(parse.history_records(result.stdout))
    ctx = _with_elements([(i, "1" if index else "0") for i, index, _ in records])
    return parse.parse_history(result, ctx)


def _read_submit(result: CommandResult) -> Seen:
    return {parse.parse_submit(result): {None: (JobState.PENDING, None, "submitted")}}


def _is_json(out: str, err: str) -> bool:
    if not out.lstrip().startswith("{"):
        return False
    try:
        return bool(json.loads(out).get("COMMAND") == "bjobs")
    except (ValueError, AttributeError):
        return False


def _is_text(out: str, err: str) -> bool:
    lines = [line for line in out.splitlines() if line.strip()]
    width = len(parse.QUEUE_FIELDS) - 1
    return bool(lines) and all(line.count("|") == width for line in lines)


def _is_none(out: str, err: str) -> bool:
    said = [line.strip() for line in (out + "\n" + err).splitlines() if line.strip()]
    return bool(said) and all(
        parse.NOT_FOUND.fullmatch(line) or parse.NO_UNFINISHED.fullmatch(line) for line in said
    )


def formats() -> list[OutputFormat]:
    """Every output LSF's parsers read (each recognised strictly)."""
    head = re.compile(r"\A\s*Job <[0-9]+(?:\[[0-9]+\])?>, ")
    return [
        OutputFormat(
            "bsub",
            "bsub -J NAME ... /bin/bash SCRIPT",
            lambda out, err: parse._SUBMITTED.search(out) is not None,
            _read_submit,
        ),
        OutputFormat("bjobs-json", f'bjobs -a -json -o "{_FIELDS}" IDS', _is_json, _read_json),
        OutputFormat(
            "bjobs-text",
            f"bjobs -a -noheader -o \"{_FIELDS} delimiter='|'\" IDS",
            _is_text,
            _read_text,
        ),
        OutputFormat(
            "bacct-l",
            "bacct -l IDS",
            lambda out, err: "Accounting information about jobs that are:" in out,
            _read_history,
        ),
        OutputFormat(
            "bhist-l",
            "bhist -l IDS",
            lambda out, err: (
                head.match(out) is not None
                and "Summary of time in seconds spent in various states" in out
            ),
            _read_history,
        ),
        OutputFormat(
            "bjobs-not-found",
            "bjobs IDS (Job <N> is not found / No unfinished job found)",
            _is_none,
            lambda result: {},
        ),
    ]


def detect(runner: Runner | None = None) -> Found | None:
    """LSF's commands on PATH, and the version ``lsid`` (or ``bsub -V``) reports."""
    bsub, bjobs = which("bsub"), which("bjobs")
    if bsub is None or bjobs is None:
        return None
    facts = {"LSF_UNIT_FOR_LIMITS": read_unit_for_limits()}
    result = probe(["lsid"], runner) if which("lsid") else None
    if result is None or not result.ok:
        result = probe(["bsub", "-V"], runner)
    if result is None:
        return Found(
            "lsf", bsub, answered=False, why="lsid and bsub -V did not answer", facts=facts
        )
    version = parse.parse_version(result.stdout + "\n" + result.stderr)
    if not result.ok and version is None:
        why = (result.stderr.strip() or f"exit {result.returncode}").splitlines()[0][:200]
        return Found("lsf", bsub, answered=False, why=why, facts=facts)
    return Found("lsf", bsub, version=version, accounting=which("bhist") is not None, facts=facts)
