"""The outputs SLURM's parsers read, for ``jobfleet debug parse slurm FILE``."""

from __future__ import annotations

import re

from jobfleet.backends.command import PollContext, Seen
from jobfleet.backends.formats import OutputFormat, poll_of_every
from jobfleet.backends.slurm import accounting, parse, queue
from jobfleet.runner import CommandResult
from jobfleet.states import JobState

__all__ = ["FORMATS"]

_PARSABLE = re.compile(r"\s*([0-9]+)(?:;\S+)?\s*")
#: A job id as squeue's %i / sacct's JobID print it: 12, 12_3, 12_[1-5%2], 12.batch.
_ID = r"[0-9]+(?:_(?:[0-9]+|\[[^\]|]*\]?))?(?:\.[A-Za-z0-9+_-]+)?"
_QUEUE_LINE = re.compile(rf"{_ID}\|[0-9]+\|[^|]*\|[^|]*\|[A-Z_]+\|")
_SACCT_LINE = re.compile(rf"{_ID}\|[^|]*\|[A-Z_]+(?: by [0-9]+)?\|[0-9]+:[0-9]+")
_BASE = re.compile(r"^([0-9]+)", re.MULTILINE)


def _everyone(text: str, column: int) -> PollContext:
    """A poll of every job an output names (from the id in ``column`` of each row)."""
    ids = set()
    for line in text.splitlines():
        fields = line.split("|") if "|" in line else [line]
        if column < len(fields) and (match := _BASE.match(fields[column])):
            ids.add(match[1])
    return poll_of_every(ids)


def _rows(text: str, pattern: re.Pattern[str]) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and all(pattern.match(line) for line in lines)


def _submitted(result: CommandResult) -> Seen:
    return {parse.parse_submit(result): {None: (JobState.PENDING, None, None)}}


def _queue(result: CommandResult) -> Seen:
    seen, ended = queue.parse_queue(result, _everyone(result.stdout, 1))
    for (owner, index), (state, _, reason) in ended.items():
        # A cancel squeue shows is taken at once; how anything else ended (its exit
        # code) is left to accounting: squeue has none.
        shown = (
            (state, None, reason)
            if state is JobState.CANCELLED
            else (JobState.UNKNOWN, None, "ending or ended in squeue; accounting tells how")
        )
        seen.setdefault(owner, {}).setdefault(index, shown)
    return seen


def _accounting(result: CommandResult) -> Seen:
    seen, _ = accounting.parse_accounting(result, _everyone(result.stdout, 0))
    return seen


def _scontrol(result: CommandResult) -> Seen:
    ids = re.findall(r"(?:^|\s)(?:JobId|ArrayJobId)=([0-9]+)", result.stdout)
    return parse.parse_memory(result, poll_of_every(ids, accounting=False))


#: Every output the SLURM backend reads, most specific first.
FORMATS = (
    OutputFormat(
        "sbatch-parsable",
        "sbatch --parsable SCRIPT",
        lambda out, err: _PARSABLE.fullmatch(out) is not None,
        _submitted,
    ),
    OutputFormat(
        "squeue",
        f"squeue --noheader --array --states=all --format={queue.QUEUE_FORMAT}",
        lambda out, err: _rows(out, _QUEUE_LINE),
        _queue,
    ),
    OutputFormat(
        "sacct",
        f"sacct --noheader --parsable2 --format={accounting.ACCOUNTING_FORMAT}",
        lambda out, err: _rows(out, _SACCT_LINE),
        _accounting,
    ),
    OutputFormat(
        "scontrol-show-job",
        "scontrol show job --oneliner",
        lambda out, err: out.lstrip().startswith("JobId=") or "No jobs in the system" in out + err,
        _scontrol,
    ),
)
