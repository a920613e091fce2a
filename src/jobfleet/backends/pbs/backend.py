"""PBS Pro / OpenPBS: qsub, qstat, qselect, qdel and qsig, as argv lists.

All I/O, retries and the polling rule are in
:class:`~jobfleet.backends.command.CommandBackend`; the output is read by the pure
functions of :mod:`.parse`. What PBS does differently (docs/pbs-notes.md):

* ``qstat -x`` shows finished jobs too (the server's job history): the queue call is
  also the accounting call, and a job missing from it has no record anywhere.
* ``qstat -F json`` is invalid JSON on many servers (environment values), and master
  prints only the first of several jobs: the text form is asked instead, once for that
  poll and for every later one (``pbs.status_format``).
* Names are cut to the server's limit keeping the unique ``jf<token>-<id>`` head.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Sequence
from pathlib import PurePath

from jobfleet.backends.base import Capabilities, PollTarget, QueueEntry, SubmitRequest, user_name
from jobfleet.backends.command import (
    CommandBackend,
    CommandSettings,
    PollContext,
    Seen,
    command_failed,
)
from jobfleet.backends.jobfiles import from_exit_files
from jobfleet.backends.pbs import outcome, parse
from jobfleet.backends.pbs.directives import PbsSettings, pbs_dialect, pbs_directives
from jobfleet.errors import CommandError, SpecError, SubmitError
from jobfleet.naming import scheduler_head
from jobfleet.runner import CommandResult, Runner
from jobfleet.script import Dialect
from jobfleet.spec import DepKind, JobSpec
from jobfleet.states import JobState

__all__ = ["DEPEND_WORDS", "PbsBackend", "cut_name"]

#: ``-W depend=`` words (qsub(1B); Torque's are the same for jobs).
DEPEND_WORDS = {
    DepKind.AFTER_OK: "afterok",
    DepKind.AFTER_NOT_OK: "afternotok",
    DepKind.AFTER_ANY: "afterany",
}
TRANSIENT_SUBMIT = (
    "Maximum number of jobs already in queue",
    "cannot connect to server",
    "Connection refused",
    "pbs_iff",
    "timed out",
    "Server busy",
    "try again",
)
#: qstat without ``-F`` (PBS Pro before 14): its getopt's complaint.
_NO_JSON = re.compile(r"invalid option|illegal option|unrecognized option|usage:", re.IGNORECASE)
#: A job (or element) that ended already: qdel's goal is reached, and a signal has
#: nothing left to reach (pbs_messages.c: a finished job, an unknown one, a finished
#: array element: PBSE_NOHISTARRAYSUBJOB, req_delete.c).
_GONE = ("Job has finished", "Unknown Job Id", "Request invalid for finished array subjob")
#: PBSE_BADSTATE: qdel of a job already exiting (req_delete.c), or qsig of a job that
#: is not running (req_signal.c): the first is ending; the second was sent nothing.
_BAD_STATE = "Request invalid for state of job"


def cut_name(name: str, limit: int) -> str:
    """``name`` cut to ``limit`` characters, keeping its unique head whole:
    ``[prefix]jf<token>-<id>[.<attempt>]`` (:func:`jobfleet.naming.scheduler_head`; a
    ``name_prefix`` may hold ``-``); the rest is only for people.

    >>> cut_name("jfab12cd34-17-train_model", 15)
    'jfab12cd34-17-t'
    >>> cut_name("lab-42-jfab12cd34-17-train_model", 22)
    'lab-42-jfab12cd34-17-t'

    Raises:
        SpecError: the limit cannot hold the head.
    """
    if len(name) <= limit:
        return name
    unique = scheduler_head(name)
    if unique is None:  # not a name jobfleet made: up to the second '-'
        head, sep, rest = name.partition("-")
        unique = f"{head}{sep}{rest.partition('-')[0]}"
    if len(unique) > limit:
        raise SpecError(
            "name",
            f"the scheduler takes names of at most {limit} characters, too few for "
            f"jobfleet's unique part {unique!r}; raise the backend's name_limit "
            "(or use a shorter name_prefix)",
        )
    cut = name[:limit]
    return cut.rstrip("-.") if len(cut.rstrip("-.")) > len(unique) else unique


class PbsBackend(CommandBackend):
    """Jobs on a PBS Pro or OpenPBS cluster, through its command-line tools."""

    name = "pbs"
    capabilities = Capabilities(
        listed_indices=False,  # -J a-b[:step], one range
        accounting=True,  # qstat -x: the server's job history (the queue call itself)
    )

    #: How this scheduler's records read (Torque's differ).
    record_state = staticmethod(outcome.map_record)
    record_time = staticmethod(parse.ctime_text)

    def __init__(self, runner: Runner | None = None, settings: PbsSettings | None = None):
        self.pbs_settings = settings or PbsSettings()
        text = self.pbs_settings.status_format == "text"
        self._set_up(runner, self.pbs_settings, self.pbs_settings.name_limit, text)

    def _set_up(
        self, runner: Runner | None, settings: CommandSettings, name_limit: int, text_only: bool
    ) -> None:
        """What PBS and Torque set up alike (each with its own settings section)."""
        super().__init__(runner, settings)
        self.name_limit = name_limit
        # Once qstat's answer was unreadable, the text form is asked directly: knowledge
        # about the server kept across polls, not a poll's state.
        self._text_only = text_only
        self._lock = threading.Lock()

    def script_dialect(self) -> Dialect:
        return pbs_dialect(self.pbs_settings)

    def check_request(self, spec: JobSpec) -> None:
        # The directives raise SpecError naming the field PBS cannot express.
        pbs_directives(spec, self.pbs_settings)

    def scheduler_name(self, name: str) -> str:
        return cut_name(name, self.name_limit)

    # -- submit ---------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> str:
        try:
            self.scheduler_name(request.name)
        except SpecError as exc:
            raise SubmitError(request.name, str(exc)) from None
        return super().submit(request)

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        argv = ["qsub", "-N", self.scheduler_name(request.name)]
        argv += ["-o", f"{request.job_dir}/{self.output_name(request)}", "-j", "oe"]
        clauses = self.depend_clauses(request)
        if clauses:
            argv += ["-W", f"depend={','.join(clauses)}"]
        argv += self.array_argv(request)
        argv += list(request.spec.resources.extra_args)
        argv.append(request.script_path)
        return argv

    def output_name(self, request: SubmitRequest) -> str:
        """The ``-o`` file in the job directory (PBS expands ``^array_index^``)."""
        return "pbs.^array_index^.out" if request.spec.array is not None else "pbs.out"

    def depend_clauses(self, request: SubmitRequest) -> list[str]:
        """``-W depend=`` clauses: ``afterok:ID:ID`` (an array by its ``N[]`` id)."""
        return [":".join([DEPEND_WORDS[kind], *ids]) for kind, ids in request.dependencies if ids]

    def array_argv(self, request: SubmitRequest) -> list[str]:
        """Array options on qsub's command line (PBS's ``-J`` is a directive)."""
        return []

    def parse_submit(self, result: CommandResult) -> str:
        return parse.parse_submit(result)

    def submit_is_transient(self, result: CommandResult) -> bool:
        return any(text in result.stderr for text in TRANSIENT_SUBMIT)

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["qselect", "-x", "-N", self.scheduler_name(name)]

    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        return parse.parse_find_by_name(result)

    # -- polling --------------------------------------------------------------------

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        with self._lock:
            text = self._text_only
        return ["qstat", "-f", "-x", "-t", *([] if text else ["-F", "json"]), *native_ids]

    def read_queue(self, result: CommandResult, ctx: PollContext) -> Seen:
        if "-F" in result.argv and not result.ok and _NO_JSON.search(result.stderr):
            records = self._text_instead(ctx, "this qstat has no -F json")
        elif "-F" not in result.argv:
            _check(result)
            records = parse.read_text(result.stdout)
        else:
            _check(result)
            try:
                records = parse.read_json(result.stdout) if result.stdout.strip() else []
            except parse.UnreadableJson as exc:
                records = self._text_instead(ctx, str(exc))
            else:
                answered = {parse.job_key(job_id)[0] for job_id, _ in records}
                told = parse.unknown_ids(result.stderr) | parse.finished_ids(result.stderr)
                if any(n not in answered and n not in told for n in ctx.ids):
                    # Some servers' JSON holds only the first of several jobs.
                    records = self._text_instead(ctx, "qstat -F json left out jobs")
        records = parse.no_record_elements(records)
        seen = parse.records_seen(records, ctx, outcome.map_record, parse.ctime_text)
        for job_id, attrs in records:
            if parse.NO_RECORD in attrs:
                _from_exit_file(seen, ctx, *parse.job_key(job_id))
        for native_id in parse.finished_ids(result.stderr):
            target = ctx.targets.get(native_id)
            if target is not None and native_id not in seen:
                found = from_exit_files(target, {})
                seen[native_id] = found or {
                    None: (JobState.UNKNOWN, None, "finished; PBS kept no record of how")
                }
        return seen

    def _text_instead(self, ctx: PollContext, why: str) -> list[parse.Record]:
        """The text form of the same qstat, from now on (one more call, this once)."""
        with self._lock:
            first = not self._text_only
            self._text_only = True
        if first:
            self.warn_once("pbs-json", "pbs: %s; reading qstat's text form from now on", why)
        result = self.run(self.queue_argv(ctx.ids))
        _check(result)
        return parse.read_text(result.stdout)

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        # The text form: qstat -u conflicts with -F json on some versions (openpbs #2675).
        result = self.run(["qstat", "-f", "-t"])
        _check(result)
        user = None if all_users else user_name()
        records = parse.read_text(result.stdout)
        return parse.queue_entries(records, self.record_state, self.record_time, user, time.time())

    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        return None  # the queue call (qstat -x) holds the history already

    def read_accounting(self, result: CommandResult, ctx: PollContext) -> Seen:
        return {}

    # -- cancel ---------------------------------------------------------------------

    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        ids = list(native_ids)
        if indices:
            ids = [element_id(n, i) for n in native_ids for i in indices]
        if signal is not None:
            return ["qsig", "-s", signal_name(signal), *ids]
        return ["qdel", *ids]

    def cancel_ok(self, result: CommandResult) -> bool:
        """A job that ended already is no error: the goal is reached. A signal to a
        job that is not running (queued, held) is one: it was sent nothing.

        Raises:
            CommandError: qsig of a job that is not running (the others got it).
        """
        text = result.stdout + result.stderr
        if result.ok:
            return True
        if result.argv and PurePath(result.argv[0]).name == "qsig" and _BAD_STATE in text:
            raise CommandError(
                result.argv,
                "qsig: only a running job can take a signal; those not running were sent "
                f"nothing (cancel them instead): {result.stderr.strip()[:300]}",
            )
        return any(words in text for words in (*_GONE, _BAD_STATE))


def _from_exit_file(seen: Seen, ctx: PollContext, native_id: str, index: int | None) -> None:
    """An element PBS keeps no record of (:func:`parse.no_record_elements`): what its job
    script recorded, if it ran; else it stays removed before it started."""
    target = ctx.targets.get(native_id)
    if target is None or index is None or native_id not in seen:
        return
    found = from_exit_files(dataclasses.replace(target, indices=(index,)), {})
    seen[native_id].update(found)


def _check(result: CommandResult) -> None:
    """CommandError when qstat failed without answering about any job (an unknown
    id makes it exit 153 while it still prints the others)."""
    if result.ok or result.stdout.strip():
        return
    if not parse.unknown_ids(result.stderr) | parse.finished_ids(result.stderr):
        raise command_failed(result)


def element_id(native_id: str, index: int) -> str:
    """``1010[3].server`` for element 3 of ``1010[].server``."""
    if "[]" not in native_id:
        raise CommandError((), f"{native_id} is no array job; it has no element {index}")
    return native_id.replace("[]", f"[{index}]", 1)


def signal_name(signal: str) -> str:
    """A signal as qsig takes it: ``SIGTERM`` or a number (names without SIG are
    refused by some versions)."""
    text = signal.strip().upper()
    if text.isdigit():
        return text
    return text if text.startswith("SIG") else f"SIG{text}"
