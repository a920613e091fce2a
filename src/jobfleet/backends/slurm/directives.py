"""SLURM's script dialect (``#SBATCH`` directives) and its settings (section ``slurm:``)."""

from __future__ import annotations

from dataclasses import dataclass

from jobfleet.backends.command import CommandSettings
from jobfleet.script import Dialect
from jobfleet.settings import as_bool, option
from jobfleet.spec import JobSpec
from jobfleet.units import format_slurm_memory, format_slurm_time

__all__ = ["SLURM", "SlurmSettings", "slurm_directives"]


@dataclass(frozen=True, slots=True)
class SlurmSettings(CommandSettings):
    """SLURM knobs (configuration section ``slurm:``).

    Attributes:
        kill_invalid_dependents: submit with ``--kill-on-invalid-dep=yes``, so a job
            whose dependency can never be met is cancelled rather than pending for ever.
    """

    kill_invalid_dependents: bool = option(
        "kill_invalid_dependents",
        True,
        "cancel a job whose dependency can never be met (--kill-on-invalid-dep)",
        parse=as_bool,
    )


def slurm_directives(spec: JobSpec) -> list[str]:
    """``#SBATCH`` bodies for a spec's resources, in a fixed order."""
    res = spec.resources
    out = [f"--cpus-per-task={res.cores}"]
    if res.nodes != 1:
        out.append(f"--nodes={res.nodes}")
    if res.memory_bytes is not None:
        out.append(f"--mem={format_slurm_memory(res.memory_bytes)}")
    if res.walltime_s is not None:
        out.append(f"--time={format_slurm_time(res.walltime_s)}")
    if res.gpus:
        out.append(f"--gres=gpu:{res.gpus}")
    if res.queue:
        out.append(f"--partition={res.queue}")
    if res.account:
        out.append(f"--account={res.account}")
    if spec.array is not None:
        out.append(f"--array={spec.array.to_text()}")
    # None keeps sbatch's default (ALL, unless the site's SBATCH_EXPORT says otherwise).
    export = spec.environment.export_env
    if export is not None:
        out.append("--export=ALL" if export else "--export=NONE")
    return out


SLURM = Dialect(
    name="slurm",
    directive_prefix="#SBATCH",
    index_expr="${SLURM_ARRAY_TASK_ID-}",
    once_guard=False,  # SLURM requeues jobs on node failure: a rerun is legitimate
    directives=slurm_directives,
)
