"""The shared half of every backend driven by a scheduler's command-line tools.

A scheduler package (:mod:`.slurm`, ...) only builds argv lists; its
``parse`` module reads their output with pure functions. This base class runs
them through the :class:`~jobfleet.runner.Runner` seam, with time-outs and
retries, and implements the polling rule every such backend follows:

1. ONE queue call for every tracked job (chunked only past the OS argument limit);
2. for jobs (or array elements) the queue no longer shows, ONE accounting call;
3. for what accounting does not know (or when the site has none), the
   scheduler's short-term memory (e.g. ``scontrol show job``), if it has one;
4. then the exit-code file the job script wrote.

Anything still unknown is left out of the result: the caller keeps its last
known state. A command that fails or times out raises
:class:`~jobfleet.errors.CommandError` and nothing is concluded from it.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

from jobfleet.backends.base import Backend, NativeStatus, PollTarget, SubmitRequest
from jobfleet.backends.jobfiles import (
    RECORDED,
    add_file_times,
    from_exit_files,
    mark_explained,
    recorded_exit_codes,
)
from jobfleet.backends.usage import Used, add_usage
from jobfleet.errors import CommandError, SubmitError
from jobfleet.owner import user_name
from jobfleet.runner import CommandResult, Runner, SubprocessRunner, argv_chunks, unbounded
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.scriptsetup import EXIT_SETUP_FAILED
from jobfleet.settings import duration, interval, option, to_seconds, whole
from jobfleet.states import JobState, aggregate
from jobfleet.units import parse_walltime

__all__ = [
    "CommandBackend",
    "CommandSettings",
    "Element",
    "Ended",
    "PollContext",
    "Seen",
    "Used",
    "command_failed",
]

log = logging.getLogger(__name__)

#: Exit codes whose reason the job script wrote into the job directory.
_EXPLAINED = frozenset({EXIT_DEPENDENCY_NEVER_MET, EXIT_SETUP_FAILED})

#: One element's report: (state, exit code, reason).
Element = tuple[JobState, int | None, str | None]
#: What one source reported: native id -> index (None for a single job) -> element.
#: A parser returns new maps, which the poll then owns (it adds to them).
Seen = dict[str, dict[int | None, Element]]
#: Elements an earlier step of a poll saw ending or ended: (native id, index) -> its report.
Ended = dict[tuple[str, int | None], Element]


@dataclass(frozen=True, slots=True)
class CommandSettings:
    """Knobs every command-line backend has (keys of its configuration section).

    Attributes:
        command_timeout_s: longest wait for one scheduler command.
        submit_retries: how often a submission refused for a passing reason
            (back-pressure, time-out) is tried again.
        retry_backoff_s: the first pause before a retry; doubled each time, at most 60 s.
    """

    command_timeout_s: float = option(
        "command_timeout",
        "60s",
        "longest wait for one scheduler command",
        parse=duration,
        convert=parse_walltime,
    )
    submit_retries: int = option(
        "submit_retries", 5, "retries of a submission refused for now", parse=whole(0)
    )
    retry_backoff_s: float = option(
        "retry_backoff",
        "1s",
        "first pause before a retry (doubles)",
        parse=interval,
        convert=to_seconds,
    )


@dataclass(slots=True)
class PollContext:
    """One poll: what it asks about, and what its earlier steps found.

    Built afresh by every poll and handed to the parsers, which keep no state of
    their own: two polls at once (two threads) never see each other's findings.

    Attributes:
        targets: every job of this poll, by native id.
        ids: the native ids the current command asks about (a chunk, or the jobs
            still missing after the queue).
        accounting: whether the site has accounting, as the backend knew it when
            the poll began (None: not known yet).
        ended: elements an earlier step saw ending or ended, (native id, index) ->
            what it reported (e.g. SLURM's squeue: cancelled, or still ending), for a
            later step to read accounting rows that lag behind.
        user_name: a uid's name, for reasons such as "cancelled by alice" (a poll
            passes :func:`jobfleet.owner.user_name`; the default, ``uid N``, reads nothing).
        usage: what jobs used, as the accounting step found it (a backend's
            ``read_accounting`` adds it here; the poll hands it on with the states).
    """

    targets: Mapping[str, PollTarget]
    ids: Sequence[str] = ()
    accounting: bool | None = None
    ended: Ended = field(default_factory=dict)
    user_name: Callable[[int], str] = lambda uid: f"uid {uid}"
    usage: Used = field(default_factory=dict)

    def asking(self, ids: Sequence[str]) -> PollContext:
        """The context of one command of this poll (shares what was found so far)."""
        return replace(self, ids=ids)


class CommandBackend(Backend):
    """I/O, retries and the polling rule; subclasses build argv, their parse modules
    read the output."""

    #: True when :meth:`queue_argv` lists every job of the user rather than the ids.
    queue_lists_all: ClassVar[bool] = False
    #: True when :meth:`accounting_argv` asks by a pattern rather than the ids.
    accounting_lists_all: ClassVar[bool] = False

    def __init__(self, runner: Runner | None = None, settings: CommandSettings | None = None):
        self.runner: Runner = runner or SubprocessRunner()
        self.settings = settings or CommandSettings()
        # A submit command may outlive its submitter for as long as it may run.
        self.capabilities = replace(
            self.capabilities, submit_in_flight_s=float(self.settings.command_timeout_s)
        )
        #: Whether the site has accounting: None until an accounting call tells.
        self.accounting: bool | None = None
        self._warned: set[str] = set()

    # -- what a scheduler module provides ------------------------------------------

    @abc.abstractmethod
    def submit_argv(self, request: SubmitRequest) -> list[str]:
        """The submit command for ``request`` (the script is already on disk)."""

    @abc.abstractmethod
    def parse_submit(self, result: CommandResult) -> str:
        """The native id from a successful submit command."""

    @abc.abstractmethod
    def submit_is_transient(self, result: CommandResult) -> bool:
        """Whether a failed submission may succeed later (back-pressure, time-out)."""

    @abc.abstractmethod
    def find_by_name_argv(self, name: str) -> list[str]:
        """A command listing the native id of a job with this unique name."""

    @abc.abstractmethod
    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        """The native id of the job called ``name`` in :meth:`find_by_name_argv`'s
        output; None when the scheduler answered it has none; CommandError when
        it did not answer."""

    @abc.abstractmethod
    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        """The one queue command for these jobs."""

    @abc.abstractmethod
    def read_queue(self, result: CommandResult, ctx: PollContext) -> Seen:
        """States from the queue command (for ``ctx.ids``); raise CommandError if it
        failed. May note in ``ctx`` what later steps of the poll need."""

    @abc.abstractmethod
    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        """The one accounting command for these jobs, or None when the site has none."""

    @abc.abstractmethod
    def read_accounting(self, result: CommandResult, ctx: PollContext) -> Seen:
        """States from the accounting command (for ``ctx.ids``); raise CommandError if
        it failed."""

    def accounting_missing(self, why: str) -> None:
        """The site has no usable accounting; later polls should not ask it."""
        self.warn_once("no-accounting", "%s: no accounting available (%s)", self.name, why)

    def memory_argv(self) -> list[str] | None:
        """A command listing every job the scheduler still remembers, if it has one."""
        return None

    def read_memory(self, result: CommandResult, ctx: PollContext) -> Seen:
        """States from :meth:`memory_argv`'s output (for ``ctx.ids``)."""
        return {}

    @abc.abstractmethod
    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        """The cancel (or signal) command for these jobs or these elements of them."""

    def cancel_ok(self, result: CommandResult) -> bool:
        """Whether a cancel command's result is acceptable (e.g. already finished)."""
        return result.ok

    # -- I/O ------------------------------------------------------------------------

    def command_env(self, argv: Sequence[str]) -> Mapping[str, str] | None:
        """The environment for one scheduler command (None: this process's own)."""
        return None

    def run(
        self,
        argv: Sequence[str],
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run one scheduler command through the runner, with the configured time-out
        (``env``: its environment, default :meth:`command_env`)."""
        return self.runner.run(
            argv,
            timeout_s=self.settings.command_timeout_s,
            env=env if env is not None else self.command_env(argv),
            cwd=cwd,
        )

    def warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def submit(self, request: SubmitRequest) -> str:
        """Submit, retrying what the scheduler refused for now, never twice.

        A submit command that failed for a passing reason (back-pressure, a
        time-out) may still have created the job: before each retry the job is
        looked up by its unique name, and it is submitted again only when the
        scheduler answered that no such job exists. Never cut short by a bound of
        :func:`~jobfleet.runner.within` (a status that submits a retry): a
        submission stopped half-way could not tell whether it happened.
        """
        with unbounded():
            return self._submit(request)

    def _submit(self, request: SubmitRequest) -> str:
        argv = self.submit_argv(request)
        pause = self.settings.retry_backoff_s
        tries, limit = 0, self.settings.submit_retries + 1
        submit_next = True
        while True:
            tries += 1
            if submit_next:
                try:
                    # From the job's directory: the submitter's may be gone, and some
                    # schedulers start jobs where they were submitted.
                    # In the submitter's environment: sbatch --export=ALL and qsub -V
                    # give it to the job (a retry may be submitted by another process).
                    result = self.run(argv, cwd=request.job_dir, env=request.env or None)
                except CommandError as exc:
                    if not exc.transient:
                        raise SubmitError(request.name, str(exc)) from None
                    problem = str(exc)
                else:
                    if result.ok:
                        try:
                            return self.parse_submit(result)
                        except CommandError as exc:
                            # It said yes without an id: the job may well exist.
                            raise SubmitError(
                                request.name, str(exc), maybe_submitted=True
                            ) from None
                    problem = f"{argv[0]} exited {result.returncode}: {_one_line(result.stderr)}"
                    if not self.submit_is_transient(result):
                        raise SubmitError(request.name, problem)
            if tries >= limit:
                # Every failure here was a passing one: the job may exist after all.
                raise SubmitError(
                    request.name,
                    f"gave up after {tries} attempts: {problem}",
                    maybe_submitted=True,
                )
            log.warning(
                "job %s: not submitted yet (%s); checking and retrying in %.0fs",
                request.job_id,
                problem,
                pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, 60.0)
            try:
                found = self.find_submitted(request.name, request.job_id)
            except CommandError as exc:
                # Cannot tell whether it exists: submitting again could run it twice.
                problem = f"cannot tell whether it was submitted: {exc}"
                submit_next = False
                continue
            if found is not None:
                return found
            submit_next = True

    def find_submitted(self, name: str, job_id: str) -> str | None:
        return self.parse_find_by_name(self.run(self.find_by_name_argv(name)), name)

    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        if not native_ids:
            return {}
        result = self.run(self.cancel_argv(native_ids, indices, signal))
        if not self.cancel_ok(result):
            raise command_failed(result)
        return self.parse_cancel(result)

    def parse_cancel(self, result: CommandResult) -> dict[str, list[int | None]]:
        """Elements the cancel removed at once, leaving no trace (see Backend.cancel)."""
        return {}

    # -- polling --------------------------------------------------------------------

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        if not targets:
            return {}
        by_id = {t.native_id: t for t in targets}
        ctx = PollContext(by_id, accounting=self.accounting, user_name=user_name)
        seen: Seen = {}
        # Jobs that ended already are asked of accounting only, for their usage. The
        # engine lists them last: polls without any do not look at every target.
        queued = list(by_id)
        if targets[-1].ended:
            queued = [n for n, t in by_id.items() if not t.ended]
        # A queue command that lists every job (not the ids) is never split.
        chunks = (
            [] if not queued else [queued] if self.queue_lists_all else argv_chunks(queued, 1024)
        )
        for chunk in chunks:
            parsed = self.read_queue(self.run(self.queue_argv(chunk)), ctx.asking(chunk))
            if seen:
                _merge(seen, parsed)
            else:
                seen = parsed  # the usual single call: nothing to merge with

        missing = _missing(by_id.values(), seen)
        if missing:
            # One call; split only past the OS argument limit (ids in the command).
            groups = [missing] if self.accounting_lists_all else argv_chunks(missing, 1024)
            for group in groups:
                argv = self.accounting_argv([by_id[n] for n in group])
                if argv is None:
                    break
                try:
                    result = self.run(argv)
                except CommandError as exc:
                    if exc.transient:
                        raise
                    self.accounting_missing(str(exc))  # e.g. the program is not installed
                    break
                _merge(seen, self.read_accounting(result, ctx.asking(group)), only_new=True)
            # Reports are only ever added: only the jobs missing so far can still be.
            missing = _missing([by_id[n] for n in missing], seen)
        if len(queued) < len(by_id):
            missing = [n for n in missing if not by_id[n].ended]
        if missing:
            argv = self.memory_argv()
            if argv is not None:
                ctx.accounting = self.accounting
                _merge(seen, self.read_memory(self.run(argv), ctx.asking(missing)), only_new=True)
                missing = _missing([by_id[n] for n in missing], seen)
        for native_id in missing:
            _merge(seen, {native_id: from_exit_files(by_id[native_id], seen.get(native_id, {}))})
        # Rare cases, looked for while building the result: a dependency never met
        # (exit 196), a failed set-up (195), and failures and kills, whose exit code
        # the job script recorded.
        substitutes = bool(self.script_dialect().reserved_exits)
        statuses: dict[str, NativeStatus] = {}
        # NativeStatus is frozen: single jobs with the same report share one record
        # (a poll of thousands of jobs sees a handful of different reports).
        shared: dict[Element, NativeStatus] = {}
        for native_id, elements in seen.items():
            target = by_id.get(native_id)
            if target is None or not elements:
                continue
            single = elements.get(None) if len(elements) == 1 else None
            if single is not None and single[1] not in _EXPLAINED and single[0] not in RECORDED:
                status = shared.get(single)
                if status is None:
                    status = shared[single] = NativeStatus(*single)
                statuses[native_id] = status
                continue
            # Recorded codes first: squeue says FAILED without one, the script wrote 195.
            if any(e[0] in RECORDED for e in elements.values()):
                recorded_exit_codes(target, elements, substitutes)
            if any(e[1] in _EXPLAINED for e in elements.values()):
                mark_explained(target, elements)
            statuses[native_id] = _status(elements)
        if ctx.usage:  # only polls in which jobs ended: the others pay nothing
            add_usage(statuses, ctx.usage)
        add_file_times(statuses, by_id)
        return statuses


def command_failed(result: CommandResult) -> CommandError:
    """The error for a scheduler command that exited non-zero (worth trying again)."""
    return CommandError(
        result.argv,
        f"{result.argv[0]} exited {result.returncode}: {_one_line(result.stderr)[:500]}",
        returncode=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
        transient=True,
    )


def _one_line(text: str) -> str:
    """A command's multi-line complaint as one line."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _merge(into: Seen, new: Seen, *, only_new: bool = False) -> None:
    """Add reports; with ``only_new`` an element already reported keeps its report."""
    for native_id, elements in new.items():
        mine = into.get(native_id)
        if mine is None:
            into[native_id] = elements  # a parser's maps are its caller's: no copy needed
        elif only_new:
            for index, element in elements.items():
                mine.setdefault(index, element)
        else:
            mine.update(elements)


def _expected(target: PollTarget) -> list[int | None]:
    return list(target.indices) if target.indices is not None else [None]


def _missing(targets: Iterable[PollTarget], seen: Seen) -> list[str]:
    """Jobs with at least one expected element nobody has reported."""
    out = []
    for target in targets:
        reported = seen.get(target.native_id)
        if reported is None:
            out.append(target.native_id)
        elif target.indices is None:
            if None not in reported:
                out.append(target.native_id)
        elif any(index not in reported for index in target.indices):
            out.append(target.native_id)
    return out


def _status(elements: Mapping[int | None, Element]) -> NativeStatus:
    if None in elements and len(elements) == 1:
        state, code, reason = elements[None]
        return NativeStatus(state, code, reason)
    indexed = {i: e for i, e in elements.items() if i is not None}
    return NativeStatus(aggregate(e[0] for e in indexed.values()), None, None, indexed)
