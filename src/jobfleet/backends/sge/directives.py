"""Grid Engine's script dialect (``#$`` directives) and its settings (section ``sge:``)."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobfleet.backends.command import CommandSettings
from jobfleet.errors import SpecError, shown
from jobfleet.nativeunits import format_sge_memory, format_sge_time
from jobfleet.resources import Resources, license_parts
from jobfleet.script import Dialect
from jobfleet.settings import as_bool, choice, name, option
from jobfleet.spec import JobSpec
from jobfleet.units import format_sge_begin, parse_interval

__all__ = ["MAPPING", "SGE", "SgeSettings", "sge_dialect", "sge_directives", "sge_tasks"]


def pe_template(value: Any, key: str) -> Any:
    """A PE name holding ``{slots_per_node}`` (e.g. ``mpi{slots_per_node}``)."""
    if not isinstance(value, str) or not re.fullmatch(
        r"[A-Za-z0-9_.-]*\{slots_per_node\}[A-Za-z0-9_.-]*", value
    ):
        raise SpecError(
            key,
            "expected a PE name with {slots_per_node} in it, e.g. 'mpi{slots_per_node}' "
            f"(a PE per slot count, allocation_rule that count), got {shown(value)}",
        )
    return value


def grace(value: Any, key: str) -> Any:
    """0 (none) or a time up to a day (``60s``, ``2m``)."""
    if value not in (0, "0", "0s"):
        try:
            parse_interval(value, key)
        except SpecError as exc:
            raise SpecError(key, f"{exc.message}; or 0 for none") from None
    return value


def grace_seconds(value: Any, key: str) -> float:
    return 0.0 if value in (0, "0", "0s") else parse_interval(value, key)


def consumable(value: Any, key: str) -> Any:
    """The ``consumable`` column of a complex (``qconf -sc``): YES (per slot) or JOB."""
    if value is True or (isinstance(value, str) and value.lower() in ("yes", "y")):
        return "yes"
    if isinstance(value, str) and value.lower() in ("job", "j"):
        return "job"
    raise SpecError(
        key,
        "expected the complex's consumable column as qconf -sc shows it: YES (Grid Engine "
        f"multiplies the request by the job's slots) or JOB (once per job); got {shown(value)}",
    )


@dataclass(frozen=True, slots=True)
class SgeSettings(CommandSettings):
    """Grid Engine knobs (configuration section ``sge:``).

    Attributes:
        parallel_environment: the PE that gives a job several slots on one host
            (allocation_rule ``$pe_slots``); every layout on one node uses it.
        mpi_parallel_environment: the PE of layouts over several hosts, with
            ``{slots_per_node}`` in its name: Grid Engine holds a job to a number
            of hosts only through a PE whose allocation_rule is that fixed number
            of slots per host, so a site defines one per count (``mpi8``, ``mpi16``).
        exclusive_resource: the boolean complex (relop EXCL) a site defines for
            jobs that want their hosts alone.
        memory_resource: ``h_vmem`` (an enforced limit, per slot: the job's memory
            is divided by its cores) or ``mem_free`` (a load value the host must
            have free, compared as is; measured on the live cluster).
        gpu_resource: the consumable a site uses for GPUs.
        gpu_consumable: that complex's ``consumable`` column: ``yes`` (Grid
            Engine's default; the request is per slot, so the job's GPUs are
            divided by its slots) or ``job`` (once per job, on the master host).
        license_consumable: the same for the licences' complexes.
        verify_requests: submit with ``-w e``, so a request no host could ever
            meet is refused at once instead of waiting for ever.
        walltime_grace_s: with a walltime, ``-l s_rt`` this long (at most a tenth of
            the walltime) before ``h_rt``: Grid Engine sends the job SIGUSR1 then, which
            ends a command that does not catch it, so that the epilogue and the scratch
            clean-up run before h_rt's SIGKILL. 0: no s_rt.
    """

    parallel_environment: str = option(
        "parallel_environment", "smp", "PE giving a job several slots on a host", parse=name
    )
    memory_resource: str = option(
        "memory_resource",
        "h_vmem",
        "h_vmem (enforced limit, per slot) or mem_free (free memory the host needs, whole job)",
        parse=choice("h_vmem", "mem_free"),
    )
    gpu_resource: str = option(
        "gpu_resource", "gpu", "the consumable this site uses for GPUs", parse=name
    )
    gpu_consumable: str = option(
        "gpu_consumable",
        "yes",
        "the GPU complex's consumable column (qconf -sc): YES (per slot: GPUs are divided "
        "by the slots) or JOB (once per job, one host)",
        parse=consumable,
    )
    license_consumable: str = option(
        "license_consumable",
        "yes",
        "the licence complexes' consumable column (qconf -sc): YES (per slot: counts are "
        "divided by the slots) or JOB (once per job)",
        parse=consumable,
    )
    mpi_parallel_environment: str = option(
        "mpi_parallel_environment",
        "mpi{slots_per_node}",
        "PE for layouts over several hosts; {slots_per_node} is tasks_per_node x cores "
        "(one PE per count, allocation_rule that count)",
        parse=pe_template,
    )
    exclusive_resource: str = option(
        "exclusive_resource",
        "exclusive",
        "the site's boolean EXCL complex for exclusive: true",
        parse=name,
    )
    verify_requests: bool = option(
        "verify_requests", True, "qsub -w e: refuse what could never run", parse=as_bool
    )
    walltime_grace_s: float = option(
        "walltime_grace",
        "60s",
        "-l s_rt this long (at most a tenth of the walltime) before h_rt: SIGUSR1 ends the "
        "command, the epilogue and clean-up run before h_rt's SIGKILL (0: none)",
        parse=grace,
        convert=grace_seconds,
    )


#: How each key of ``resources:`` reaches Grid Engine (read by docs and ``jobfleet options``).
MAPPING: dict[str, str] = {
    "cores": "slots per task: -pe <PE> tasks x cores",
    "memory": "-l h_vmem=memory / slots per host (or mem_free=memory)",
    "walltime": "-l h_rt=H:MM:SS, and s_rt sge.walltime_grace before it (SIGUSR1)",
    "gpus": "-l <gpu_resource>=N / slots (sge.gpu_consumable YES, the default: per slot) "
    "or N (JOB: one node only)",
    "nodes": "1: -pe <parallel_environment>; more: -pe <mpi_parallel_environment> "
    "(needs tasks_per_node)",
    "queue": "-q",
    "account": "-P (project)",
    "extra_directives": "#$ lines as given",
    "directives_skip": "generated #$ lines left out",
    "extra_args": "qsub arguments",
    "tasks": "slots: -pe <PE> tasks x cores (one node)",
    "tasks_per_node": "-pe <mpi_parallel_environment with slots_per_node> nodes x tasks x cores",
    "cores_per_task": "as cores",
    "gpus_per_node": "-l <gpu_resource>=N / slots per host (YES), or N on one node (JOB)",
    "gpus_per_task": "error: Grid Engine has no per-task GPUs",
    "memory_per_core": "-l h_vmem=memory_per_core (or mem_free=that x slots per host)",
    "exclusive": "-l <exclusive_resource>=true (a site's EXCL complex)",
    "launcher": "mpirun/mpiexec -np $NSLOTS / cores before the command; srun is an error",
    "qos": "error: Grid Engine has no QOS",
    "constraint": "error: request the site's complex in extra_directives ('-l NAME=true')",
    "reservation": "-ar ID (an advance reservation's number)",
    "mail_to": "-M",
    "mail_on": "-m b/e/a (begin, end, fail and requeue: a)",
    "licenses": "-l name=count / slots (sge.license_consumable YES, the default: per slot) "
    "or count (JOB)",
    "priority": "-p priority (raising it needs an operator)",
    "begin": "-a CCYYMMDDhhmm.SS (local time; a delay counts from submission)",
    "name_prefix": "-N PREFIXjf<token>-<id>-<name>",
}

_MAIL_FLAGS = {"begin": "b", "end": "e", "fail": "a", "requeue": "a", "all": "bea"}


def _slots(res: Resources, settings: SgeSettings) -> tuple[str | None, int, int]:
    """(PE or None, slots in all, slots on each host): one slot per core of each task."""
    slots = res.total_cores
    if res.nodes == 1:
        return (settings.parallel_environment if slots > 1 else None), slots, slots
    if res.tasks_per_node is None:
        # Only a PE with a fixed number of slots per host holds a job to a number of hosts.
        if res.tasks is not None:
            fix = "give tasks_per_node instead of tasks"
            how = "by a total of tasks"
        else:
            fix = (
                "add tasks_per_node (tasks on each host, e.g. "
                f"nodes: {res.nodes}, tasks_per_node: 1)"
            )
            how = "without the tasks on each host"
        raise SpecError(
            "resources.nodes", f"Grid Engine cannot hold a job to {res.nodes} hosts {how}; {fix}"
        )
    per_node = res.tasks_per_node * res.cores
    return settings.mpi_parallel_environment.format(slots_per_node=per_node), slots, per_node


def _requests(res: Resources, settings: SgeSettings, slots: int, per_node: int) -> list[str]:
    """The ``-l`` requests, in a fixed order."""
    out = []
    if res.walltime_s is not None:
        out.append(f"h_rt={format_sge_time(res.walltime_s)}")
    # h_vmem is a per-slot limit (Grid Engine multiplies it by the slots);
    # mem_free, a load value, is compared with the host's free memory as is.
    per_slot = settings.memory_resource == "h_vmem"
    if res.memory_bytes is not None:
        memory = format_sge_memory(res.memory_bytes, per_node if per_slot else 1)
        out.append(f"{settings.memory_resource}={memory}")
    if res.memory_per_core_bytes is not None:
        memory = format_sge_memory(res.memory_per_core_bytes * (1 if per_slot else per_node))
        out.append(f"{settings.memory_resource}={memory}")
    if res.gpus_per_task:
        raise SpecError(
            "resources.gpus_per_task", "Grid Engine has no GPUs per task; ask for gpus (per job)"
        )
    gpus = res.gpus or res.gpus_per_node
    if gpus:
        field = "resources.gpus" if res.gpus else "resources.gpus_per_node"
        if settings.gpu_consumable == "job":
            if res.nodes > 1:
                raise SpecError(
                    field,
                    "Grid Engine takes a consumable JOB from the master host only, so GPUs "
                    f"on {res.nodes} hosts cannot be asked for; use one node (or, if the "
                    "site's GPU complex is consumable YES, set sge.gpu_consumable: YES)",
                )
            out.append(f"{settings.gpu_resource}={gpus}")
        else:
            over = slots if res.gpus else per_node
            each = _per_slot(gpus, over, field, "GPUs", "sge.gpu_consumable")
            out.append(f"{settings.gpu_resource}={each}")
    if res.exclusive:
        out.append(f"{settings.exclusive_resource}=true")
    for text in res.licenses:
        lic, count = license_parts(text)
        if "@" in lic:
            raise SpecError(
                "resources.licenses",
                f"{lic!r} is a SLURM remote license (name@server); Grid Engine's licenses "
                "are consumable complexes: give the complex's name",
            )
        if settings.license_consumable == "yes":
            count = _per_slot(
                count, slots, "resources.licenses", f"{lic} licences", "sge.license_consumable"
            )
        out.append(f"{lic}={count}")
    # h_rt's end is a SIGKILL: s_rt's SIGUSR1 comes first, leaving the job script
    # time to run the epilogue and remove its scratch (map_failed: a timeout). Last,
    # so that the requests before it read as they did without it.
    if res.walltime_s is not None:
        early = int(min(settings.walltime_grace_s, res.walltime_s / 10))
        if early >= 1:
            out.append(f"s_rt={format_sge_time(res.walltime_s - early)}")
    return out


def _per_slot(count: int, slots: int, field: str, what: str, setting: str) -> int:
    """A whole job's count of a consumable YES, as Grid Engine wants it: per slot."""
    if count % slots:
        raise SpecError(
            field,
            f"{count} {what} for a job of {slots} slots: Grid Engine multiplies a consumable "
            f"YES by the slots, and {count} is not a multiple of {slots}; ask for a multiple "
            f"of {slots} (or change cores or tasks), or set {setting}: JOB if the site's "
            "complex is consumable JOB (qconf -sc)",
        )
    return count // slots


def _site(res: Resources, now: Callable[[], datetime]) -> list[str]:
    if res.qos is not None:
        raise SpecError("resources.qos", "Grid Engine has no quality of service; leave qos out")
    if res.constraint is not None:
        raise SpecError(
            "resources.constraint",
            "Grid Engine has no node features; request the site's complex instead "
            "(extra_directives: ['-l NAME=true'])",
        )
    out = []
    if res.reservation is not None:
        if not res.reservation.isdigit():
            raise SpecError(
                "resources.reservation",
                f"Grid Engine reservations are numbers (qrsub prints one), got {res.reservation!r}",
            )
        out.append(f"-ar {res.reservation}")
    if res.mail_to is not None:
        flags = "".join(_MAIL_FLAGS[e] for e in res.mail_on or ("end", "fail"))
        out += [f"-M {res.mail_to}", "-m " + "".join(f for f in "bea" if f in flags)]
    if res.priority:
        out.append(f"-p {res.priority}")
    if res.begin is not None:
        out.append(f"-a {format_sge_begin(res.begin, now())}")
    return out


def sge_directives(
    spec: JobSpec, settings: SgeSettings | None = None, now: Callable[[], datetime] = datetime.now
) -> list[str]:
    """``#$`` bodies for a spec's resources, in a fixed order.

    Raises:
        SpecError: a layout or option Grid Engine cannot express (see :data:`MAPPING`).
    """
    settings = settings or SgeSettings()
    res = spec.resources
    out = ["-S /bin/bash"]  # a POSIX script; bash, which every cluster has
    if spec.environment.export_env is not False:
        out.append("-V")  # the submitter's environment, as sbatch does
    pe, slots, per_node = _slots(res, settings)
    if pe is not None:
        out.append(f"-pe {pe} {slots}")
    requests = _requests(res, settings, slots, per_node)
    if requests:
        out.append("-l " + ",".join(requests))
    if res.queue:
        out.append(f"-q {res.queue}")
    if res.account:
        out.append(f"-P {res.account}")
    out += _site(res, now)
    if spec.array is not None:
        ((start, stop, step),) = spec.array.ranges() or [(0, 0, 1)]
        out.append(f"-t {start}-{stop}:{step}")
        if spec.array.max_concurrent:
            out.append(f"-tc {spec.array.max_concurrent}")
    return out


def sge_tasks(spec: JobSpec) -> str:
    """The number of tasks Grid Engine gave the job, as a shell word: its slots per task."""
    cores = spec.resources.cores
    return '"${NSLOTS:-1}"' if cores == 1 else f'"$((${{NSLOTS:-{cores}}} / {cores}))"'


#: The dialect with the default settings.
SGE = Dialect(
    name="sge",
    directive_prefix="#$",
    # Grid Engine sets SGE_TASK_ID to "undefined" for a job that is no array.
    index_expr="${SGE_TASK_ID-}",
    once_guard=False,  # Grid Engine may reschedule a job: a rerun is legitimate
    directives=sge_directives,
    reserved_exits=(99, 100),  # 99: reschedule; 100: error state (sge_status(5))
    task_count=sge_tasks,
)


def sge_dialect(settings: SgeSettings) -> Dialect:
    """The dialect with a site's settings (its PE, memory and GPU resources)."""
    return dataclasses.replace(SGE, directives=functools.partial(sge_directives, settings=settings))
