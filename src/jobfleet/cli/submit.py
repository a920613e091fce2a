"""``jobfleet submit``: one job (or array) from the command line."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from typing import Any, cast

import click

from jobfleet.cli.common import WholeNumber, config_options, handle_errors, load, print_json
from jobfleet.engine.fleet import Fleet
from jobfleet.environment import Environment
from jobfleet.errors import SpecError, shown
from jobfleet.spec import Dependency, DepKind, JobSpec, parse_array
from jobfleet.states import JobState

__all__ = ["submit"]


def _parse_env(values: Sequence[str]) -> dict[str, str]:
    env = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpecError("--env", f"{shown(item)}: write KEY=VALUE")
        env[key] = value
    return env


@click.command(context_settings={"allow_interspersed_args": False})
@config_options
@click.option("--backend", metavar="NAME", help="Backend to submit to (default from config).")
@click.option("--name", metavar="NAME", help="Job name.")
@click.option("--cores", type=WholeNumber(), metavar="N", help="CPU cores per task.")
@click.option("--memory", metavar="SIZE", help="Memory, e.g. 4G (1024-based) or 4GB (1000-based).")
@click.option("--walltime", metavar="DURATION", help="Time limit, e.g. 90s, 1h30m, 02:00:00.")
@click.option("--gpus", type=WholeNumber(), metavar="N", help="GPUs.")
@click.option("--tasks", type=WholeNumber(), metavar="N", help="Tasks (MPI ranks) in total.")
@click.option("--tasks-per-node", type=WholeNumber(), metavar="N", help="Tasks on each node.")
@click.option("--cores-per-task", type=WholeNumber(), metavar="N", help="Same as --cores.")
@click.option("--nodes", type=WholeNumber(), metavar="N", help="Nodes (default 1).")
@click.option(
    "--launcher",
    type=click.Choice(["none", "srun", "mpirun", "mpiexec"]),
    help="Start COMMAND over the tasks with this launcher.",
)
@click.option("--exclusive", is_flag=True, default=None, help="The job's nodes for this job alone.")
@click.option("--qos", metavar="QOS", help="Quality of service (SLURM).")
@click.option("--constraint", metavar="FEATURES", help="Node features, e.g. haswell (SLURM).")
@click.option("--queue", metavar="Q", help="Queue or partition.")
@click.option("--account", metavar="A", help="Account or project to charge.")
@click.option(
    "--name-prefix", metavar="TEXT", help="Put TEXT in front of the job's scheduler name."
)
@click.option(
    "--array", "array_text", metavar="SPEC", help="Array: 1-100, 1-100%10, 1,3,5-9, 0-20:5."
)
@click.option("--after-ok", multiple=True, metavar="ID", help="Start after ID succeeded.")
@click.option("--after-any", multiple=True, metavar="ID", help="Start after ID ended.")
@click.option("--after-not-ok", multiple=True, metavar="ID", help="Start after ID did not succeed.")
@click.option("--workdir", metavar="DIR", help="Working directory (default: the current one).")
@click.option("--env", "env_items", multiple=True, metavar="K=V", help="Environment variable.")
@click.option("--shell", "use_shell", is_flag=True, help="Run COMMAND as one string of shell code.")
@click.option("--module", "modules", multiple=True, metavar="NAME", help="module load NAME first.")
@click.option("--prologue", multiple=True, metavar="LINE", help="Shell line run before COMMAND.")
@click.option(
    "--epilogue",
    multiple=True,
    metavar="LINE",
    help="Shell line run after COMMAND, whatever it did.",
)
@click.option(
    "--env-file", "env_files", multiple=True, metavar="PATH", help="File to source first."
)
@click.option(
    "--export-env/--no-export-env",
    default=None,
    help="Carry this environment into the job, or not (default: the backend's, which does).",
)
@click.option(
    "--scratch/--no-scratch",
    default=None,
    help="A temporary directory for the job, as TMPDIR, or none (default: the configuration's;"
    " its directory is kept).",
)
@click.option(
    "--keep-scratch/--no-keep-scratch",
    default=None,
    help="Keep the scratch directory when the job ends, or not (default: the configuration's).",
)
@click.option(
    "--retries",
    type=WholeNumber(),
    default=0,
    metavar="N",
    help="Submit again up to N times if it fails.",
)
@click.option(
    "--retry-on",
    multiple=True,
    metavar="STATE",
    help="What a retry is for: failed, lost, timeout, out_of_memory (default: failed, lost).",
)
@click.option("--dry-run", is_flag=True, help="Print the script and submit command; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.argument("command", nargs=-1, required=True)
@handle_errors
def submit(
    config_path: str | None,
    profile: str | None,
    backend: str | None,
    name: str | None,
    cores: int | None,
    memory: str | None,
    walltime: str | None,
    gpus: int | None,
    tasks: int | None,
    tasks_per_node: int | None,
    cores_per_task: int | None,
    nodes: int | None,
    launcher: str | None,
    exclusive: bool | None,
    qos: str | None,
    constraint: str | None,
    queue: str | None,
    account: str | None,
    name_prefix: str | None,
    array_text: str | None,
    after_ok: tuple[str, ...],
    after_any: tuple[str, ...],
    after_not_ok: tuple[str, ...],
    workdir: str | None,
    env_items: tuple[str, ...],
    use_shell: bool,
    modules: tuple[str, ...],
    prologue: tuple[str, ...],
    epilogue: tuple[str, ...],
    env_files: tuple[str, ...],
    export_env: bool | None,
    scratch: bool | None,
    keep_scratch: bool | None,
    retries: int,
    retry_on: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Submit COMMAND (after --) as a job; prints the new job id."""
    overrides: dict[str, Any] = {
        "backend": backend,
        "resources.cores": cores,
        "resources.memory": memory,
        "resources.walltime": walltime,
        "resources.gpus": gpus,
        "resources.tasks": tasks,
        "resources.tasks_per_node": tasks_per_node,
        "resources.cores_per_task": cores_per_task,
        "resources.nodes": nodes,
        "resources.launcher": launcher,
        "resources.exclusive": exclusive,
        "resources.qos": qos,
        "resources.constraint": constraint,
        "resources.queue": queue,
        "resources.account": account,
        "resources.name_prefix": name_prefix,
    }
    config = load(config_path, profile, overrides)
    deps = tuple(
        Dependency(kind, ids)
        for kind, ids in (
            (DepKind.AFTER_OK, after_ok),
            (DepKind.AFTER_ANY, after_any),
            (DepKind.AFTER_NOT_OK, after_not_ok),
        )
        if ids
    )
    # The configuration's set-up first, then this job's (--module after its modules).
    environment = config.environment.then(
        Environment(
            modules=modules,
            prologue=prologue,
            epilogue=epilogue,
            env_files=env_files,
            export_env=export_env,
        )
    )
    environment = _scratch_flags(environment, scratch, keep_scratch)
    if use_shell and len(command) != 1:
        raise SpecError("command", "with --shell give the shell code as one quoted argument")
    spec = JobSpec(
        command=command[0] if use_shell else list(command),
        shell=use_shell,
        name=name,
        workdir=workdir,
        env=_parse_env(env_items),
        resources=config.resources,
        environment=environment,
        array=parse_array(array_text, "--array") if array_text else None,
        dependencies=deps,
        retries=retries,
    )
    if retry_on:
        # State names: JobSpec checks them and turns them into states.
        spec = spec.with_changes(retry_on=cast("tuple[JobState, ...]", retry_on))
    with Fleet(config) as fleet:
        if dry_run:
            plan = fleet.dry_run(spec)
            if as_json:
                shown = {"backend": plan.backend, "script": plan.script, "argv": plan.argv}
                print_json({**shown, "files": plan.files})
                return
            click.echo(plan.script, nl=False)
            for path, text in plan.files.items():
                click.echo(f"# ---- {path} (written when submitting) ----")
                click.echo(text, nl=False)
            if plan.argv is None:
                click.echo(
                    f"# submit: ({plan.backend} backend: queued for the local agent; no command)"
                )
            else:
                click.echo(f"# submit: {shlex.join(plan.argv)}")
            return
        record = fleet.submit(spec)
    if as_json:
        print_json(record.to_dict())
    else:
        click.echo(record.id)


def _scratch_flags(env: Environment, scratch: bool | None, keep: bool | None) -> Environment:
    """The configuration's scratch settings as --[no-]scratch and --[no-]keep-scratch
    change them: unset leaves them; --scratch keeps a configured directory."""
    if scratch is not None:
        env = dataclasses.replace(env, scratch=(env.scratch or True) if scratch else False)
    if keep is not None:
        env = dataclasses.replace(env, keep_scratch=keep)
    return env
