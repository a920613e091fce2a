"""SLURM's script dialect (``#SBATCH`` directives) and its settings (section ``slurm:``)."""

from __future__ import annotations

from dataclasses import dataclass

from jobfleet.backends.command import CommandSettings
from jobfleet.nativeunits import format_slurm_memory, format_slurm_time
from jobfleet.resources import Resources, license_parts
from jobfleet.script import Dialect
from jobfleet.settings import as_bool, option
from jobfleet.spec import JobSpec
from jobfleet.units import format_slurm_begin

__all__ = [
    "MAPPING",
    "SLURM",
    "SlurmSettings",
    "slurm_before_command",
    "slurm_directives",
    "slurm_tasks",
]


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


#: How each key of ``resources:`` reaches SLURM (read by docs and ``jobfleet options``).
MAPPING: dict[str, str] = {
    "cores": "--cpus-per-task",
    "memory": "--mem (MiB, rounded up)",
    "walltime": "--time (D-HH:MM:SS)",
    "gpus": "--gres=gpu:N on one node; --gpus=N (the whole job) on several",
    "nodes": "--nodes (given whenever the job has several tasks or nodes)",
    "queue": "--partition",
    "account": "--account",
    "extra_directives": "#SBATCH lines as given",
    "directives_skip": "generated #SBATCH lines left out",
    "extra_args": "sbatch arguments",
    "tasks": "--ntasks",
    "tasks_per_node": "--ntasks-per-node",
    "cores_per_task": "--cpus-per-task",
    "gpus_per_node": "--gpus-per-node",
    "gpus_per_task": "--gpus-per-task",
    "memory_per_core": "--mem-per-cpu (MiB, rounded up)",
    "exclusive": "--exclusive",
    "launcher": "srun --cpus-per-task=C, or mpirun/mpiexec -np $SLURM_NTASKS, before the command",
    "qos": "--qos",
    "constraint": "--constraint",
    "reservation": "--reservation",
    "mail_to": "--mail-user",
    "mail_on": "--mail-type (BEGIN, END, FAIL, REQUEUE, ALL)",
    "licenses": "--licenses=name:count,...",
    "priority": "--nice=-priority (a negative nice needs an operator)",
    "begin": "--begin (now+SECONDS, or local YYYY-MM-DDTHH:MM:SS)",
    "name_prefix": "--job-name=PREFIXjf<token>-<id>-<name>",
}


def _layout(res: Resources) -> list[str]:
    out = []
    if res.is_layout:  # the same layout everywhere: nodes=1 keeps the tasks on one node
        out.append(f"--nodes={res.nodes}")
    if res.tasks is not None:
        out.append(f"--ntasks={res.tasks}")
    elif res.tasks_per_node is not None:
        out.append(f"--ntasks-per-node={res.tasks_per_node}")
    if res.memory_bytes is not None:
        out.append(f"--mem={format_slurm_memory(res.memory_bytes)}")
    if res.memory_per_core_bytes is not None:
        out.append(f"--mem-per-cpu={format_slurm_memory(res.memory_per_core_bytes)}")
    if res.walltime_s is not None:
        out.append(f"--time={format_slurm_time(res.walltime_s)}")
    if res.gpus:
        # --gres counts per node; gpus is for the whole job.
        out.append(f"--gres=gpu:{res.gpus}" if res.nodes == 1 else f"--gpus={res.gpus}")
    if res.gpus_per_node:
        out.append(f"--gpus-per-node={res.gpus_per_node}")
    if res.gpus_per_task:
        out.append(f"--gpus-per-task={res.gpus_per_task}")
    if res.exclusive:
        out.append("--exclusive")
    return out


def _site(res: Resources) -> list[str]:
    out = []
    for flag, value in (
        ("--partition", res.queue),
        ("--account", res.account),
        ("--qos", res.qos),
        ("--constraint", res.constraint),
        ("--reservation", res.reservation),
    ):
        if value:
            out.append(f"{flag}={value}")
    if res.licenses:
        out.append(
            "--licenses=" + ",".join("{}:{}".format(*license_parts(x)) for x in res.licenses)
        )
    if res.mail_to is not None:
        events = res.mail_on or ("end", "fail")
        out.append(f"--mail-user={res.mail_to}")
        out.append("--mail-type=" + ",".join(e.upper() for e in dict.fromkeys(events)))
    if res.priority:
        out.append(f"--nice={-res.priority}")
    if res.begin is not None:
        out.append(f"--begin={format_slurm_begin(res.begin)}")
    return out


def slurm_directives(spec: JobSpec) -> list[str]:
    """``#SBATCH`` bodies for a spec's resources, in a fixed order."""
    res = spec.resources
    out = [f"--cpus-per-task={res.cores}", *_layout(res), *_site(res)]
    if spec.array is not None:
        out.append(f"--array={spec.array.to_text()}")
    # None keeps sbatch's default (ALL, unless the site's SBATCH_EXPORT says otherwise).
    export = spec.environment.export_env
    if export is not None:
        out.append("--export=ALL" if export else "--export=NONE")
    return out


def slurm_tasks(spec: JobSpec) -> str:
    """The number of tasks SLURM gave the job, as a shell word."""
    return f'"${{SLURM_NTASKS:-{spec.resources.total_tasks}}}"'


def slurm_before_command(spec: JobSpec) -> list[str]:
    """After ``--export=NONE``, the environment the script set up, for srun's steps too."""
    if spec.environment.export_env is not False:
        return []
    return [
        "",
        "# sbatch --export=NONE reaches srun through SLURM_EXPORT_ENV (sbatch(1)): its steps",
        "# (srun, an mpirun starting over srun) would lose the environment set up above.",
        "export SLURM_EXPORT_ENV=ALL",
    ]


SLURM = Dialect(
    name="slurm",
    directive_prefix="#SBATCH",
    index_expr="${SLURM_ARRAY_TASK_ID-}",
    once_guard=False,  # SLURM requeues jobs on node failure: a rerun is legitimate
    directives=slurm_directives,
    task_count=slurm_tasks,
    srun=True,
    before_command=slurm_before_command,
)
