"""IBM Spectrum LSF: bsub, bjobs, bhist (or bacct) and bkill, as argv lists.

All I/O, retries and the polling rule are in
:class:`~jobfleet.backends.command.CommandBackend`; the output is read by the pure
functions of :mod:`.parse` and :mod:`.usage`. What matters about LSF
(docs/lsf-notes.md):

* ``#BSUB`` lines are read only from a script on bsub's standard input: the
  submission passes the script's own ``#BSUB`` words on the command line, then
  ``/bin/bash SCRIPT`` as the job's command.
* bjobs forgets a finished job after ``CLEAN_PERIOD`` (an hour by default): then
  ``bhist -l`` (or ``bacct -l``) tells how it ended, else the exit-code file.
* bjobs answers ``Job <N> is not found`` with exit 0 or 255: an answer, not an error.
* An array is ``-J "name[1-10:2,15]%5"``; its elements ``N[i]`` see ``LSB_JOBINDEX``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from jobfleet.backends.base import Capabilities, PollTarget, QueueEntry, SubmitRequest, user_name
from jobfleet.backends.command import CommandBackend, PollContext, Seen
from jobfleet.backends.lsf import parse, usage
from jobfleet.backends.lsf.directives import (
    LsfSettings,
    lsf_dialect,
    lsf_directives,
    resolved,
    script_options,
)
from jobfleet.errors import BackendError, SpecError
from jobfleet.runner import CommandResult, Runner
from jobfleet.script import Dialect
from jobfleet.spec import ArraySpec, DepKind, JobSpec

__all__ = ["MAX_NAME", "LsfBackend", "dependency_expression", "element_list", "queue_list_argv"]

#: The longest job name LSF keeps (bsub -J: 4094 characters).
MAX_NAME = 4094

#: The longest array specification bsub takes (``-J "name[list]%N"``: 255 characters,
#: IBM LSF 10.1 "Job arrays"), and the room kept in it for the longest name jobfleet
#: gives a job (naming.py: a 20-character name_prefix, ``-jf<token>-<id>.<n>-``, 40).
MAX_ARRAY_SPEC = 255
NAME_ROOM = 90

_DEP_WORD = {DepKind.AFTER_OK: "done", DepKind.AFTER_NOT_OK: "exit", DepKind.AFTER_ANY: "ended"}


def dependency_expression(dependencies: Sequence[tuple[DepKind, Sequence[str]]]) -> str:
    """bsub -w's expression: ``done(1) && exit(2) && ended(3)``."""
    return " && ".join(
        f"{_DEP_WORD[kind]}({native})" for kind, ids in dependencies for native in ids
    )


def element_list(indices: Sequence[int]) -> str:
    """LSF's index list (``1-5,7,20-30:5``), without a ``%`` limit."""
    return ArraySpec(tuple(indices)).to_text()


class LsfBackend(CommandBackend):
    """Jobs on an LSF cluster, through its command-line tools."""

    name = "lsf"
    capabilities = Capabilities()

    def __init__(self, runner: Runner | None = None, settings: LsfSettings | None = None):
        # The site's unit is read once, here (lsf.conf), not by the pure directives.
        self.lsf_settings = resolved(settings or LsfSettings())
        super().__init__(runner, self.lsf_settings)
        self.capabilities = replace(
            self.capabilities, max_array_size=self.lsf_settings.max_array_size
        )
        self._text = self.lsf_settings.status_format == "text"

    def script_dialect(self) -> Dialect:
        return lsf_dialect(self.lsf_settings)

    def check_request(self, spec: JobSpec) -> None:
        if spec.array is not None:
            self._check_array(spec.array)
        # What LSF cannot express is refused before anything is recorded (the
        # directives raise SpecError naming the field; extra_directives must read as words).
        self._directive_words(spec)

    def _check_array(self, array: ArraySpec) -> None:
        """What bsub refuses of an array (IBM LSF 10.1, bsub -J): indices from 1; no
        index above MAX_JOB_ARRAY_SIZE (it bounds the largest index, not only the
        count); a specification of at most 255 characters."""
        if array.indices[0] < 1:
            raise SpecError("array", "LSF array indices start at 1; shift them (e.g. '1-10')")
        top, limit = max(array.indices), self.lsf_settings.max_array_size
        if top > limit:
            raise SpecError(
                "array",
                f"largest index {top} is above the site's MAX_JOB_ARRAY_SIZE {limit} "
                "(lsf.max_array_size), which bounds every index on LSF: renumber the "
                "elements from 1, or split the array",
            )
        spec = f"[{element_list(array.indices)}]"
        if array.max_concurrent:
            spec += f"%{array.max_concurrent}"
        if len(spec) + NAME_ROOM > MAX_ARRAY_SPEC:
            raise SpecError(
                "array",
                f"{spec[:40]}... is {len(spec)} characters: with the job's name it passes "
                f"the {MAX_ARRAY_SPEC} characters bsub takes for an array; use ranges "
                "(1-100:2) rather than listed indices, or split the array",
            )

    def _directive_words(self, spec: JobSpec) -> list[str]:
        """The words of the job script's ``#BSUB`` lines, as render_script writes them
        (generated ones less ``directives_skip``, then ``extra_directives``)."""
        skip = spec.resources.directives_skip
        bodies = [
            b for b in lsf_directives(spec, self.lsf_settings) if not any(s in b for s in skip)
        ]
        script = "\n".join(f"#BSUB {b}" for b in [*bodies, *spec.resources.extra_directives])
        try:
            return script_options("#!\n" + script)
        except ValueError as exc:
            raise SpecError(
                "resources.extra_directives", f"cannot be read as bsub options: {exc}"
            ) from None

    # -- submit ---------------------------------------------------------------------

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        spec = request.spec
        name = request.name[:MAX_NAME]
        if spec.array is not None:
            limit = f"%{spec.array.max_concurrent}" if spec.array.max_concurrent else ""
            name = f"{name}[{element_list(spec.array.indices)}]{limit}"
            output = f"{request.job_dir}/lsf.%J_%I.out"
        else:
            output = f"{request.job_dir}/lsf.%J.out"
        argv = ["bsub", "-J", name, "-o", output]
        expression = dependency_expression(request.dependencies)
        if expression:
            # -ti: a job whose dependency can never be met is ended at once (EXIT,
            # TERM_ORPHAN_SYSTEM) rather than pending for ever.
            argv += ["-w", expression, "-ti"]
        argv += self._directive_words(spec)
        argv += list(spec.resources.extra_args)
        argv += [self.script_dialect().interpreter, request.script_path]
        return argv

    def parse_submit(self, result: CommandResult) -> str:
        return parse.parse_submit(result)

    def submit_is_transient(self, result: CommandResult) -> bool:
        return bool(parse.TRANSIENT_SUBMIT.search(result.stderr + result.stdout))

    def find_by_name_argv(self, name: str) -> list[str]:
        return ["bjobs", "-a", "-noheader", "-o", "jobid", "-J", name]

    def parse_find_by_name(self, result: CommandResult, name: str) -> str | None:
        return parse.parse_find_by_name(result)

    # -- polling --------------------------------------------------------------------

    def queue_argv(self, native_ids: Sequence[str]) -> list[str]:
        fields = " ".join(parse.QUEUE_FIELDS)
        if self._text:
            return ["bjobs", "-a", "-noheader", "-o", f"{fields} delimiter='|'", *native_ids]
        return ["bjobs", "-a", "-json", "-o", fields, *native_ids]

    def read_queue(self, result: CommandResult, ctx: PollContext) -> Seen:
        seen = parse.parse_queue(result, ctx, self._text)
        ended = any(e[0].is_terminal for elements in seen.values() for e in elements.values())
        if ended:  # usage only for polls in which jobs ended
            for native_id, used in usage.queue_usage(result, ctx, self._text).items():
                ctx.usage.setdefault(native_id, {}).update(used)
        return seen

    def accounting_argv(self, targets: Sequence[PollTarget]) -> list[str] | None:
        if self.accounting is False:
            return None
        ids = [t.native_id for t in targets]
        if self.lsf_settings.accounting == "bacct":
            return ["bacct", "-l", *ids]
        return ["bhist", "-l", "-n", str(self.lsf_settings.bhist_files), *ids]

    def read_accounting(self, result: CommandResult, ctx: PollContext) -> Seen:
        seen = parse.parse_history(result, ctx)
        self.accounting = True
        for native_id, used in usage.history_usage(result, ctx).items():
            ctx.usage.setdefault(native_id, {}).update(used)
        return seen

    def accounting_missing(self, why: str) -> None:
        self.accounting = False
        self.warn_once(
            "no-accounting",
            "LSF's %s cannot be run (%s); jobs bjobs forgot end from their exit-code files",
            self.lsf_settings.accounting,
            why,
        )

    # -- cancel ---------------------------------------------------------------------

    def cancel_argv(
        self, native_ids: Sequence[str], indices: Sequence[int] | None, signal: str | None
    ) -> list[str]:
        targets = (
            [f"{n}[{element_list(indices)}]" for n in native_ids] if indices else list(native_ids)
        )
        options = ["-s", signal.upper().removeprefix("SIG")] if signal else []
        return ["bkill", *options, *targets]

    def cancel_ok(self, result: CommandResult) -> bool:
        # Jobs that already ended, or that LSF forgot, need no cancel: the goal is reached.
        return result.ok or not parse.parse_cancel_refusals(result)

    # -- the queue view -------------------------------------------------------------

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        user = None if all_users else user_name()
        if user is None and not all_users:
            raise BackendError(
                "cannot tell this user's name (no password entry for the uid) to ask "
                "LSF for its jobs; use --all-users"
            )
        result = self.run(queue_list_argv(user, self._text))
        return parse.parse_queue_list(result, self._text)


def queue_list_argv(user: str | None, text: bool = False) -> list[str]:
    """The one bjobs call for the queue view: ``user``'s unfinished jobs, or everybody's
    for None (``-u all``)."""
    fields = " ".join(parse.LIST_FIELDS)
    if text:
        return ["bjobs", "-u", user or "all", "-noheader", "-o", f"{fields} delimiter='|'"]
    return ["bjobs", "-u", user or "all", "-json", "-o", fields]
