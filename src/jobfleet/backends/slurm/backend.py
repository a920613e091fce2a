"""SLURM: sbatch, squeue, sacct, scontrol and scancel, as argv lists.

Everything that runs a command, retries or decides what to ask next is in
:class:`~jobfleet.backends.command.CommandBackend`; the output is read by the pure
functions of :mod:`.parse`. Traps found on SLURM 22.05 (see docs/slurm-notes.md):

* ``squeue --json`` ignores ``-j``/``-t`` and reports raw wait statuses, and
  ``sacct --json`` reports ``exit 5`` as success: we use the text formats.
* ``sacct`` without ``--starttime`` shows only jobs since midnight: we always
  pass the earliest submission time of the jobs asked about.
* A dependent of a failed job stays PENDING for ever unless the cluster sets
  ``kill_invalid_depend``: we submit with ``--kill-on-invalid-dep=yes`` (it is
  cancelled, as on every jobfleet backend) unless ``slurm.kill_invalid_dependents``
  is off, and otherwise report the reason ``DependencyNeverSatisfied``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence

from jobfleet.backends.base import Capabilities, PollTarget, QueueEntry, SubmitRequest
from jobfleet.backends.command import CommandBackend, PollContext, Seen
from jobfleet.backends.slurm import accounting, parse, queue
from jobfleet.backends.slurm.directives import SLURM, SlurmSettings
from jobfleet.errors import CommandError
from jobfleet.runner import CommandResult, Runner
from jobfleet.script import Dialect
from jobfleet.spec import DepKind

__all__ = ["SlurmBackend", "queue_list_argv"]

_DEP_WORD = {
    DepKind.AFTER_OK: "afterok",
    DepKind.AFTER_ANY: "afterany",
    DepKind.AFTER_NOT_OK: "afternotok",
}


class SlurmBackend(CommandBackend):
    """Jobs on a SLURM cluster, through its command-line tools."""

    name = "slurm"
    # Arrays, %N, dependencies, signals: all of it; memory is sampled (MaxRSS may come
    # a poll or two after the end).
    capabilities = Capabilities(usage_settles_s=120.0)

    def __init__(self, runner: Runner | None = None, settings: SlurmSettings | None = None):
        self.slurm_settings = settings or SlurmSettings()
        super().__init__(runner, self.slurm_settings)
        # squeue and sacct cut long array index lists at 64 bytes ("359_[1-2,4,"):
        # SLURM_BITSTR_LEN=0 makes them print the whole list.
        self._env = {**os.environ, "SLURM_BITSTR_LEN": "0"}

    def script_dialect(self) -> Dialect:
        return SLURM

    def command_env(self, argv: Sequence[str]) -> dict[str, str] | None:
        # Only the commands that print array index lists; a changed environment
        # costs each sbatch call (and its job's --export=ALL) for nothing.
        return self._env if argv and argv[0] in ("squeue", "sacct") else None

    # -- submit ---------------------------------------------------------------------

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        spec = request.spec
        pattern = "slurm-%A_%a.out" if spec.array is not None else "slurm-%j.out"
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={request.name}",
            f"--output={request.job_dir}/{pattern}",
        ]
        if request.dependencies:
            clauses = [
                ":".join([_DEP_WORD[kind], *ids]) for kind, ids in request.dependencies if ids
            ]
            argv.append(f"--dependency={','.join(clauses)}")
            if self.slurm_settings.kill_invalid_dependents:
                argv.append("--kill-on-invalid-dep=yes")
        argv += list(spec.resources.extra_args)
        argv.append(request.script_path)
        return argv

    def parse_submit(self, result: CommandResult) -> str:
        return parse.parse_submit(result)

    def submit_is_transient(self, result: CommandResult) -> bool:
        return bool(parse.TRANSIENT_SUBMIT.search(result.stderr))

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%F"]

    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        return parse.parse_find_by_name(result)

    def find_submitted(self, name: str, job_id: str) -> str | None:
        """In the queue, or else (a job that ended and was purged) in accounting."""
        found = super().find_submitted(name, job_id)
        if found is not None:
            return found
        if self.accounting is False:
            raise CommandError(
                ("sacct",), "no accounting: a job that ended may be gone", transient=True
            )
        argv = ["sacct", "--noheader", "--parsable2", "--allocations", "--starttime=now-30days"]
        result = self.run([*argv, f"--name={name}", "--format=JobIDRaw"])
        return parse.parse_find_by_name(result, last=True)

    # -- polling --------------------------------------------------------------------

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        return [
            "squeue",
            "--noheader",
            "--array",
            "--states=all",
            f"--jobs={','.join(native_ids)}",
            f"--format={queue.QUEUE_FORMAT}",
        ]

    def read_queue(self, result: CommandResult, ctx: PollContext) -> Seen:
        seen, ended = queue.parse_queue(result, ctx)
        ctx.ended.update(ended)  # for this poll's sacct rows
        return seen

    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        if self.accounting is False:
            return None
        native_ids = [t.native_id for t in targets]
        since = min(t.submitted_at for t in targets)
        start = dt.datetime.fromtimestamp(since - 86400).strftime("%Y-%m-%dT%H:%M:%S")
        # With the jobs' steps (no --allocations): MaxRSS is only on those.
        return [
            "sacct",
            "--noheader",
            "--parsable2",
            f"--starttime={start}",
            f"--jobs={','.join(native_ids)}",
            f"--format={accounting.ACCOUNTING_FORMAT}",
        ]

    def read_accounting(self, result: CommandResult, ctx: PollContext) -> Seen:
        try:
            seen, used = accounting.parse_accounting(result, ctx)
        except accounting.NoAccounting as exc:
            self.accounting_missing(str(exc))
            return {}
        self.accounting = True
        if not ctx.usage:
            ctx.usage.update(used)  # the usual single call: the parser's maps are ours
        else:
            for native_id, by_index in used.items():
                ctx.usage.setdefault(native_id, {}).update(by_index)
        return seen

    def accounting_missing(self, why: str) -> None:
        self.accounting = False
        self.warn_once(
            "no-accounting",
            "SLURM accounting is not available (%s); final states come from "
            "`scontrol show job` while the controller remembers a job, then from "
            "the jobs' exit-code files",
            why,
        )

    def memory_argv(self) -> list[str] | None:
        return ["scontrol", "show", "job", "--oneliner"]

    def read_memory(self, result: CommandResult, ctx: PollContext) -> Seen:
        return parse.parse_memory(result, ctx)

    # -- cancel ---------------------------------------------------------------------

    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        targets = [f"{n}_{i}" for n in native_ids for i in indices] if indices else list(native_ids)
        # Without --full a signal reaches only the job's steps, not its batch script.
        options = ["--full", f"--signal={signal}"] if signal else []
        return ["scancel", *options, *targets]

    def cancel_ok(self, result: CommandResult) -> bool:
        # Jobs that already ended are not an error: the goal is reached.
        return result.ok or bool(
            parse.INVALID_ID.search(result.stderr)
            or "already completing or completed" in result.stderr
        )

    # -- the queue view -------------------------------------------------------------

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        return queue.parse_queue_list(self.run(queue_list_argv(all_users)))


def queue_list_argv(all_users: bool) -> list[str]:
    """The one squeue call for the queue view.

    Without ``--array``, waiting elements of an array are one row (``123_[5-10%2]``)
    and started ones a row each; ``--all`` includes hidden partitions; ``--me``
    (SLURM 20.11 and newer) selects the caller's jobs by uid.
    """
    users = [] if all_users else ["--me"]
    return ["squeue", "--noheader", "--all", *users, f"--format={queue.LIST_FORMAT}"]
