"""LSF's script dialect (``#BSUB`` directives), its settings (section ``lsf:``) and
its units.

The directives are written into the job script, and the submit command passes the
very same words to ``bsub`` on its command line (:func:`script_options`): ``bsub``
reads ``#BSUB`` lines only from a script given on its standard input (or with
``LSB_BSUB_PARSE_SCRIPT=Y`` in lsf.conf), and jobfleet's commands take no input.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from jobfleet.backends.command import CommandSettings
from jobfleet.errors import SpecError, shown
from jobfleet.resources import Resources, license_parts
from jobfleet.script import Dialect
from jobfleet.settings import choice, option, whole
from jobfleet.spec import JobSpec
from jobfleet.units import begin_time

__all__ = [
    "LSF",
    "MAPPING",
    "UNITS",
    "LsfSettings",
    "format_lsf_memory",
    "format_lsf_minutes",
    "lsf_dialect",
    "lsf_directives",
    "read_unit_for_limits",
    "resolved",
    "script_options",
]

#: LSF_UNIT_FOR_LIMITS values and their bytes (lsf.conf(5): KB is the default; 1024-based).
UNITS = {"KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40, "PB": 2**50, "EB": 2**60}
_UNIT_RE = re.compile(r"^\s*LSF_UNIT_FOR_LIMITS\s*=\s*\"?([A-Za-z]+)\"?\s*(?:#.*)?$", re.M)


@dataclass(frozen=True, slots=True)
class LsfSettings(CommandSettings):
    """LSF knobs (configuration section ``lsf:``).

    Attributes:
        unit_for_limits: the site's ``LSF_UNIT_FOR_LIMITS`` (the unit of ``-M`` and
            ``rusage[mem=]``); ``auto`` reads it from ``$LSF_ENVDIR/lsf.conf`` (KB when
            it is not set there, LSF's own default).
        memory_per: ``job``: ``-M`` and ``rusage[mem=]`` are the job's memory on each
            host (``LSB_JOB_MEMLIMIT=Y`` and the default ``RESOURCE_RESERVE_PER_TASK=N``);
            ``slot``: they are per slot (task), so jobfleet divides by the slots of a host.
        max_array_size: the site's ``MAX_JOB_ARRAY_SIZE`` (lsb.params, default 1000).
        status_format: ``json`` (``bjobs -json``, LSF 10.1.0.2 and newer) or ``text``
            (``bjobs -o ... delimiter='|'``, older LSF).
        accounting: how jobs ``bjobs`` forgot (after ``CLEAN_PERIOD``) ended: ``bhist``
            (``bhist -l``: exit codes and reasons) or ``bacct`` (``bacct -l``: reasons only,
            the exit code from the job's exit-code file).
        bhist_files: how many event log files ``bhist -l`` reads (``bhist -n``): without
            it bhist reads only the current ``lsb.events`` (lsb.events(5)), which mbatchd
            renames to ``lsb.events.1`` after every MAX_JOB_NUM finished jobs; ``0``: all.
    """

    unit_for_limits: str = option(
        "unit_for_limits",
        "auto",
        "LSF_UNIT_FOR_LIMITS of the site (KB, MB, GB, TB, PB, EB), or auto: from lsf.conf",
        parse=choice("auto", *UNITS),
    )
    memory_per: str = option(
        "memory_per",
        "job",
        "job (-M and rusage[mem] are the job's memory on each host) or slot (per slot)",
        parse=choice("job", "slot"),
    )
    max_array_size: int = option(
        "max_array_size", 1000, "the site's MAX_JOB_ARRAY_SIZE", parse=whole(1)
    )
    status_format: str = option(
        "status_format",
        "json",
        "json (bjobs -json, LSF 10.1.0.2+) or text (bjobs -o with a delimiter)",
        parse=choice("json", "text"),
    )
    accounting: str = option(
        "accounting",
        "bhist",
        "bhist (bhist -l: exit codes) or bacct (bacct -l) for jobs bjobs forgot",
        parse=choice("bhist", "bacct"),
    )
    bhist_files: int = option(
        "bhist_files",
        2,
        "event log files bhist -l reads (bhist -n): the current and older ones; 0 for all",
        parse=whole(0),
    )


def read_unit_for_limits(env: Mapping[str, str] | None = None) -> str:
    """``LSF_UNIT_FOR_LIMITS`` from ``$LSF_ENVDIR/lsf.conf`` (``/etc/lsf.conf`` without
    LSF_ENVDIR); ``KB`` when the file or the line is missing or unreadable."""
    env = os.environ if env is None else env
    path = Path(env.get("LSF_ENVDIR") or "/etc") / "lsf.conf"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "KB"
    found = _UNIT_RE.findall(text)
    unit = found[-1].upper() if found else "KB"
    if unit == "K":  # lsf.conf(5) takes the short forms too
        unit = "KB"
    elif len(unit) == 1:
        unit += "B"
    return unit if unit in UNITS else "KB"


def resolved(settings: LsfSettings, env: Mapping[str, str] | None = None) -> LsfSettings:
    """The settings with ``unit_for_limits: auto`` replaced by the site's unit."""
    if settings.unit_for_limits != "auto":
        return settings
    return dataclasses.replace(settings, unit_for_limits=read_unit_for_limits(env))


def format_lsf_memory(nbytes: int, unit: str) -> str:
    """Memory in the site's unit, rounded up (never less than asked).

    >>> format_lsf_memory(2**30, "MB"), format_lsf_memory(2**30 + 1, "GB")
    ('1024', '2')
    """
    return str(max(1, math.ceil(nbytes / UNITS[unit])))


def format_lsf_minutes(seconds: int) -> str:
    """``bsub -W``'s ``[hours:]minutes``, rounded up to whole minutes.

    >>> format_lsf_minutes(90), format_lsf_minutes(7200)
    ('2', '2:00')
    """
    minutes = max(1, math.ceil(seconds / 60))
    hours, rest = divmod(minutes, 60)
    return f"{hours}:{rest:02d}" if hours else str(rest)


def format_lsf_begin(begin: str, now: datetime) -> str:
    """``bsub -b``'s ``year:month:day:hour:minute`` in local time, rounded up to the
    minute (a job never starts before the time asked).

    >>> format_lsf_begin("+90s", datetime(2030, 1, 31, 14, 0))
    '2030:01:31:14:02'
    """
    at = begin_time(begin, now)
    if at.second or at.microsecond:
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return at.strftime("%Y:%m:%d:%H:%M")


#: How each key of ``resources:`` reaches LSF (read by docs and ``jobfleet options``).
MAPPING: dict[str, str] = {
    "cores": "-n tasks x cores (slots), with -R span[hosts=1] or span[ptile=..]",
    "memory": "-M and -R rusage[mem=] in LSF_UNIT_FOR_LIMITS (rounded up; per slot with "
    "memory_per: slot)",
    "walltime": "-W [hours:]minutes (rounded up)",
    "gpus": "-gpu num=N (one host; error on several)",
    "nodes": "1: -R span[hosts=1]; more: -R span[ptile=tasks_per_node x cores]",
    "queue": "-q",
    "account": "-P (project)",
    "extra_directives": "#BSUB lines as given (also passed to bsub)",
    "directives_skip": "generated #BSUB lines left out",
    "extra_args": "bsub arguments",
    "tasks": "-n tasks x cores",
    "tasks_per_node": "-R span[ptile=tasks_per_node x cores]",
    "cores_per_task": "as cores",
    "gpus_per_node": "-gpu num=N (per host)",
    "gpus_per_task": "-gpu num=N/task",
    "memory_per_core": "-M and -R rusage[mem=] (times the slots of a host with memory_per: job)",
    "exclusive": "-x",
    "launcher": "mpirun/mpiexec -np $LSB_DJOB_NUMPROC / cores before the command; srun is an error",
    "qos": "error: LSF has no QOS (a service class is -sla in extra_args)",
    "constraint": "-R select[...] (& becomes &&, an or becomes a double bar)",
    "reservation": "-U",
    "mail_to": "-u",
    "mail_on": "begin: -B; end, fail: -N (one report at the end); requeue: error",
    "licenses": "-R rusage[name=count]",
    "priority": "-sp priority (1 up to the site's MAX_USER_PRIORITY); negative: error",
    "begin": "-b year:month:day:hour:minute (local time, rounded up to the minute)",
    "name_prefix": "-J PREFIXjf<token>-<id>-<name>",
}


def _q(text: str) -> str:
    """One directive word, quoted for the shell-like reading of ``#BSUB`` lines."""
    return shlex.quote(text)


def _slots(res: Resources) -> tuple[int, int, str | None]:
    """(slots in all, slots on each host, the span[] request) for a layout."""
    slots = res.total_cores
    if res.nodes == 1:
        return slots, slots, ("span[hosts=1]" if slots > 1 else None)
    if res.tasks_per_node is not None:
        per_host = res.tasks_per_node * res.cores
    elif res.tasks is not None and res.tasks % res.nodes == 0:
        per_host = res.tasks // res.nodes * res.cores
    else:
        raise SpecError(
            "resources.nodes",
            f"LSF places a job on {res.nodes} hosts only by a fixed number of slots per host "
            "(span[ptile]); give tasks_per_node, or tasks divisible by nodes",
        )
    return slots, per_host, f"span[ptile={per_host}]"


def _memory(res: Resources, settings: LsfSettings, per_host: int) -> str | None:
    unit = settings.unit_for_limits if settings.unit_for_limits != "auto" else "KB"
    per_slot = settings.memory_per == "slot"
    if res.memory_bytes is not None:
        amount = math.ceil(res.memory_bytes / per_host) if per_slot else res.memory_bytes
    elif res.memory_per_core_bytes is not None:
        amount = res.memory_per_core_bytes * (1 if per_slot else per_host)
    else:
        return None
    return format_lsf_memory(amount, unit)


def _gpus(res: Resources) -> str | None:
    if res.gpus and res.nodes > 1:
        raise SpecError(
            "resources.gpus",
            "LSF counts GPUs per host (-gpu num=N); use gpus_per_node for several hosts",
        )
    if res.gpus or res.gpus_per_node:
        return f"num={res.gpus or res.gpus_per_node}"
    if res.gpus_per_task:
        return f"num={res.gpus_per_task}/task"
    return None


def _select(constraint: str) -> str:
    if any(c in constraint for c in "[]*,"):
        raise SpecError(
            "resources.constraint",
            f"{shown(constraint)}: LSF's select[] takes names joined by & and | "
            "(and brackets); counts and lists are SLURM's",
        )
    text = re.sub(r"\s*&\s*", " && ", constraint)
    return re.sub(r"\s*\|\s*", " || ", text)


def _site(res: Resources, now: Callable[[], datetime]) -> list[str]:
    if res.qos is not None:
        raise SpecError(
            "resources.qos",
            "LSF has no quality of service; leave qos out (a service class is "
            "extra_args: ['-sla', 'NAME'])",
        )
    out = []
    if res.reservation is not None:
        out.append(f"-U {_q(res.reservation)}")
    if res.mail_to is not None:
        events = set(res.mail_on or ("end", "fail"))
        if "requeue" in events:
            raise SpecError("resources.mail_on", "LSF mails no requeue events; leave requeue out")
        out.append(f"-u {_q(res.mail_to)}")
        if events & {"begin", "all"}:
            out.append("-B")
        if events & {"end", "fail", "all"}:
            out.append("-N")
    if res.priority < 0:
        raise SpecError(
            "resources.priority",
            "LSF's user priority (-sp) runs from 1 up; a lower priority than the default "
            "has no relative form: leave it out or give 1 or more",
        )
    if res.priority:
        out.append(f"-sp {res.priority}")
    if res.begin is not None:
        out.append(f"-b {format_lsf_begin(res.begin, now())}")
    return out


def lsf_directives(
    spec: JobSpec, settings: LsfSettings | None = None, now: Callable[[], datetime] = datetime.now
) -> list[str]:
    """``#BSUB`` bodies for a spec's resources, in a fixed order (the job's name,
    array, output and dependencies are the submit command's: :mod:`.backend`).

    Raises:
        SpecError: a layout or option LSF cannot express (see :data:`MAPPING`).
    """
    settings = settings or LsfSettings()
    res = spec.resources
    slots, per_host, span = _slots(res)
    out = [f"-n {slots}"]
    # One -R with its sections in the classic order: every LSF version reads it (several
    # -R options are merged only by newer ones).
    requests = []
    if res.constraint is not None:
        requests.append(f"select[{_select(res.constraint)}]")
    memory = _memory(res, settings, per_host)
    if memory is not None:
        out.append(f"-M {memory}")
    usage = ([f"mem={memory}"] if memory is not None else []) + [
        "{}={}".format(*license_parts(text)) for text in res.licenses
    ]
    if usage:
        requests.append(f"rusage[{':'.join(usage)}]")
    if span:
        requests.append(span)
    if requests:
        out.append(f"-R {_q(' '.join(requests))}")
    if res.walltime_s is not None:
        out.append(f"-W {format_lsf_minutes(res.walltime_s)}")
    gpu = _gpus(res)
    if gpu is not None:
        out.append(f"-gpu {_q(gpu)}")
    if res.exclusive:
        out.append("-x")
    if res.queue:
        out.append(f"-q {_q(res.queue)}")
    if res.account:
        out.append(f"-P {_q(res.account)}")
    out += _site(res, now)
    export = spec.environment.export_env
    if export is not None:  # bsub's default is the submitter's environment (-env all)
        out.append("-env all" if export else "-env none")
    return out


def lsf_tasks(spec: JobSpec) -> str:
    """The number of tasks LSF gave the job, as a shell word: its slots per task."""
    cores = spec.resources.cores
    if cores == 1:
        return '"${LSB_DJOB_NUMPROC:-1}"'
    return f'"$((${{LSB_DJOB_NUMPROC:-{cores}}} / {cores}))"'


def script_options(script: str, prefix: str = "#BSUB") -> list[str]:
    """The ``bsub`` options of a job script's ``#BSUB`` lines, as ``bsub`` reads them
    from a script on its standard input (each line split like a shell would; up to the
    first line of code).

    >>> script_options("#!/bin/bash\\n#BSUB -n 2\\n#BSUB -R 'span[hosts=1]'\\necho\\n#BSUB -x")
    ['-n', '2', '-R', 'span[hosts=1]']
    """
    words: list[str] = []
    for line in script.splitlines()[1:]:
        if line.startswith(prefix + " "):
            words += shlex.split(line[len(prefix) :], comments=False)
        elif line.strip() and not line.startswith("#"):
            break
    return words


#: The dialect with the default settings.
LSF = Dialect(
    name="lsf",
    directive_prefix="#BSUB",
    index_expr="${LSB_JOBINDEX-}",
    once_guard=False,  # LSF requeues jobs (brequeue, REQUEUE_EXIT_VALUES): a rerun is legitimate
    directives=lsf_directives,
    task_count=lsf_tasks,
)


def lsf_dialect(settings: LsfSettings) -> Dialect:
    """The dialect with a site's settings (its unit, memory per job or slot)."""
    return dataclasses.replace(LSF, directives=functools.partial(lsf_directives, settings=settings))
