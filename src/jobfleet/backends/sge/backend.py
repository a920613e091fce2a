"""Son of Grid Engine: qsub, qstat, qacct and qdel, as argv lists.

All I/O, retries and the polling rule are in
:class:`~jobfleet.backends.command.CommandBackend`; the output is read by the pure
functions of :mod:`.parse`. Grid Engine differs from SLURM in ways that matter
(docs/sge-notes.md):

* ``-hold_jid`` waits for predecessors to *end*, whatever their outcome. So
  after-ok and after-not-ok are checked by the job script itself, from its
  predecessors' exit-code files (:attr:`Capabilities.dependencies`); a job whose
  dependency can never be met ends ``cancelled`` without running its command.
* ``qacct -j`` takes one job id or name pattern per call (``-j 2,3`` reports
  job 2 only): accounting for every tracked job is ONE call with the name
  pattern all jobs of a jobfleet registry share (``jf<token>-*``).
* Arrays are one range ``a-b[:s]``; memory requests are per slot.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

from jobfleet.backends.base import Capabilities, PollTarget, QueueEntry, SubmitRequest, user_name
from jobfleet.backends.command import CommandBackend, PollContext, Seen
from jobfleet.backends.sge import parse, usage
from jobfleet.backends.sge.directives import SgeSettings, sge_dialect, sge_directives
from jobfleet.errors import BackendError, CommandError, SpecError
from jobfleet.naming import registry_prefix
from jobfleet.runner import CommandResult, Runner
from jobfleet.script import Dialect
from jobfleet.spec import ArraySpec, DepKind, JobSpec
from jobfleet.states import JobState

__all__ = ["SgeBackend", "queue_list_argv"]


class SgeBackend(CommandBackend):
    """Jobs on a Grid Engine cluster, through its command-line tools."""

    name = "sge"
    capabilities = Capabilities(
        listed_indices=False,  # qsub -t takes one range a-b[:step]
        dependencies=frozenset({DepKind.AFTER_ANY}),  # -hold_jid only waits for the end
        signals=False,  # qdel sends SIGKILL (or SIGUSR2 first with qsub -notify)
        usage_settles_s=60.0,  # a job may leave qstat before its qacct record is written
    )
    queue_lists_all = True
    accounting_lists_all = True

    def __init__(self, runner: Runner | None = None, settings: SgeSettings | None = None):
        self.sge_settings = settings or SgeSettings()
        super().__init__(runner, self.sge_settings)
        # Job in Eqw -> why, asked once (a job may sit in error state for days):
        # knowledge kept across polls, not a poll's state.
        self._error_texts: dict[str, str] = {}
        self._error_lock = threading.Lock()

    def script_dialect(self) -> Dialect:
        # The directives depend on the site's settings (PE, memory resource).
        return sge_dialect(self.sge_settings)

    def check_request(self, spec: JobSpec) -> None:
        if spec.array is not None and spec.array.indices[0] < 1:
            raise SpecError(
                "array", "Grid Engine task ids start at 1; shift the indices (e.g. '1-10')"
            )
        # A layout or option Grid Engine cannot express is refused here, before
        # anything is recorded (the directives raise SpecError naming the field).
        # The array is the capabilities' to judge (one range only).
        sge_directives(spec.with_changes(array=None), self.sge_settings)

    # -- submit ---------------------------------------------------------------------

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        argv = [
            "qsub",
            "-terse",
            # Refuse at once what could never run (e.g. more slots than any host
            # has); by default Grid Engine accepts it and it waits for ever.
            *(["-w", "e"] if self.sge_settings.verify_requests else []),
            "-N",
            request.name,
            "-o",
            f"{request.job_dir}/sge.$TASK_ID.out",
            "-j",
            "y",
        ]
        holds = [native for _, ids in request.dependencies for native in ids]
        if holds:
            argv += ["-hold_jid", ",".join(dict.fromkeys(holds))]
        argv += list(request.spec.resources.extra_args)
        argv.append(request.script_path)
        return argv

    def parse_submit(self, result: CommandResult) -> str:
        return parse.parse_submit(result)

    def submit_is_transient(self, result: CommandResult) -> bool:
        return bool(parse.TRANSIENT_SUBMIT.search(result.stderr))

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["qstat", "-xml"]

    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        return parse.parse_find_by_name(result, name)

    def find_submitted(self, name: str, job_id: str) -> str | None:
        """In the queue, or else (a job that already ended) in accounting."""
        found = super().find_submitted(name, job_id)
        if found is not None:
            return found
        return parse.parse_find_in_accounting(self.run(["qacct", "-j", name]))

    # -- polling --------------------------------------------------------------------

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        # Every job of the user, array tasks one per line; filtered here.
        return ["qstat", "-xml", "-g", "d"]

    def read_queue(self, result: CommandResult, ctx: PollContext) -> Seen:
        seen, errors = parse.parse_queue(result, ctx)
        if errors or self._error_texts:
            self._explain_errors(seen, errors)
        return seen

    def _explain_errors(self, seen: Seen, numbers: list[str]) -> None:
        """Fill in why jobs are in error state: one ``qstat -j`` for those not explained
        in an earlier poll (a job may sit in Eqw for days; it is asked about once)."""
        with self._error_lock:
            known = {n: t for n, t in self._error_texts.items() if n in numbers}
        unexplained = [n for n in dict.fromkeys(numbers) if n not in known]
        if unexplained:
            try:
                result = self.run(["qstat", "-j", ",".join(unexplained)])
            except CommandError:
                result = None
            reasons = parse.parse_error_reasons(result.stdout) if result is not None else {}
            for number in unexplained:
                why = reasons.get(number)
                if why is not None:
                    known[number] = (
                        f"error state (Eqw): {why}; fix it and `qmod -cj {number}`, "
                        "or `jobfleet cancel`"
                    )
        with self._error_lock:
            self._error_texts = known  # jobs out of the error state are forgotten
        for number, text in known.items():
            for index, (state, code, _) in seen.get(number, {}).items():
                seen[number][index] = (state, code, text)

    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        # Job numbers wrap and start again with a new spool: a record is ours only
        # under our job's name (checked by parse.parse_accounting).
        if len(targets) == 1:
            return ["qacct", "-j", targets[0].native_id]
        prefixes = {registry_prefix(t.name) for t in targets}
        if len(prefixes) == 1 and (prefix := prefixes.pop()) is not None:
            return ["qacct", "-j", f"{prefix}-*"]
        # qacct takes one job or pattern: jobs of several registries, or adopted ones,
        # are found among this user's jobs that ended since the oldest was submitted.
        days = math.ceil((time.time() - min(t.submitted_at for t in targets)) / 86400) + 1
        owner = ["-o", user] if (user := user_name()) else []
        return ["qacct", *owner, "-d", str(days), "-j"]

    def read_accounting(self, result: CommandResult, ctx: PollContext) -> Seen:
        seen = parse.parse_accounting(result, ctx)
        for native_id, used in usage.parse_usage(result, ctx).items():
            ctx.usage.setdefault(native_id, {}).update(used)
        return seen

    # -- cancel ---------------------------------------------------------------------

    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        if signal is not None:
            raise BackendError(
                "Grid Engine cannot send a chosen signal to a job; cancel it instead "
                "(qdel sends SIGKILL, or SIGUSR2 first with qsub -notify)"
            )
        if not native_ids:
            return {}
        # Which tasks wait: for an array, qdel's "has deleted job N" means those.
        waiting = self._waiting_tasks(native_ids)
        removed: dict[str, list[int | None]] = {}
        if not indices:
            removed = super().cancel(native_ids)
        else:
            # qdel takes one task range per call ("-t 1,3" is refused).
            for start, stop, step in ArraySpec(tuple(indices)).ranges():
                for native in native_ids:
                    found = super().cancel([native], indices=range(start, stop + 1, step))
                    for job, gone in found.items():
                        removed.setdefault(job, []).extend(gone)
        chosen = None if indices is None else set(indices)
        for job, gone in removed.items():
            if None in gone and waiting.get(job):
                removed[job] = [i for i in waiting[job] if chosen is None or i in chosen]
        self._wait_until_gone(native_ids)
        return removed

    def _waiting_tasks(self, native_ids: Sequence[str]) -> dict[str, list[int | None]]:
        """Array tasks not yet started, per job (one qstat)."""
        try:
            result = self.run(self.queue_argv(native_ids))
            seen, _ = parse.parse_queue(result, PollContext({}, native_ids))
        except CommandError:
            return {}
        return {
            job: [i for i, e in elements.items() if i is not None and e[0] is JobState.PENDING]
            for job, elements in seen.items()
        }

    def _wait_until_gone(self, native_ids: Sequence[str]) -> None:
        """Give qdel a moment, so that the next poll reads how the jobs ended."""
        deadline = time.monotonic() + min(self.settings.command_timeout_s, 30.0)
        wanted = set(native_ids)
        while time.monotonic() < deadline:
            try:
                result = self.run(self.queue_argv(native_ids))
            except CommandError:
                return
            if not result.ok or not wanted & parse.queued_numbers(result):
                return
            time.sleep(0.2)

    def parse_cancel(self, result: CommandResult) -> dict[str, list[int | None]]:
        return parse.parse_cancel(result)

    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        argv = ["qdel", *native_ids]
        if indices:
            # One range (cancel() splits the others): "3", "1-5" or "1-9:2".
            argv += ["-t", ArraySpec(tuple(indices)).to_text()]
        return argv

    def cancel_ok(self, result: CommandResult) -> bool:
        # A job that already ended is not an error: the goal is reached.
        return result.ok or bool(parse.UNKNOWN_JOB.search(result.stdout + result.stderr))

    # -- the queue view -------------------------------------------------------------

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        user = None if all_users else user_name()
        if user is None and not all_users:
            raise BackendError(
                "cannot tell this user's name (no password entry for the uid) to ask "
                "Grid Engine for its jobs; use --all-users"
            )
        return parse.parse_queue_list(self.run(queue_list_argv(user)), time.time())


def queue_list_argv(user: str | None) -> list[str]:
    """The one qstat call for the queue view: ``user``'s jobs, or everybody's for None.

    ``-u`` is always given: a site's ``sge_qstat`` file can change qstat's default.
    Without ``-g d``, an array's waiting tasks are one row (``<tasks>3-10:1``) and
    started ones a row each.
    """
    return ["qstat", "-xml", "-u", user or "*"]
