"""Torque: qsub, qstat, qselect, qdel and qsig, as argv lists.

Torque is PBS's sibling: submission, cancel and signals work as on PBS
(:class:`~jobfleet.backends.pbs.backend.PbsBackend`, whose argv this extends). It
differs where it matters (docs/torque-notes.md):

* status: ``qstat -x -t`` (XML) of every job the server shows, in ONE call (qstat
  prints one XML document per job-id operand); the text form ``qstat -f -t`` when the
  XML cannot be read, from then on;
* completed jobs stay ``C`` for the server's ``keep_completed`` only: then only the job
  script's exit-code file tells how a job ended;
* arrays take lists (``-t 1-5,9%2``); a dependency on an array is ``afterokarray``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from jobfleet.backends.base import Capabilities, SubmitRequest
from jobfleet.backends.command import PollContext, Seen, command_failed
from jobfleet.backends.pbs import parse as pbs_parse
from jobfleet.backends.pbs.backend import DEPEND_WORDS, PbsBackend
from jobfleet.backends.torque import parse
from jobfleet.backends.torque.directives import (
    TorqueSettings,
    array_on_argv,
    torque_dialect,
    torque_directives,
)
from jobfleet.runner import CommandResult, Runner
from jobfleet.script import Dialect
from jobfleet.spec import JobSpec

__all__ = ["TorqueBackend"]


class TorqueBackend(PbsBackend):
    """Jobs on a Torque cluster, through its command-line tools."""

    name = "torque"
    capabilities = Capabilities()  # lists, steps (as lists), %N, every dependency kind
    queue_lists_all = True

    def __init__(self, runner: Runner | None = None, settings: TorqueSettings | None = None):
        self.torque_settings = settings or TorqueSettings()
        # PBS's set-up, with Torque's own settings section.
        settings = self.torque_settings
        self._set_up(runner, settings, settings.name_limit, not settings.xml_status)

    def script_dialect(self) -> Dialect:
        return torque_dialect(self.torque_settings)

    def check_request(self, spec: JobSpec) -> None:
        torque_directives(spec, self.torque_settings)

    def output_name(self, request: SubmitRequest) -> str:
        return "torque.out"  # Torque adds "-<index>" to an element's output file itself

    def depend_clauses(self, request: SubmitRequest) -> list[str]:
        # An array's kind ends in "array" (qsub(1), -W depend), one clause per job.
        return [
            f"{DEPEND_WORDS[kind]}{'array' if '[]' in native else ''}:{native}"
            for kind, ids in request.dependencies
            for native in ids
        ]

    def array_argv(self, request: SubmitRequest) -> list[str]:
        listed = array_on_argv(request.spec)
        # Too long for a #PBS line (torque_directives leaves it out): on the command line.
        return [] if listed is None else ["-t", listed]

    record_state = staticmethod(parse.map_record)

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["qselect", "-N", self.scheduler_name(name)]

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        with self._lock:
            text = self._text_only
        return ["qstat", "-f", "-t"] if text else ["qstat", "-x", "-t"]

    def read_queue(self, result: CommandResult, ctx: PollContext) -> Seen:
        if not result.ok:
            raise command_failed(result)
        # A deleted job's exit status, if the server sets one (exit_code_canceled_job).
        mapper = functools.partial(
            parse.map_record, canceled_code=self.torque_settings.exit_code_canceled_job
        )
        if "-x" not in result.argv:
            records = pbs_parse.read_text(result.stdout)
            return pbs_parse.records_seen(records, ctx, mapper, pbs_parse.ctime_text)
        try:
            xml_records = parse.read_xml(result.stdout)
        except parse.UnreadableXml as exc:
            with self._lock:
                self._text_only = True
            self.warn_once("torque-xml", "torque: %s; reading qstat -f from now on", exc)
            return self.read_queue(self.run(self.queue_argv(ctx.ids)), ctx)
        return pbs_parse.records_seen(xml_records, ctx, mapper, parse.epoch_text)
