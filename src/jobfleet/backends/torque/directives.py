"""Torque's script dialect (``#PBS`` directives, Torque's resources) and its settings
(section ``torque:``).

Torque asks for nodes and processors per node (``-l nodes=2:ppn=8``) and for the whole
job's memory (``-l mem``). See docs/torque.md for the table, docs/torque-notes.md for the
facts behind it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jobfleet.backends.command import CommandSettings
from jobfleet.backends.pbs.directives import (
    chunks,
    features,
    format_pbs_memory,
    format_pbs_time,
    gpus_per_chunk,
    mail_points,
    plain_word,
    priority,
)
from jobfleet.errors import SpecError
from jobfleet.resources import Resources
from jobfleet.script import Dialect
from jobfleet.settings import as_bool, option, whole
from jobfleet.spec import JobSpec
from jobfleet.units import format_sge_begin

__all__ = [
    "MAPPING",
    "TORQUE",
    "TorqueSettings",
    "array_on_argv",
    "torque_dialect",
    "torque_directives",
]

#: The longest ``-t`` list a ``#PBS`` line holds: qsub reads the script's lines with
#: fgets(MAX_LINE_LEN = 32768) (cmds.h, qsub_functions.c): a longer line is read as two,
#: and the second, no directive, ends the directives. Longer lists go on qsub's argv.
SCRIPT_LIST_MAX = 32_000
#: The longest list one argument holds (Linux's MAX_ARG_STRLEN is 128 KiB).
ARGV_LIST_MAX = 120_000


@dataclass(frozen=True, slots=True)
class TorqueSettings(CommandSettings):
    """Torque knobs (configuration section ``torque:``).

    Attributes:
        name_limit: the longest job name the server takes: qsub takes 256 characters
            (Torque 2.5 to 6.1); some sites' submit filters or older servers take 15.
        gpus: the server was built with GPU support (``nodes=N:ppn=P:gpus=G``).
        xml_status: read ``qstat -x`` (XML) first; false reads the text form only.
        exit_code_canceled_job: the server's ``exit_code_canceled_job`` (qmgr), the
            exit status Torque gives every deleted job; 0: not set.
    """

    name_limit: int = option(
        "name_limit", 256, "longest job name the server takes", parse=whole(15, 4096)
    )
    gpus: bool = option("gpus", True, "the server takes nodes=N:ppn=P:gpus=G", parse=as_bool)
    xml_status: bool = option(
        "xml_status", True, "read qstat -x (XML) first; false: qstat -f text only", parse=as_bool
    )
    exit_code_canceled_job: int = option(
        "exit_code_canceled_job",
        0,
        "the server's exit_code_canceled_job: the exit status of deleted jobs (0: not set)",
        parse=whole(-(2**31)),
    )


#: How each key of ``resources:`` reaches Torque (read by docs and ``jobfleet options``).
MAPPING: dict[str, str] = {
    "cores": "ppn = tasks on the node x cores",
    "memory": "-l mem = memory x nodes (Torque's mem is the whole job's; MiB rounded up)",
    "walltime": "-l walltime=HH:MM:SS",
    "gpus": ":gpus=N in the nodes request (split evenly over several nodes)",
    "nodes": "-l nodes=N:ppn=P (uneven tasks: a second node group, a:ppn=x+b:ppn=y)",
    "queue": "-q",
    "account": "-A",
    "extra_directives": "#PBS lines as given",
    "directives_skip": "generated #PBS lines left out",
    "extra_args": "qsub arguments",
    "tasks": "ppn over the nodes",
    "tasks_per_node": "ppn = tasks_per_node x cores",
    "cores_per_task": "as cores",
    "gpus_per_node": ":gpus=N in the nodes request",
    "gpus_per_task": ":gpus = tasks on the node x N",
    "memory_per_core": "-l mem = memory_per_core x all cores (the whole job's)",
    "exclusive": "-n (node exclusive)",
    "launcher": "mpirun/mpiexec -np tasks before the command; srun is an error",
    "qos": "error: Torque has no QOS (Moab's -l qos is not Torque's)",
    "constraint": ":feature node properties in the nodes request (a&b)",
    "reservation": "error: Torque has no reservations (Moab's are not Torque's)",
    "mail_to": "-M",
    "mail_on": "-m b/e/a (begin, end, fail and requeue: a)",
    "licenses": "error: Torque has no licenses (Moab's gres are not Torque's)",
    "priority": "-p priority (-1024..1023)",
    "begin": "-a CCYYMMDDhhmm.SS (local time; a delay counts from submission)",
    "name_prefix": "-N PREFIXjf<token>-<id>-<name> (cut to the name limit)",
}


def _nodes(res: Resources, settings: TorqueSettings) -> str:
    groups = []
    for count, tasks in chunks(res):
        group = [str(count), f"ppn={tasks * res.cores}"]
        gpus = gpus_per_chunk(res, tasks)
        if gpus:
            if not settings.gpus:
                raise SpecError(
                    "resources.gpus", "this Torque server has no GPU support (torque.gpus)"
                )
            group.append(f"gpus={gpus}")
        group += features(res)
        groups.append(":".join(group))
    return "+".join(groups)


def _refused(res: Resources) -> None:
    for field, value, why in (
        ("qos", res.qos, "Torque has no quality of service"),
        ("reservation", res.reservation, "Torque has no advance reservations"),
        ("licenses", res.licenses, "Torque has no license counting"),
    ):
        if value:
            raise SpecError(
                f"resources.{field}",
                f"{why} (a Moab scheduler's options go in extra_directives)",
            )


def torque_directives(
    spec: JobSpec,
    settings: TorqueSettings | None = None,
    now: Callable[[], datetime] = datetime.now,
) -> list[str]:
    """``#PBS`` bodies for a spec's resources, in Torque's words, in a fixed order.

    Raises:
        SpecError: an option Torque cannot express (see :data:`MAPPING`).
    """
    settings = settings or TorqueSettings()
    res = spec.resources
    _refused(res)
    out = ["-S /bin/bash"]
    if spec.environment.export_env is not False:
        out.append("-V")
    out.append(f"-l nodes={_nodes(res, settings)}")
    if res.memory_bytes is not None:
        out.append(f"-l mem={format_pbs_memory(res.memory_bytes * res.nodes)}")
    if res.memory_per_core_bytes is not None:
        out.append(f"-l mem={format_pbs_memory(res.memory_per_core_bytes * res.total_cores)}")
    if res.walltime_s is not None:
        out.append(f"-l walltime={format_pbs_time(res.walltime_s)}")
    if res.exclusive:
        out.append("-n")
    if res.queue is not None:
        out.append(f"-q {plain_word('resources.queue', res.queue, 'queue')}")
    if res.account is not None:
        out.append(f"-A {plain_word('resources.account', res.account, 'account')}")
    out += mail_points(res)
    out += priority(res)
    if res.begin is not None:
        out.append(f"-a {format_sge_begin(res.begin, now())}")
    if spec.array is not None and array_on_argv(spec) is None:
        out.append(f"-t {torque_range(spec)}")
    return out


def array_on_argv(spec: JobSpec) -> str | None:
    """The ``-t`` list when it is too long for a ``#PBS`` line (qsub takes it on its
    command line instead); None for a short one, or no array.

    Raises:
        SpecError: a list too long for one argument too (a stepped array of very many
            elements: Torque has no steps, so each element is listed).
    """
    if spec.array is None:
        return None
    text = torque_range(spec)
    if len(text) <= SCRIPT_LIST_MAX:
        return None
    if len(text) > ARGV_LIST_MAX:
        raise SpecError(
            "array",
            f"Torque has no array steps: this array lists {len(spec.array.indices)} "
            f"indices one by one, {len(text)} characters, more than qsub's command line "
            f"takes in one argument ({ARGV_LIST_MAX}); use a range without a step, or "
            "several arrays",
        )
    return text


def torque_range(spec: JobSpec) -> str:
    """``-t``'s ``1-5,7,9%2``: ranges and single ids (Torque has no steps)."""
    indices = spec.array.indices if spec.array is not None else ()
    parts: list[str] = []
    start = prev = None
    for index in (*indices, None):
        if prev is not None and index == prev + 1:
            prev = index
            continue
        if start is not None and prev is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = index
    text = ",".join(parts)
    limit = spec.array.max_concurrent if spec.array is not None else None
    return f"{text}%{limit}" if limit else text


def torque_tasks(spec: JobSpec) -> str:
    """The number of tasks Torque gave the job (``PBS_NP`` counts processors)."""
    cores = spec.resources.cores
    total = spec.resources.total_tasks
    return (
        f'"${{PBS_NP:-{total}}}"'
        if cores == 1
        else f'"$((${{PBS_NP:-{total * cores}}} / {cores}))"'
    )


#: The dialect with the default settings.
TORQUE = Dialect(
    name="torque",
    directive_prefix="#PBS",
    index_expr="${PBS_ARRAYID-}",
    once_guard=False,  # Torque requeues jobs: a rerun is legitimate
    directives=torque_directives,
    task_count=torque_tasks,
)


def torque_dialect(settings: TorqueSettings) -> Dialect:
    """The dialect with a site's settings."""
    return dataclasses.replace(
        TORQUE, directives=functools.partial(torque_directives, settings=settings)
    )
