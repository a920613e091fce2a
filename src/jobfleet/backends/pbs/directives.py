"""PBS Pro / OpenPBS's script dialect (``#PBS`` directives) and its settings (section ``pbs:``).

PBS asks for resources in chunks (``-l select=2:ncpus=8:mpiprocs=4:mem=16gb``): one chunk per
node here, placed on different hosts (``-l place=scatter``). See docs/pbs.md for the table,
docs/pbs-notes.md for the facts behind it.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jobfleet.backends.command import CommandSettings
from jobfleet.errors import SpecError
from jobfleet.resources import Resources, license_parts
from jobfleet.script import Dialect
from jobfleet.settings import as_bool, choice, name, option, whole
from jobfleet.spec import JobSpec
from jobfleet.units import format_sge_begin

__all__ = [
    "MAPPING",
    "PBS",
    "PbsSettings",
    "chunks",
    "features",
    "format_pbs_memory",
    "format_pbs_time",
    "gpus_per_chunk",
    "mail_points",
    "pbs_dialect",
    "pbs_directives",
    "plain_word",
    "priority",
]

#: A name a directive holds as it is (queue, account, feature): no spaces, quotes or ``,:=+``.
_WORD = re.compile(r"[A-Za-z0-9_.@/-]+")
#: PBS's ``-p`` range (qsub(1B)); jobfleet's own is -1023..1024.
PRIORITY_LIMITS = (-1024, 1023)


@dataclass(frozen=True, slots=True)
class PbsSettings(CommandSettings):
    """PBS Pro / OpenPBS knobs (configuration section ``pbs:``).

    Attributes:
        max_run_subjobs: the server takes ``-J a-b%N`` (OpenPBS 22.05 and later); with
            false an array's ``max_concurrent`` is refused instead of being ignored.
        account_option: ``A`` (``-A``, the account string) or ``P`` (``-P``, PBS's
            project), whichever the site charges by.
        gpu_resource: the chunk resource a site counts GPUs in (``ngpus``).
        status_format: ``auto`` reads ``qstat -F json`` and falls back to the text form
            (and keeps to it) when the JSON cannot be read; ``text`` never asks for JSON.
        name_limit: the longest job name the server takes (230 on PBS Pro and OpenPBS;
            older PBS servers had 15).
    """

    max_run_subjobs: bool = option(
        "max_run_subjobs",
        True,
        "the server takes -J a-b%N (OpenPBS 22.05+); false: refuse array throttles",
        parse=as_bool,
    )
    account_option: str = option(
        "account_option", "A", "A (-A account string) or P (-P project)", parse=choice("A", "P")
    )
    gpu_resource: str = option(
        "gpu_resource", "ngpus", "the chunk resource counting GPUs", parse=name
    )
    status_format: str = option(
        "status_format",
        "auto",
        "auto (qstat -F json, text when it is unreadable) or text",
        parse=choice("auto", "text"),
    )
    name_limit: int = option(
        "name_limit", 230, "longest job name the server takes", parse=whole(15, 4096)
    )


#: How each key of ``resources:`` reaches PBS (read by docs and ``jobfleet options``).
MAPPING: dict[str, str] = {
    "cores": "ncpus per task, in each chunk: ncpus = tasks on the node x cores",
    "memory": "mem in each chunk (per node; MiB rounded up, 'mb')",
    "walltime": "-l walltime=HH:MM:SS",
    "gpus": "<gpu_resource> in the chunk (split evenly over several nodes, else an error)",
    "nodes": "-l select=N:... one chunk per node, -l place=scatter (pack on one node)",
    "queue": "-q",
    "account": "-A (or -P with account_option: P)",
    "extra_directives": "#PBS lines as given",
    "directives_skip": "generated #PBS lines left out",
    "extra_args": "qsub arguments",
    "tasks": "mpiprocs in the chunks (spread over the nodes, uneven ones as a second chunk)",
    "tasks_per_node": "mpiprocs in each chunk",
    "cores_per_task": "as cores",
    "gpus_per_node": "<gpu_resource>=N in each chunk",
    "gpus_per_task": "<gpu_resource> = tasks in the chunk x N",
    "memory_per_core": "mem in each chunk = memory_per_core x ncpus",
    "exclusive": "-l place=...:excl",
    "launcher": "mpirun/mpiexec -np tasks before the command; srun is an error",
    "qos": "error: PBS has no QOS",
    "constraint": "NAME=True in each chunk per feature (a&b); other expressions are errors",
    "reservation": "-q <reservation queue> (R123 / S123, or its name); not with queue",
    "mail_to": "-M",
    "mail_on": "-m b/e/a (begin, end, fail and requeue: a)",
    "licenses": "-l name=count (server-level consumable resources)",
    "priority": "-p priority (-1024..1023)",
    "begin": "-a CCYYMMDDhhmm.SS (local time; a delay counts from submission)",
    "name_prefix": "-N PREFIXjf<token>-<id>-<name> (cut to the name limit)",
}

_MAIL_FLAGS = {"begin": "b", "end": "e", "fail": "a", "requeue": "a", "all": "bea"}


def format_pbs_time(seconds: int) -> str:
    """PBS's walltime ``HH:MM:SS`` (hours unbounded).

    >>> format_pbs_time(90), format_pbs_time(90061)
    ('00:01:30', '25:01:01')
    """
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def format_pbs_memory(nbytes: int) -> str:
    """A PBS size: whole MiB rounded up, PBS's ``mb`` (1024-based).

    >>> format_pbs_memory(2**30), format_pbs_memory(2**20 + 1)
    ('1024mb', '2mb')
    """
    return f"{math.ceil(nbytes / 2**20)}mb"


def plain_word(field: str, value: str, what: str) -> str:
    """``value`` if a directive can hold it as it is, else a SpecError naming ``field``."""
    if not _WORD.fullmatch(value):
        raise SpecError(field, f"{value!r} cannot be a {what} name here (letters, digits, _.@/-)")
    return value


def chunks(res: Resources) -> list[tuple[int, int]]:
    """(nodes, tasks on each) groups: one group when the tasks divide evenly, else the
    nodes with one task more first (PBS and Torque both take ``a:...+b:...``)."""
    if res.nodes == 1:
        return [(1, res.total_tasks)]
    if res.tasks_per_node is not None:
        return [(res.nodes, res.tasks_per_node)]
    per, more = divmod(res.total_tasks, res.nodes)
    return [(n, t) for n, t in ((more, per + 1), (res.nodes - more, per)) if n]


def gpus_per_chunk(res: Resources, tasks: int) -> int:
    """GPUs each node's chunk asks for (0: none)."""
    if res.gpus_per_task:
        return res.gpus_per_task * tasks
    if res.gpus_per_node:
        return res.gpus_per_node
    if res.gpus and res.gpus % res.nodes:
        raise SpecError(
            "resources.gpus",
            f"{res.gpus} GPUs cannot be split evenly over {res.nodes} nodes; use gpus_per_node",
        )
    return res.gpus // res.nodes


def features(res: Resources) -> list[str]:
    """The node features of ``constraint`` (``a&b``); other expressions are errors."""
    if res.constraint is None:
        return []
    names = res.constraint.split("&")
    if not all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", n) for n in names):
        raise SpecError(
            "resources.constraint",
            f"{res.constraint!r}: PBS and Torque take node features joined by & "
            "(e.g. 'haswell&ib'); write other expressions in extra_directives",
        )
    return names


def _select(res: Resources, settings: PbsSettings) -> str:
    parts = []
    for count, tasks in chunks(res):
        chunk = [str(count), f"ncpus={tasks * res.cores}", f"mpiprocs={tasks}"]
        if res.memory_bytes is not None:
            chunk.append(f"mem={format_pbs_memory(res.memory_bytes)}")
        if res.memory_per_core_bytes is not None:
            total = res.memory_per_core_bytes * tasks * res.cores
            chunk.append(f"mem={format_pbs_memory(total)}")
        gpus = gpus_per_chunk(res, tasks)
        if gpus:
            chunk.append(f"{settings.gpu_resource}={gpus}")
        chunk += [f"{feature}=True" for feature in features(res)]
        parts.append(":".join(chunk))
    return "+".join(parts)


def mail_points(res: Resources) -> list[str]:
    """``-M`` and ``-m`` (PBS and Torque share the letters b, e, a)."""
    if res.mail_to is None:
        return []
    flags = "".join(_MAIL_FLAGS[e] for e in res.mail_on or ("end", "fail"))
    return [f"-M {res.mail_to}", "-m " + "".join(f for f in "bea" if f in flags)]


def priority(res: Resources) -> list[str]:
    """``-p`` within PBS's range, which ends one below jobfleet's."""
    low, high = PRIORITY_LIMITS
    if not low <= res.priority <= high:
        raise SpecError("resources.priority", f"PBS takes {low}..{high}, got {res.priority}")
    return [f"-p {res.priority}"] if res.priority else []


def _site(res: Resources, settings: PbsSettings, now: Callable[[], datetime]) -> list[str]:
    if res.qos is not None:
        raise SpecError("resources.qos", "PBS has no quality of service; leave qos out")
    out = []
    queue = res.queue
    if res.reservation is not None:
        if queue is not None:
            raise SpecError(
                "resources.reservation",
                "a PBS reservation is a queue of its own (R123): give it or queue, not both",
            )
        queue = plain_word("resources.reservation", res.reservation, "reservation")
    if queue is not None:
        out.append(f"-q {plain_word('resources.queue', queue, 'queue')}")
    if res.account is not None:
        word = plain_word("resources.account", res.account, "account")
        out.append(f"-{settings.account_option} {word}")
    out += mail_points(res)
    out += priority(res)
    if res.begin is not None:
        out.append(f"-a {format_sge_begin(res.begin, now())}")
    return out


def pbs_directives(
    spec: JobSpec, settings: PbsSettings | None = None, now: Callable[[], datetime] = datetime.now
) -> list[str]:
    """``#PBS`` bodies for a spec's resources, in a fixed order.

    Raises:
        SpecError: an option PBS cannot express (see :data:`MAPPING`).
    """
    settings = settings or PbsSettings()
    res = spec.resources
    out = ["-S /bin/bash"]
    if spec.environment.export_env is not False:
        out.append("-V")
    out.append(f"-l select={_select(res, settings)}")
    place = "pack" if res.nodes == 1 else "scatter"
    out.append(f"-l place={place}:excl" if res.exclusive else f"-l place={place}")
    if res.walltime_s is not None:
        out.append(f"-l walltime={format_pbs_time(res.walltime_s)}")
    out += ["-l {}={}".format(*license_parts(text)) for text in res.licenses]
    out += _site(res, settings, now)
    if spec.array is not None:
        out.append(f"-J {pbs_range(spec, settings)}")
    return out


def pbs_range(spec: JobSpec, settings: PbsSettings) -> str:
    """``-J``'s ``X-Y[:Z][%N]``: one range of at least two indices (chk_Jrange)."""
    indices = spec.array.indices if spec.array is not None else ()
    if len(indices) < 2:
        raise SpecError(
            "array", "PBS refuses an array of a single index (-J 5); submit a single job"
        )
    start, stop, step = indices[0], indices[-1], indices[1] - indices[0]
    if any(b - a != step for a, b in itertools.pairwise(indices)):
        raise SpecError("array", "PBS takes one range a-b[:step] per array, not a list")
    text = f"{start}-{stop}" if step == 1 else f"{start}-{stop}:{step}"
    if spec.array is not None and spec.array.max_concurrent:
        if not settings.max_run_subjobs:
            raise SpecError(
                "array.max_concurrent",
                "this PBS server takes no -J a-b%N (OpenPBS 22.05+ does); leave the "
                "limit out, or set pbs.max_run_subjobs: true if it does",
            )
        text += f"%{spec.array.max_concurrent}"
    return text


#: The dialect with the default settings.
PBS = Dialect(
    name="pbs",
    directive_prefix="#PBS",
    index_expr="${PBS_ARRAY_INDEX-}",
    once_guard=False,  # PBS reruns jobs (node failure, qrerun): a rerun is legitimate
    directives=pbs_directives,
)


def pbs_dialect(settings: PbsSettings) -> Dialect:
    """The dialect with a site's settings."""
    return dataclasses.replace(PBS, directives=functools.partial(pbs_directives, settings=settings))
