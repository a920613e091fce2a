"""Saved scheduler output, read back: what ``jobfleet debug parse`` runs on.

Each command-line backend names the outputs it can read (:class:`OutputFormat`:
its submit command's answer, each status and accounting form it asks for or
falls back to) in its :attr:`~jobfleet.backends.base.BackendType.formats`. A
user whose site answers differently saves one output to a file, and
:func:`read_saved` says which format it is and what jobs it holds, in
jobfleet's own words: the same parsers as a poll, so a bug report carries
exactly what the poll would have made of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jobfleet.backends.command import PollContext, Seen
from jobfleet.errors import JobfleetError
from jobfleet.runner import CommandResult

__all__ = [
    "OutputFormat",
    "SavedOutput",
    "UnreadableOutputError",
    "poll_of_every",
    "read_saved",
    "saved_result",
]

#: The argv a saved output is read with (no command ran).
SAVED_ARGV = ("(saved output)",)


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One kind of output a backend reads.

    Attributes:
        name: short and stable, e.g. ``qstat-json`` (shown and in ``--json``).
        command: the command that prints it, e.g. ``qstat -f -x -F json``.
        recognises: ``recognises(stdout, stderr)``: whether a saved output is of
            this kind (cheap and strict: the first format that says yes reads it).
        read: the jobs it holds, as a poll's parsers see them; raises
            :class:`ValueError` (or a :class:`~jobfleet.errors.JobfleetError`)
            when it is of this kind but cannot be read.
    """

    name: str
    command: str
    recognises: Callable[[str, str], bool]
    read: Callable[[CommandResult], Seen]


class UnreadableOutputError(JobfleetError):
    """A saved output no format of the backend can read."""


@dataclass(frozen=True, slots=True)
class SavedOutput:
    """What a saved output holds.

    Attributes:
        format: the format that read it.
        seen: native id -> index (None: not an array element) -> (state, exit code, reason).
    """

    format: OutputFormat
    seen: Seen

    def jobs(self) -> list[dict[str, Any]]:
        """The jobs, one dict per job or element, in the order the output gave them
        (``exit_code`` None where the output carries none, and for a job that has
        not ended: sacct's ``0:0`` of a running job is no exit code)."""
        return [
            {
                "native_id": native_id,
                "index": index,
                "state": state.value,
                "exit_code": code if state.is_terminal else None,
                "reason": reason,
            }
            for native_id, elements in self.seen.items()
            for index, (state, code, reason) in elements.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``jobfleet debug parse --json``."""
        return {"format": self.format.name, "jobs": self.jobs()}


def poll_of_every(ids: Iterable[str], *, accounting: bool | None = None) -> PollContext:
    """A poll asking about every job a saved output names (``ids``, in id order): no
    targets, so no recorded names to check the jobs against.

    Args:
        accounting: whether the site has accounting, as :class:`PollContext` takes it.
    """
    return PollContext(targets={}, ids=sorted(set(ids)), accounting=accounting)


def saved_result(stdout: str, stderr: str = "", returncode: int = 0) -> CommandResult:
    """A saved output as the result of a command that printed it."""
    return CommandResult(SAVED_ARGV, returncode, stdout, stderr)


def read_saved(
    formats: Sequence[OutputFormat], stdout: str, stderr: str = "", backend: str = "backend"
) -> SavedOutput:
    """Which of ``formats`` a saved output is, and the jobs it holds.

    Raises:
        UnreadableOutputError: no format recognises it, or the one that does cannot
            read it (the message names the formats tried, or what went wrong).
    """
    for fmt in formats:
        if not fmt.recognises(stdout, stderr):
            continue
        try:
            seen = fmt.read(saved_result(stdout, stderr))
        except (ValueError, KeyError, IndexError, JobfleetError) as exc:
            raise UnreadableOutputError(
                f"looks like {fmt.name} ({fmt.command}) but cannot be read: {exc}"
            ) from None
        return SavedOutput(fmt, seen)
    tried = "; ".join(f"{f.name} from `{f.command}`" for f in formats) or "none"
    raise UnreadableOutputError(f"not an output {backend} reads (it reads: {tried})")
