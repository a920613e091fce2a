"""HTCondor: condor_submit, condor_q, condor_history, condor_rm and condor_release.

All I/O, retries and the polling rule are in
:class:`~jobfleet.backends.command.CommandBackend`; the output is read by the pure
functions of :mod:`.parse`, :mod:`.eventlog` and :mod:`.usage`. HTCondor differs from
the other schedulers in ways that matter (docs/htcondor-notes.md):

* a job is described by a submit description file, not by directives in its
  script: :meth:`HTCondorBackend.submit` writes ``job.sub`` beside the script (from
  its ``#CONDOR`` lines, :mod:`.submitfile`) and submits that;
* there are no dependencies outside DAGMan: a job with predecessors is submitted
  held, with ``+JobfleetAfter`` naming their clusters, and whichever jobfleet process
  polls releases it (``condor_release``) once they all left the queue. It only waits
  for them to *end*: after-ok and after-not-ok are checked by the job script, as on
  Grid Engine. With no jobfleet process polling, such jobs stay held, using nothing;
* a job array is one cluster of procs 0..N-1: each proc gets its index as the
  script's argument (and as ``+JobfleetIndex``), so listed and stepped indices work.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

from jobfleet.backends.base import (
    Capabilities,
    NativeStatus,
    PollTarget,
    QueueEntry,
    SubmitRequest,
)
from jobfleet.backends.command import CommandBackend, Element, PollContext, Seen
from jobfleet.backends.htcondor import parse, usage
from jobfleet.backends.htcondor.eventlog import parse_event_log
from jobfleet.backends.htcondor.submitfile import (
    WALLTIME_ATTR,
    HTCondorSettings,
    htcondor_dialect,
    htcondor_directives,
    submit_description,
)
from jobfleet.backends.jobfiles import FROM_EXIT_FILE, mark_explained, recorded_exit_codes
from jobfleet.errors import BackendError, CommandError, SpecError, SubmitError
from jobfleet.runner import CommandResult, Runner
from jobfleet.script import Dialect
from jobfleet.spec import DepKind, JobSpec
from jobfleet.states import JobState, aggregate

__all__ = ["SUBMIT_FILE", "HTCondorBackend", "queue_list_argv"]

log = logging.getLogger(__name__)

#: The submit description file, in the job's directory.
SUBMIT_FILE = "job.sub"
#: What condor_rm and condor_release say of jobs that are gone or already going.
#: condor_rm.V6/rm.cpp: "Couldn't find/remove all jobs matching constraint (...)" (or
#: release), exit 1, when a constraint matched no job.
_GONE = re.compile(
    r"not found|There are no jobs in the queue|already marked for removal|"
    r"Couldn't find/(?:remove|release) all jobs"
)
#: condor_history on an access point that keeps no history (condor_tools/history.cpp:
#: "configuration key HISTORY is unset", "The variable HISTORY is not defined"); any
#: other failure is one, never "no history".
_NO_HISTORY = re.compile(r"configuration key HISTORY is unset|variable HISTORY is not defined")
_ATTRS = ",".join(parse.ATTRIBUTES)


class HTCondorBackend(CommandBackend):
    """Jobs on an HTCondor pool, through the access point's command-line tools."""

    name = "htcondor"
    capabilities = Capabilities(
        dependencies=frozenset({DepKind.AFTER_ANY}),  # held, released once they ended
        signals=False,  # condor_rm sends the job's kill signal; no tool sends another
    )
    queue_lists_all = True  # condor_q lists the user's jobs: predecessors included

    def __init__(self, runner: Runner | None = None, settings: HTCondorSettings | None = None):
        self.htcondor_settings = settings or HTCondorSettings()
        super().__init__(runner, self.htcondor_settings)
        self.capabilities = dataclasses.replace(
            self.capabilities, max_array_size=self.htcondor_settings.max_array_size
        )

    def script_dialect(self) -> Dialect:
        return htcondor_dialect(self.htcondor_settings)

    def check_request(self, spec: JobSpec) -> None:
        # A layout or option HTCondor cannot honour is refused before anything is recorded.
        htcondor_directives(spec, self.htcondor_settings)
        limit = self.htcondor_settings.max_array_size
        if spec.array is not None and len(spec.array.indices) > limit:
            raise SpecError(
                "array",
                f"{len(spec.array.indices)} elements: the schedd takes at most {limit} procs "
                "in one submission (MAX_JOBS_PER_SUBMISSION, htcondor.max_array_size); "
                "split the array",
            )

    # -- submit ---------------------------------------------------------------------

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        return [
            "condor_submit",
            *request.spec.resources.extra_args,
            str(Path(request.job_dir) / SUBMIT_FILE),
        ]

    def submit_files(self, request: SubmitRequest, script: str) -> dict[str, str]:
        return {str(Path(request.job_dir) / SUBMIT_FILE): self._description(request, script)}

    def _description(self, request: SubmitRequest, script_text: str) -> str:
        after = [native for _, ids in request.dependencies for native in ids]
        return submit_description(
            script_text,
            script_path=request.script_path,
            job_dir=request.job_dir,
            name=request.name,
            array=request.spec.array,
            after=list(dict.fromkeys(after)),
        )

    def submit(self, request: SubmitRequest) -> str:
        """Write the submit description file beside the script, then submit it."""
        script = Path(request.script_path)
        try:
            text = self._description(
                request, script.read_text(encoding="utf-8", errors="surrogateescape")
            )
            target = Path(request.job_dir) / SUBMIT_FILE
            target.write_text(text, encoding="utf-8", errors="surrogateescape")
            # The starter executes the script itself (no file transfer, no shell):
            # without the execute bit the job would go on hold (FailedToCreateProcess).
            script.chmod(script.stat().st_mode | 0o700)
        except (OSError, SpecError) as exc:
            raise SubmitError(request.name, f"cannot write {SUBMIT_FILE}: {exc}") from None
        return super().submit(request)

    def parse_submit(self, result: CommandResult) -> str:
        return parse.parse_submit(result)

    def submit_is_transient(self, result: CommandResult) -> bool:
        return bool(parse.TRANSIENT_SUBMIT.search(result.stderr))

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["condor_q", "-json", "-attributes", "ClusterId,ProcId,JobBatchName",
                "-constraint", _name_is(name)]  # fmt: skip

    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        return parse.parse_find_by_name(result, name)

    def find_submitted(self, name: str, job_id: str) -> str | None:
        """In the queue, or else (a job that already ended) in the history."""
        found = super().find_submitted(name, job_id)
        if found is not None or not self.htcondor_settings.history:
            return found
        argv = ["condor_history", "-json", "-attributes", "ClusterId,ProcId,JobBatchName",
                "-limit", "1", "-constraint", _name_is(name)]  # fmt: skip
        return parse.parse_find_by_name(self.run(argv), name)

    # -- polling --------------------------------------------------------------------

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        # Every job of this user: the held jobs' predecessors are among them.
        return ["condor_q", "-json", "-attributes", _ATTRS]

    def read_queue(self, result: CommandResult, ctx: PollContext) -> Seen:
        seen, ready = parse.parse_queue(result, ctx)
        if ready:
            clusters = self._confirmed(ready)
            if clusters:
                self._release(clusters, seen)
        return seen

    def _confirmed(self, ready: dict[str, list[str]]) -> list[str]:
        """The jobs of ``ready`` none of whose predecessors is a late-materialization
        factory with procs still to make (between two procs it shows none in condor_q):
        one ``condor_q -factory`` call (cluster ads only: condor_q.V6/queue.cpp), made
        only in a poll about to release jobs, with or without a history. When that call
        fails nothing is released: the next poll asks again."""
        after = sorted({c for cs in ready.values() for c in cs}, key=lambda c: (len(c), c))
        argv = ["condor_q", "-factory", "-json", "-attributes",
                "ClusterId,JobMaterializeNextProcId,TotalSubmitProcs", *after]  # fmt: skip
        try:
            busy = parse.still_materializing(parse.parse_ads(self.run(argv)))
        except CommandError as exc:
            log.warning("cannot tell yet whether to release %s: %s", ", ".join(ready), exc)
            return []
        return [job for job, clusters in ready.items() if not busy & set(clusters)]

    def _release(self, clusters: list[str], seen: Seen) -> None:
        """Release the procs jobfleet held for their dependencies (HoldReasonCode 15,
        SubmittedOnHold: condor_holdcodes.h), in the jobs whose predecessors all ended;
        never a proc held for another reason (memory, the user's condor_hold), and only
        those procs are said to be released."""
        constraint = release_constraint(clusters)
        try:
            result = self.run(["condor_release", "-constraint", constraint])
        except CommandError as exc:
            log.warning("cannot release jobs %s yet: %s", ", ".join(clusters), exc)
            return
        if not result.ok:
            if not _GONE.search(result.stdout + result.stderr):
                log.warning("condor_release %s: %s", constraint, result.stderr.strip())
            return  # nothing matched: released already, or removed
        log.info("released jobs %s: the jobs they waited for ended", ", ".join(clusters))
        for cluster in clusters:
            elements = seen.get(cluster, {})
            for index, (state, _, reason) in elements.items():
                if state is JobState.PENDING and parse.is_waiting(reason):
                    elements[index] = (JobState.PENDING, None, "released: its predecessors ended")

    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        if not self.htcondor_settings.history:
            return None
        # -limit: the scan of the history file stops once every proc was found.
        procs = sum(len(t.indices) if t.indices is not None else 1 for t in targets)
        return ["condor_history", "-json", "-attributes", _ATTRS, "-limit", str(procs),
                *(t.native_id for t in targets)]  # fmt: skip

    def read_accounting(self, result: CommandResult, ctx: PollContext) -> Seen:
        if not result.ok and _NO_HISTORY.search(result.stderr):
            self.accounting_missing(result.stderr.strip())
            return {}
        seen = parse.parse_history(result, ctx)
        for native_id, used in usage.parse_usage(result, ctx).items():
            ctx.usage.setdefault(native_id, {}).update(used)
        return seen

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        """The shared rule, then the event log of what nothing else told about (or only
        the exit-code files: they cannot tell a cancel from a failure)."""
        statuses = super().poll(targets)
        for target in targets:
            if target.ended:
                continue
            status = statuses.get(target.native_id)
            known = _known(status)
            wanted = set(target.indices) if target.indices is not None else {None}
            if wanted <= set(known):
                continue
            found = _from_event_log(target)
            if not found:
                continue
            # As the shared rule does for the others: the exit code the job script
            # recorded (143 of a cancel), and a dependency it found never met (196).
            recorded_exit_codes(target, found, substitutes=False)
            mark_explained(target, found)
            if target.indices is None:
                statuses[target.native_id] = NativeStatus(*found[None])
                continue
            elements = dict(status.elements) if status is not None else {}
            for index, element in found.items():
                if index is not None and index not in known:
                    elements[index] = element
            statuses[target.native_id] = NativeStatus(
                aggregate(e[0] for e in elements.values()), elements=elements
            )
        return statuses

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
                "HTCondor cannot send a chosen signal to a job; cancel it instead "
                "(condor_rm sends the job's kill_sig, SIGTERM, then SIGKILL)"
            )
        if indices:
            self._refuse_unmaterialized(native_ids)
        return super().cancel(native_ids, indices=indices)

    def _refuse_unmaterialized(self, native_ids: Sequence[str]) -> None:
        """Elements are removed by a constraint on their procs, which matches only procs
        already materialized: while a job's factory has procs to make (max_concurrent),
        some elements would run all the same. Refused, saying what works instead."""
        argv = ["condor_q", "-factory", "-json", "-attributes",
                "ClusterId,JobMaterializeNextProcId,TotalSubmitProcs", *native_ids]  # fmt: skip
        busy = sorted(parse.still_materializing(parse.parse_ads(self.run(argv))))
        if busy:
            raise BackendError(
                f"job(s) {', '.join(busy)} start their elements a few at a time "
                "(array max_concurrent: HTCondor late materialization) and condor_rm removes "
                "only elements already materialized; cancel the whole job, or cancel these "
                "elements once they are queued or running"
            )

    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        if not indices:
            return ["condor_rm", *native_ids]
        clusters = " || ".join(f"ClusterId == {int(n)}" for n in native_ids)
        chosen = " || ".join(f"{parse.INDEX_ATTR} == {int(i)}" for i in indices)
        return ["condor_rm", "-constraint", f"({clusters}) && ({chosen})"]

    def cancel_ok(self, result: CommandResult) -> bool:
        # A job that already left the queue is not an error: the goal is reached.
        return result.ok or bool(_GONE.search(result.stdout + result.stderr))

    # -- the queue view -------------------------------------------------------------

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        return parse.parse_queue_list(self.run(queue_list_argv(all_users)), time.time())


def queue_list_argv(all_users: bool) -> list[str]:
    """The one condor_q call of the queue view: this user's jobs, or everybody's."""
    return ["condor_q", "-json", "-attributes", _ATTRS, *(["-allusers"] if all_users else [])]


def release_constraint(clusters: Sequence[str]) -> str:
    """The procs of ``clusters`` still held by jobfleet's own ``hold = true``."""
    chosen = " || ".join(f"ClusterId == {int(c)}" for c in clusters)
    return f"({chosen}) && JobStatus == 5 && HoldReasonCode == {parse.HOLD_SUBMITTED}"


def _name_is(name: str) -> str:
    """A constraint matching ``JobBatchName`` to ``name`` (a ClassAd string literal)."""
    if not re.fullmatch(r"[A-Za-z0-9._+@:-]+", name):
        raise CommandError(["condor_q"], f"cannot look up a job named {name!r} in HTCondor")
    return f'JobBatchName == "{name}"'


def _known(status: NativeStatus | None) -> dict[int | None, Element]:
    """The elements of ``status`` HTCondor itself told about (not the exit-code files)."""
    if status is None:
        return {}
    if not status.elements:
        single: Element = (status.state, status.exit_code, status.reason)
        return {} if single[2] == FROM_EXIT_FILE else {None: single}
    return {i: e for i, e in status.elements.items() if e[2] != FROM_EXIT_FILE}


#: The walltime line of a submit file jobfleet wrote.
_WALLTIME_LINE = re.compile(rf"^\+{WALLTIME_ATTR} = (\d+)$", re.MULTILINE)


def _from_event_log(target: PollTarget) -> dict[int | None, Element]:
    """What the job's event log says of its procs, by the target's indices (with the
    walltime from the job's submit file: the event log does not say)."""
    directory = Path(target.job_dir)
    try:
        text = (directory / "condor.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    try:
        limit = _WALLTIME_LINE.search((directory / SUBMIT_FILE).read_text(errors="replace"))
    except OSError:
        limit = None
    walltime_s = int(limit[1]) if limit else None
    found: dict[int | None, Element] = {}
    for (cluster, proc), element in parse_event_log(text, walltime_s).items():
        # Only how it ended: a job neither condor_q nor condor_history knows is not
        # waiting or running, whatever the log's last word was.
        if cluster != target.native_id or not element[0].is_terminal:
            continue
        if target.indices is None:
            if proc == 0:
                found[None] = element
        elif 0 <= proc < len(target.indices):
            found[target.indices[proc]] = element
    return found
