"""``jobfleet pipe ...``: many small tasks served by one array job of workers (the
library: :class:`jobfleet.pipe.Pipe`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from jobfleet.cli.common import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    Decimal,
    WholeNumber,
    config_options,
    handle_errors,
    load,
    print_json,
)

if TYPE_CHECKING:
    from jobfleet.pipe.api import Pipe, PipeStatus

__all__ = ["pipe_group"]

#: How many failed tasks the status lists (all of them: --json).
_LISTED = 20


def _open(run_dir: str) -> Pipe:
    from jobfleet.pipe.api import Pipe

    return Pipe(run_dir)


@click.group("pipe")
def pipe_group() -> None:
    """Many small tasks inside one array allocation, each finished exactly once."""


@pipe_group.command("create")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--tasks", "tasks_file", required=True, metavar="FILE", help="The task file.")
@click.option("--lease", type=Decimal(0.1), default=60.0, show_default=True, metavar="S",
              help="A claim not renewed for this long is taken over.")  # fmt: skip
@click.option("--heartbeat", type=Decimal(0.05), default=10.0, show_default=True, metavar="S",
              help="How often a worker renews its claim.")  # fmt: skip
@click.option("--max-attempts", type=WholeNumber(1), default=3, show_default=True, metavar="N",
              help="Runs of a task before it ends failed (a lost worker counts).")  # fmt: skip
@click.option("--retry-exit-code", "retry_codes", multiple=True, type=WholeNumber(1),
              metavar="CODE", help="An exit code worth another attempt (repeatable).")  # fmt: skip
@click.option("--retry-any-failure", is_flag=True, help="Every non-zero exit code is retried.")
@click.option("--block-size", type=WholeNumber(1), default=8, show_default=True, metavar="N",
              help="Tasks per claim.")  # fmt: skip
@click.option("--per-task-output", is_flag=True,
              help="Each task's output in a file of its own, not its worker's.")  # fmt: skip
@handle_errors
def create(
    run_dir: str,
    tasks_file: str,
    lease: float,
    heartbeat: float,
    max_attempts: int,
    retry_codes: tuple[int, ...],
    retry_any_failure: bool,
    block_size: int,
    per_task_output: bool,
) -> None:
    """Make RUN_DIR a run of the tasks in FILE: one shell command per line, or JSON lines
    with argv (or shell), env, cwd, estimate (seconds) and id."""
    from jobfleet.pipe.api import Pipe

    pipe = Pipe.create(
        run_dir, tasks_file, lease=lease, heartbeat=heartbeat, max_attempts=max_attempts,
        retry_exit_codes=None if retry_any_failure else retry_codes, block_size=block_size,
        per_task_output=per_task_output,
    )  # fmt: skip
    click.echo(f"{pipe.path}: {pipe.dir.total()} tasks")


@pipe_group.command("add")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--tasks", "tasks_file", required=True, metavar="FILE", help="The task file.")
@handle_errors
def add(run_dir: str, tasks_file: str) -> None:
    """Add the tasks in FILE to the run."""
    first, count = _open(run_dir).add(tasks_file)
    click.echo(f"added {count} tasks (numbers {first} to {first + count - 1})")


@pipe_group.command("submit")
@config_options
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--workers", type=WholeNumber(1), required=True, metavar="N", help="Workers.")
@click.option("--backend", metavar="NAME", help="Backend to submit to (default from config).")
@click.option("--cores", type=WholeNumber(), metavar="N", help="CPU cores per worker.")
@click.option("--memory", metavar="SIZE", help="Memory per worker, e.g. 4G.")
@click.option("--walltime", metavar="DURATION", help="Each worker's time limit, e.g. 1h.")
@click.option("--gpus", type=WholeNumber(), metavar="N", help="GPUs per worker.")
@click.option("--queue", metavar="Q", help="Queue or partition.")
@click.option("--account", metavar="A", help="Account or project to charge.")
@click.option("--max-concurrent", type=WholeNumber(1), metavar="N", help="Workers at once.")
@click.option(
    "--keep-alive",
    is_flag=True,
    help="Stay, and submit workers again whenever none is left and tasks remain.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@handle_errors
def submit(
    config_path: str | None,
    profile: str | None,
    run_dir: str,
    workers: int,
    backend: str | None,
    cores: int | None,
    memory: str | None,
    walltime: str | None,
    gpus: int | None,
    queue: str | None,
    account: str | None,
    max_concurrent: int | None,
    keep_alive: bool,
    as_json: bool,
) -> None:
    """Submit N workers of RUN_DIR as ONE array job (again: more workers)."""
    from jobfleet.engine.fleet import Fleet

    pipe = _open(run_dir)
    given = {"cores": cores, "memory": memory, "walltime": walltime, "gpus": gpus,
             "queue": queue, "account": account}  # fmt: skip
    resources = {k: v for k, v in given.items() if v is not None}
    with Fleet(load(config_path, profile)) as fleet:
        job_id = pipe.submit(
            workers, backend=backend, profile=profile, resources=resources,
            max_concurrent=max_concurrent, fleet=fleet,
        )  # fmt: skip
        if as_json:
            print_json({"job_id": job_id, "workers": workers, "run_dir": str(pipe.path)})
        else:
            click.echo(job_id)
        if keep_alive:
            status = pipe.wait(keep_alive=True, fleet=fleet, interval=pipe.dir.settings.heartbeat_s)
            sys.exit(0 if status.ok else EXIT_FAILED)


def _print_status(status: PipeStatus) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = ", ".join(f"{n} {s}" for s, n in status.counts.items() if n)
    eta = "unknown" if status.eta_s is None else f"{status.eta_s:.0f}s"
    click.echo(
        f"{status.state.value}: {status.tasks} tasks ({counts or 'none'}); "
        f"{status.live_workers} live workers; {status.throughput:.1f} tasks/s; eta {eta}"
    )
    if status.failed:
        table = Table("task", "id", "exit code", "attempts", "why", title="failed")
        for t in status.failed[:_LISTED]:
            table.add_row(str(t.number), t.id or "", str(t.exit_code), str(t.attempts), t.why or "")
        Console().print(table)
        if len(status.failed) > _LISTED:
            click.echo(f"... and {len(status.failed) - _LISTED} more (--json lists them all)")


@pipe_group.command("status")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@handle_errors
def status(run_dir: str, as_json: bool) -> None:
    """Counts per state, throughput, ETA and live workers of the run."""
    now = _open(run_dir).status()
    if as_json:
        print_json(now.to_dict())
    else:
        _print_status(now)


@pipe_group.command("wait")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--timeout", type=Decimal(0), metavar="SECONDS", help="Give up after this long.")
@click.option("--keep-alive", is_flag=True,
              help="Submit workers again whenever none is left and tasks remain.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object at the end.")
@handle_errors
def wait(run_dir: str, timeout: float | None, keep_alive: bool, as_json: bool) -> None:
    """Wait until every task ended; exit 0 only if every one completed."""
    pipe = _open(run_dir)
    progress: Any = None
    if not as_json and sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress

        progress = Progress(BarColumn(), MofNCompleteColumn(), transient=False)
        progress.start()
        bar = progress.add_task("tasks", total=None)

    def show(now: PipeStatus) -> None:
        if progress is not None:
            ended = now.counts["completed"] + now.counts["failed"] + now.counts["cancelled"]
            progress.update(bar, total=now.tasks, completed=ended)

    try:
        final = pipe.wait(timeout=timeout, keep_alive=keep_alive, on_progress=show)
    finally:
        if progress is not None:
            progress.stop()
    if as_json:
        print_json(final.to_dict())
    else:
        _print_status(final)
    if not final.ended:
        sys.exit(EXIT_TIMEOUT)
    sys.exit(0 if final.ok else EXIT_FAILED)


@pipe_group.command("worker")
@click.argument("run_dir", metavar="RUN_DIR")
def worker(run_dir: str) -> None:
    """Serve the run until nothing is left (what each worker array element runs)."""
    from jobfleet.pipe.worker import main as worker_main

    sys.exit(worker_main([run_dir]))


@pipe_group.command("retry")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--failed", is_flag=True, required=True, help="Run the failed tasks again.")
@handle_errors
def retry(run_dir: str, failed: bool) -> None:
    """Run the failed tasks again, each with a fresh budget (submit workers if none)."""
    count = _open(run_dir).retry()
    click.echo(f"{count} failed tasks will run again")


@pipe_group.command("cancel")
@click.argument("run_dir", metavar="RUN_DIR")
@handle_errors
def cancel(run_dir: str) -> None:
    """Cancel the run: its workers stop, tasks not ended read cancelled."""
    pipe = _open(run_dir)
    pipe.cancel()
    click.echo(f"{pipe.path}: cancelled")


@pipe_group.command("logs")
@click.argument("run_dir", metavar="RUN_DIR")
@click.argument("task", metavar="TASK")
@handle_errors
def logs(run_dir: str, task: str) -> None:
    """Print one task's output (by its number or its id)."""
    click.echo(_open(run_dir).logs(task), nl=False)
