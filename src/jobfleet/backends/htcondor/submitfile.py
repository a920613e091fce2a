"""HTCondor's job description: a submit description file, not ``#`` directives.

The job script carries the submit commands jobfleet derives from the job's resources as
``#CONDOR <command>`` comment lines (the dialect's directives: ``extra_directives``
and ``directives_skip`` work on them as on any scheduler's, and the option table
reads them off dry runs). At submission the backend writes ``job.sub`` beside the
script: those lines, then what belongs to one submission (:func:`submit_description`):
the script as ``executable``, the array's indices, the event log, ``batch_name``,
a hold for dependencies, and ``queue N``. See docs/htcondor.md.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from jobfleet.backends.command import CommandSettings
from jobfleet.errors import SpecError, shown
from jobfleet.resources import Resources, license_parts
from jobfleet.script import Dialect
from jobfleet.settings import as_bool, choice, option, whole
from jobfleet.spec import ArraySpec, JobSpec
from jobfleet.units import begin_delay_s

__all__ = [
    "DIRECTIVE",
    "HTCONDOR",
    "MAPPING",
    "WALLTIME_ATTR",
    "HTCondorSettings",
    "htcondor_dialect",
    "htcondor_directives",
    "script_commands",
    "submit_description",
]

#: The prefix of the submit commands in the job script.
DIRECTIVE = "#CONDOR"
#: The job attribute holding the walltime, named by the periodic_remove that enforces
#: it (its RemoveReason quotes the expression: how a time-out is told from a condor_rm).
WALLTIME_ATTR = "JobfleetWalltime"
#: The periodic_remove clause that ends a job HTCondor held for exceeding its memory
#: (HoldReasonCode 34 JobOutOfResources; sub code 102 memory, 0 before sub codes; 104 is
#: disk, which stays held). HTCondor holds such a job rather than ending it; removed, its
#: history ad keeps the hold as LastHoldReasonCode/LastHoldReason (schedd.cpp
#: fixReasonAttrs, JA_REMOVE_JOBS), which is how parse tells it from a time-out.
MEMORY_REMOVE = "(JobStatus == 5 && HoldReasonCode == 34 && HoldReasonSubCode =!= 104)"


def memory_removed(reason: str, code: object, subcode: object) -> bool:
    """Whether a job removed with ``reason`` was ended by :data:`MEMORY_REMOVE`: the
    PeriodicRemove that quotes it, while held with code 34 and no disk sub code."""
    return (
        "PeriodicRemove" in reason
        and "HoldReasonCode == 34" in reason
        and code == 34
        and subcode != 104
    )


#: How late a deferred job may still start (HTCondor holds one that misses its
#: deferral_time by more): ten years, i.e. "not before", never "exactly at".
_DEFERRAL_WINDOW_S = 10 * 365 * 86400
#: How long before its deferral_time a job may be matched (and hold a slot, idle).
_DEFERRAL_PREP_S = 60


#: should_transfer_files' words; YAML reads an unquoted YES or NO as true or false.
_TRANSFER = choice("NO", "IF_NEEDED", "YES")
_YAML_WORD = {True: "YES", False: "NO"}


@dataclass(frozen=True, slots=True)
class HTCondorSettings(CommandSettings):
    """HTCondor knobs (configuration section ``htcondor:``).

    Attributes:
        should_transfer_files: ``NO`` (the default) runs jobs only where the submit
            machine's file system is (the job directory must be shared, as on every
            scheduler jobfleet drives); ``IF_NEEDED`` or ``YES`` let HTCondor copy the
            script, but the job directory's exit-code files must still be reachable.
        history: ask ``condor_history`` how jobs that left the queue ended; off where
            the access point keeps no history (then the event log and the job
            script's exit-code files tell).
        max_array_size: the schedd's ``MAX_JOBS_PER_SUBMISSION`` (param_info.in: 20000):
            condor_submit fails for more procs in one submission (qmgmt.cpp, NewProc).
    """

    should_transfer_files: str = option(
        "should_transfer_files",
        "NO",
        "NO: run only where the job directory is (a shared file system); IF_NEEDED, YES",
        parse=lambda value, key: _TRANSFER(
            _YAML_WORD[value] if isinstance(value, bool) else value, key
        ),
    )
    history: bool = option(
        "history", True, "ask condor_history how jobs that left the queue ended", parse=as_bool
    )
    max_array_size: int = option(
        "max_array_size",
        20000,
        "the schedd's MAX_JOBS_PER_SUBMISSION (procs in one submission; default 20000)",
        parse=whole(1),
    )


#: How each key of ``resources:`` reaches HTCondor (read by docs and ``jobfleet options``).
MAPPING: dict[str, str] = {
    "cores": "request_cpus = tasks x cores",
    "memory": "request_memory (MiB, rounded up); periodic_remove ends a job held for "
    "exceeding it (HoldReasonCode 34)",
    "walltime": f"+{WALLTIME_ATTR} and periodic_remove (checked every PERIODIC_EXPR_INTERVAL)",
    "gpus": "request_gpus",
    "nodes": "1 only: a vanilla-universe job is one slot (error on more)",
    "queue": "error: HTCondor has no queues (use constraint or extra_directives)",
    "account": "accounting_group",
    "extra_directives": "#CONDOR submit commands as given (e.g. '+ProjectName = \"x\"')",
    "directives_skip": "generated #CONDOR lines left out",
    "extra_args": "condor_submit arguments",
    "tasks": "request_cpus = tasks x cores (one slot)",
    "tasks_per_node": "request_cpus = tasks_per_node x cores (one node)",
    "cores_per_task": "as cores",
    "gpus_per_node": "request_gpus (one node)",
    "gpus_per_task": "request_gpus = gpus_per_task x tasks",
    "memory_per_core": "request_memory = memory_per_core x request_cpus",
    "exclusive": "error: ask for the whole machine's cores instead",
    "launcher": "mpirun/mpiexec -np tasks before the command; srun is an error",
    "qos": "error: HTCondor has no QOS",
    "constraint": "requirements = (expression), a ClassAd expression on machine attributes",
    "reservation": "error: HTCondor has no advance reservations",
    "mail_to": "notify_user",
    "mail_on": "notification: Start (begin), Complete (end), Error (fail), Always (all)",
    "licenses": "concurrency_limits = name:count,...",
    "priority": "priority (orders the user's own jobs)",
    "begin": "deferral_time (Unix time; a delay counts from QDate), deferral_window",
    "name_prefix": "batch_name = PREFIXjf<token>-<id>-<name>",
}

_MIB = 1024 * 1024
#: ClassAd operators written the SLURM way: a single & or |, or a comma.
_SLURM_OPERATORS = re.compile(r"(?<![&|])[&|](?![&|])|,")


def _refuse(res: Resources) -> None:
    if res.nodes > 1:
        raise SpecError(
            "resources.nodes",
            "an HTCondor (vanilla universe) job runs in one slot on one machine; "
            "use nodes: 1 (tasks on one node are fine), or split the work into jobs",
        )
    for key, why in (
        ("queue", "HTCondor has no queues; select machines with constraint instead"),
        ("qos", "HTCondor has no quality of service; leave qos out"),
        ("reservation", "HTCondor has no advance reservations; leave reservation out"),
    ):
        if getattr(res, key) is not None:
            raise SpecError(f"resources.{key}", why)
    if res.exclusive:
        raise SpecError(
            "resources.exclusive",
            "HTCondor gives a job a slot, not a machine; ask for as many cores as the "
            "machines have instead",
        )


def _requests(res: Resources) -> list[str]:
    cpus = res.total_cores
    out = [f"request_cpus = {cpus}"]
    memory = res.memory_bytes
    if res.memory_per_core_bytes is not None:
        memory = res.memory_per_core_bytes * cpus
    if memory is not None:
        out.append(f"request_memory = {-(-memory // _MIB)}")
    gpus = res.gpus or res.gpus_per_node or res.gpus_per_task * res.total_tasks
    if gpus:
        out.append(f"request_gpus = {gpus}")
    if res.walltime_s is not None:
        out += [
            f"+{WALLTIME_ATTR} = {res.walltime_s}",
            "periodic_remove = ((JobStatus == 2) && "
            f"(time() - JobCurrentStartDate > {WALLTIME_ATTR})) || {MEMORY_REMOVE}",
        ]
    else:
        out.append(f"periodic_remove = {MEMORY_REMOVE}")
    return out


def _notification(events: Sequence[str]) -> str:
    chosen = set(events or ("end", "fail"))
    if "all" in chosen:
        return "Always"
    if "begin" in chosen:
        if len(chosen) > 1:
            raise SpecError(
                "resources.mail_on",
                "HTCondor mails for one kind of event: begin alone, or end and fail (or all)",
            )
        return "Start"
    return "Complete" if "end" in chosen else "Error"


def _deferral(begin: str) -> list[str]:
    delay = begin_delay_s(begin)
    if delay is not None:
        when = f"(QDate + {delay})"
    else:
        # A time of day without an offset is this machine's local time, as elsewhere.
        when = str(int(datetime.fromisoformat(begin).timestamp()))
    return [
        f"deferral_time = {when}",
        f"deferral_window = {_DEFERRAL_WINDOW_S}",
        f"deferral_prep_time = {_DEFERRAL_PREP_S}",
    ]


def _plain(field: str, value: str) -> str:
    """``value`` as one submit command's value: the submit language expands every
    ``$(...)`` and ``$CHOICE(...)`` it finds (nor does a value end at a newline quietly),
    so a ``$`` the user did not mean as a macro must not reach job.sub."""
    if "$" in value or "\n" in value or "\r" in value:
        raise SpecError(
            field,
            f"{shown(value)}: condor_submit would expand the $ (a macro) or cut the line; "
            "leave it out, or write the submit command in extra_directives",
        )
    return value


def _site(res: Resources) -> list[str]:
    out = []
    for field in ("account", "constraint", "mail_to"):
        value = getattr(res, field)
        if value is not None:
            _plain(f"resources.{field}", value)
    for i, text in enumerate(res.licenses):
        _plain(f"resources.licenses[{i}]", text)
    if res.account is not None:
        out.append(f"accounting_group = {res.account}")
    if res.constraint is not None:
        if _SLURM_OPERATORS.search(res.constraint):
            raise SpecError(
                "resources.constraint",
                f"{shown(res.constraint)} is not a ClassAd expression: write && and || "
                "between machine attributes, e.g. 'HasAVX2&&HasSingularity'",
            )
        out.append(f"requirements = ({res.constraint})")
    if res.licenses:
        limits = ",".join("{}:{}".format(*license_parts(text)) for text in res.licenses)
        out.append(f"concurrency_limits = {limits}")
    if res.mail_to is not None:
        out += [f"notify_user = {res.mail_to}", f"notification = {_notification(res.mail_on)}"]
    if res.priority:
        out.append(f"priority = {res.priority}")
    if res.begin is not None:
        out += _deferral(res.begin)
    return out


def htcondor_directives(spec: JobSpec, settings: HTCondorSettings | None = None) -> list[str]:
    """The submit commands for a spec's resources, in a fixed order.

    Raises:
        SpecError: a layout or option HTCondor cannot honour (see :data:`MAPPING`).
    """
    settings = settings or HTCondorSettings()
    res = spec.resources
    _refuse(res)
    out = ["universe = vanilla", *_requests(res), *_site(res)]
    if spec.environment.export_env is not False:
        out.append("getenv = true")  # the submitter's environment, as sbatch does
    out.append(f"should_transfer_files = {settings.should_transfer_files}")
    return out


def _choice(indices: Sequence[int]) -> str:
    """``$(Process)`` (0, 1, ...) to the array's own indices, in the submit language."""
    return f"$CHOICE(Process, {', '.join(map(str, indices))})"


def script_commands(script_text: str) -> list[str]:
    """The submit commands of the script's ``#CONDOR`` lines: those of its header only,
    up to the first line that is neither a comment nor blank (as bsub and qsub read
    their directives). A ``#CONDOR`` further down (the user's command, an env value, a
    prologue) is the job's text, never a submit command.

    >>> script_commands("#!/bin/sh\\n#CONDOR a = 1\\n\\necho\\n#CONDOR queue 7\\n")
    ['a = 1']
    """
    prefix = DIRECTIVE + " "
    out = []
    for line in script_text.splitlines()[1:]:
        if line.startswith(prefix):
            out.append(line[len(prefix) :])
        elif line.strip() and not line.startswith("#"):
            break
    return out


def submit_description(
    script_text: str,
    *,
    script_path: str,
    job_dir: str,
    name: str,
    array: ArraySpec | None,
    after: Sequence[str] = (),
) -> str:
    """The submit description file of one job: the script's ``#CONDOR`` lines, then
    this submission's own commands, then ``queue``.

    Args:
        script_text: the rendered job script.
        script_path: where it is (the executable).
        job_dir: the job's directory (the event log, HTCondor's own output files).
        name: the job's name on the scheduler (``batch_name``).
        array: the array, or None: ``$(Process)`` 0..N-1 becomes each index.
        after: cluster ids this job waits for: it is submitted held, and released by
            a poll once they all left the queue (docs/htcondor.md).

    Raises:
        SpecError: a path HTCondor would read as a macro or cut short.
    """
    for field, value in (("job_dir", job_dir), ("script", script_path)):
        if "$" in value or value != value.strip() or "\n" in value:
            raise SpecError(
                field, f"{shown(value)}: HTCondor cannot take this path in a submit file"
            )
    lines = script_commands(script_text)
    lines += [
        f"executable = {script_path}",
        f"initialdir = {job_dir}",
        f"log = {job_dir}/condor.log",
        f"output = {job_dir}/condor.$(Process).out",
        f"error = {job_dir}/condor.$(Process).err",
        f"batch_name = {name}",
    ]
    count = 1
    if array is not None:
        count = len(array.indices)
        lines += [
            f"arguments = {_choice(array.indices)}",
            f"+JobfleetIndex = {_choice(array.indices)}",
        ]
        if array.max_concurrent:
            lines.append(f"max_materialize = {array.max_concurrent}")
    if after:
        lines += ["hold = true", f'+JobfleetAfter = "{" ".join(after)}"']
    lines.append(f"queue {count}")
    return "\n".join(lines) + "\n"


#: The dialect with the default settings. The index is the script's first argument
#: (``arguments`` above); HTCondor may run a job again after an eviction. The starter
#: sends its kill signal (condor_rm, a periodic_remove, an eviction) to the job's main
#: process only and kills the rest only after the vacate time (10 minutes by default:
#: docs/htcondor-notes.md): the script passes the signal on to the command.
HTCONDOR = Dialect(
    name="htcondor",
    directive_prefix=DIRECTIVE,
    index_expr="${1-}",
    once_guard=False,
    directives=htcondor_directives,
    forward_signals=True,
)


def htcondor_dialect(settings: HTCondorSettings) -> Dialect:
    """The dialect with a site's settings."""
    return dataclasses.replace(
        HTCONDOR, directives=functools.partial(htcondor_directives, settings=settings)
    )
