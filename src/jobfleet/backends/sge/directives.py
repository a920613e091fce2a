"""Grid Engine's script dialect (``#$`` directives) and its settings (section ``sge:``)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from jobfleet.backends.command import CommandSettings
from jobfleet.script import Dialect
from jobfleet.settings import as_bool, choice, name, option
from jobfleet.spec import JobSpec
from jobfleet.units import format_sge_memory, format_sge_time

__all__ = ["SGE", "SgeSettings", "sge_dialect", "sge_directives"]


@dataclass(frozen=True, slots=True)
class SgeSettings(CommandSettings):
    """Grid Engine knobs (configuration section ``sge:``).

    Attributes:
        parallel_environment: the PE that gives a job several slots on one host.
        memory_resource: ``h_vmem`` (an enforced limit, per slot: the job's memory
            is divided by its cores) or ``mem_free`` (a load value the host must
            have free, compared as is; measured on the live cluster).
        gpu_resource: the consumable a site uses for GPUs.
        verify_requests: submit with ``-w e``, so a request no host could ever
            meet is refused at once instead of waiting for ever.
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
    verify_requests: bool = option(
        "verify_requests", True, "qsub -w e: refuse what could never run", parse=as_bool
    )


def sge_directives(spec: JobSpec, settings: SgeSettings | None = None) -> list[str]:
    """``#$`` bodies for a spec's resources, in a fixed order."""
    settings = settings or SgeSettings()
    res = spec.resources
    out = ["-S /bin/bash"]  # a POSIX script; bash, which every cluster has
    if spec.environment.export_env is not False:
        out.append("-V")  # the submitter's environment, as sbatch does
    if res.cores > 1:
        out.append(f"-pe {settings.parallel_environment} {res.cores}")
    resources = []
    if res.walltime_s is not None:
        resources.append(f"h_rt={format_sge_time(res.walltime_s)}")
    if res.memory_bytes is not None:
        # h_vmem is a per-slot limit (Grid Engine multiplies it by the slots);
        # mem_free, a load value, is compared with the host's free memory as is.
        slots = res.cores if settings.memory_resource == "h_vmem" else 1
        resources.append(f"{settings.memory_resource}={format_sge_memory(res.memory_bytes, slots)}")
    if res.gpus:
        resources.append(f"{settings.gpu_resource}={res.gpus}")
    if resources:
        out.append("-l " + ",".join(resources))
    if res.queue:
        out.append(f"-q {res.queue}")
    if res.account:
        out.append(f"-P {res.account}")
    if spec.array is not None:
        ((start, stop, step),) = spec.array.ranges() or [(0, 0, 1)]
        out.append(f"-t {start}-{stop}:{step}")
        if spec.array.max_concurrent:
            out.append(f"-tc {spec.array.max_concurrent}")
    return out


#: The dialect with the default settings.
SGE = Dialect(
    name="sge",
    directive_prefix="#$",
    # Grid Engine sets SGE_TASK_ID to "undefined" for a job that is no array.
    index_expr="${SGE_TASK_ID-}",
    once_guard=False,  # Grid Engine may reschedule a job: a rerun is legitimate
    directives=sge_directives,
    reserved_exits=(99, 100),  # 99: reschedule; 100: error state (sge_status(5))
)


def sge_dialect(settings: SgeSettings) -> Dialect:
    """The dialect with a site's settings (its PE, memory and GPU resources)."""
    return dataclasses.replace(SGE, directives=functools.partial(sge_directives, settings=settings))
