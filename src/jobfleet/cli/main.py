"""The ``jobfleet`` command: parses, calls the library, prints. Nothing else.

Exit statuses: 0 success; 1 an operation failed (or ``wait`` saw a job not
succeed); 2 bad input or usage; 3 ``wait`` timed out.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, NoReturn, TypeVar, cast

import click
from rich.console import Group
from rich.text import Text

from jobfleet import __version__
from jobfleet.backends.base import QueueEntry, user_name
from jobfleet.config import Config, describe, load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import CommandError, JobfleetError, SpecError, WaitTimeout
from jobfleet.naming import scheduler_name
from jobfleet.spec import Dependency, DepKind, JobSpec, parse_array
from jobfleet.states import JobRecord, JobState

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3

# click >= 8.2 raises this (a UsageError carrying the help text) for a bare
# `jobfleet` or `jobfleet config`; older versions print the help themselves.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _fail(message: str, status: int) -> NoReturn:
    one_line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"jobfleet: error: {one_line}", err=True)
    sys.exit(status)


def handle_errors(func: F) -> F:
    """Turn library errors into one line and an exit status; never a traceback
    unless ``--debug`` was given."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except JobfleetError as exc:
            if debug:
                raise
            _fail(str(exc), exc.exit_status)
        except OSError as exc:
            if debug:
                raise
            _fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            _fail("interrupted (jobs keep running; see `jobfleet status`)", 130)

    return wrapper  # type: ignore[return-value]


def config_options(func: F) -> F:
    """``--config`` and ``--profile``, accepted by every command that reads configuration."""
    func = click.option("--profile", metavar="NAME", help="Apply this configuration profile.")(func)
    return click.option(
        "--config", "config_path", metavar="PATH", help="Configuration file to read."
    )(func)


def _load(
    config_path: str | None, profile: str | None, overrides: dict[str, Any] | None = None
) -> Config:
    return load_config(config_path, profile=profile, overrides=overrides)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jobfleet")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
def cli(debug: bool) -> None:
    """Run work on any HPC scheduler, or on this machine, with one job model."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="jobfleet: %(levelname)s: %(message)s",
    )


def _parse_env(values: Sequence[str]) -> dict[str, str]:
    env = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpecError("--env", f"{item!r}: write KEY=VALUE")
        env[key] = value
    return env


@cli.command(context_settings={"allow_interspersed_args": False})
@config_options
@click.option("--backend", metavar="NAME", help="Backend to submit to (default from config).")
@click.option("--name", metavar="NAME", help="Job name.")
@click.option("--cores", type=int, metavar="N", help="CPU cores per task.")
@click.option("--memory", metavar="SIZE", help="Memory, e.g. 4G (1024-based) or 4GB (1000-based).")
@click.option("--walltime", metavar="DURATION", help="Time limit, e.g. 90s, 1h30m, 02:00:00.")
@click.option("--gpus", type=int, metavar="N", help="GPUs.")
@click.option("--queue", metavar="Q", help="Queue or partition.")
@click.option("--account", metavar="A", help="Account or project to charge.")
@click.option(
    "--array", "array_text", metavar="SPEC", help="Array: 1-100, 1-100%10, 1,3,5-9, 0-20:5."
)
@click.option("--after-ok", multiple=True, metavar="ID", help="Start after ID succeeded.")
@click.option("--after-any", multiple=True, metavar="ID", help="Start after ID ended.")
@click.option("--after-not-ok", multiple=True, metavar="ID", help="Start after ID did not succeed.")
@click.option("--workdir", metavar="DIR", help="Working directory (default: the current one).")
@click.option("--env", "env_items", multiple=True, metavar="K=V", help="Environment variable.")
@click.option("--shell", "use_shell", is_flag=True, help="Run COMMAND as one string of shell code.")
@click.option(
    "--retries", type=int, default=0, metavar="N", help="Submit again up to N times if it fails."
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
    queue: str | None,
    account: str | None,
    array_text: str | None,
    after_ok: tuple[str, ...],
    after_any: tuple[str, ...],
    after_not_ok: tuple[str, ...],
    workdir: str | None,
    env_items: tuple[str, ...],
    use_shell: bool,
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
        "resources.queue": queue,
        "resources.account": account,
    }
    config = _load(config_path, profile, overrides)
    deps = tuple(
        Dependency(kind, ids)
        for kind, ids in (
            (DepKind.AFTER_OK, after_ok),
            (DepKind.AFTER_ANY, after_any),
            (DepKind.AFTER_NOT_OK, after_not_ok),
        )
        if ids
    )
    if use_shell and len(command) != 1:
        raise SpecError("command", "with --shell give the shell code as one quoted argument")
    spec = JobSpec(
        command=command[0] if use_shell else list(command),
        shell=use_shell,
        name=name,
        workdir=workdir,
        env=_parse_env(env_items),
        resources=config.resources,
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
                _print_json({"backend": plan.backend, "script": plan.script, "argv": plan.argv})
                return
            click.echo(plan.script, nl=False)
            if plan.argv is None:
                click.echo(
                    f"# submit: ({plan.backend} backend: queued for the local agent; no command)"
                )
            else:
                import shlex

                click.echo(f"# submit: {shlex.join(plan.argv)}")
            return
        record = fleet.submit(spec)
    if as_json:
        _print_json(record.to_dict())
    else:
        click.echo(record.id)


_STATE_STYLE = {
    JobState.PENDING: "yellow",
    JobState.RUNNING: "cyan",
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
    JobState.TIMEOUT: "red",
    JobState.OUT_OF_MEMORY: "red",
    JobState.LOST: "red",
    JobState.UNKNOWN: "dim",
}


def _element_summary(record: JobRecord) -> str:
    counts: dict[str, int] = {}
    for element in record.elements.values():
        counts[element.state.value] = counts.get(element.state.value, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _print_table(records: Sequence[JobRecord]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NAME", "BACKEND", "NATIVE", "STATE", "EXIT", "DETAIL"):
        table.add_column(column, no_wrap=column != "DETAIL")
    for r in records:
        detail = _element_summary(r) if r.elements else (r.reason or "")
        # Text, not markup: a name or reason may hold brackets ("[x]", "123_[5-10]").
        table.add_row(
            Text(r.id),
            Text(r.name),
            Text(r.backend),
            Text(r.native_id or "-"),
            _state_text(r.state),
            Text("-" if r.exit_code is None else str(r.exit_code)),
            Text(detail),
        )
    Console().print(table)


@cli.command()
@config_options
@click.argument("job_ids", nargs=-1)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="How many recent jobs without IDs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@handle_errors
def status(
    config_path: str | None,
    profile: str | None,
    job_ids: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Show jobs (default: the most recent ones)."""
    with Fleet(_load(config_path, profile)) as fleet:
        records = fleet.status(list(job_ids) or None, limit=limit)
    if as_json:
        _print_json([r.to_dict() for r in records])
    elif not records:
        click.echo("no jobs yet; submit one with `jobfleet submit -- COMMAND`")
    else:
        _print_table(records)


def _summary(records: Sequence[JobRecord]) -> str:
    counts: dict[str, int] = {}
    for record in records:
        if record.elements:
            for element in record.elements.values():
                counts[element.state.value] = counts.get(element.state.value, 0) + 1
        else:
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda kv: -kv[1]))


class _ProgressBar:
    """A rich progress bar over tasks (array elements count one each)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]waiting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("wait", total=None, counts="")

    def __call__(self, records: list[JobRecord]) -> None:
        total = done = 0
        for record in records:
            if record.elements:
                total += len(record.elements)
                done += sum(e.state.is_terminal for e in record.elements.values())
            else:
                total += 1
                done += record.state.is_terminal
        self.progress.update(self.task, total=total, completed=done, counts=_summary(records))


@cli.command()
@config_options
@click.argument("job_ids", nargs=-1)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Every unfinished job of the registry (e.g. after a crash).",
)
@click.option("--timeout", type=float, metavar="SECONDS", help="Give up after this long (exit 3).")
@click.option("--json", "as_json", is_flag=True, help="Print the final records as JSON.")
@handle_errors
def wait(
    config_path: str | None,
    profile: str | None,
    job_ids: tuple[str, ...],
    every: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Wait until the jobs end; exit 0 only if every one completed successfully."""
    if bool(job_ids) == every:
        raise SpecError("job_ids", "give the ids of the jobs to wait for, or --all")
    bar = _ProgressBar() if sys.stdout.isatty() and not as_json else None
    with Fleet(_load(config_path, profile)) as fleet:
        if every:
            job_ids = tuple(r.id for r in fleet.registry.unfinished())
        try:
            if bar is not None:
                with bar.progress:
                    records = fleet.wait(list(job_ids), timeout_s=timeout, on_update=bar)
            else:
                records = fleet.wait(list(job_ids), timeout_s=timeout)
        except WaitTimeout as exc:
            _fail(str(exc), EXIT_TIMEOUT)
    if as_json:
        _print_json([r.to_dict() for r in records])
    else:
        click.echo(_summary(records))
    if not all(r.succeeded for r in records):
        sys.exit(EXIT_FAILED)


@cli.command()
@config_options
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--index", "indices", type=int, multiple=True, metavar="N", help="Only this element.")
@click.option(
    "--signal", "signal_name", metavar="SIG", help="Send SIG (e.g. TERM) instead of cancelling."
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@handle_errors
def cancel(
    config_path: str | None,
    profile: str | None,
    job_ids: tuple[str, ...],
    indices: tuple[int, ...],
    signal_name: str | None,
    as_json: bool,
) -> None:
    """Cancel jobs (every element of arrays), or some elements, or send a signal."""
    with Fleet(_load(config_path, profile)) as fleet:
        records = fleet.cancel(list(job_ids), indices=list(indices) or None, signal=signal_name)
    if as_json:
        _print_json([r.to_dict() for r in records])
    else:
        for r in records:
            click.echo(f"{r.id} {r.state.value}")


@cli.command()
@config_options
@click.argument("job_id")
@click.option("--index", type=int, metavar="N", help="Array element.")
@click.option("--stderr", "use_stderr", is_flag=True, help="Show standard error instead.")
@click.option("--path", "path_only", is_flag=True, help="Print the log file's path only.")
@handle_errors
def logs(
    config_path: str | None,
    profile: str | None,
    job_id: str,
    index: int | None,
    use_stderr: bool,
    path_only: bool,
) -> None:
    """Print a job's standard output (or error)."""
    stream: Literal["stdout", "stderr"] = "stderr" if use_stderr else "stdout"
    with Fleet(_load(config_path, profile)) as fleet:
        path = fleet.log_path(job_id, index=index, stream=stream)
    if path_only:
        click.echo(str(path))
        return
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        _fail(f"no {stream} yet for job {job_id} at {path} (has it started?)", EXIT_FAILED)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


# -- queue and top ----------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    """A short duration for tables: ``45s``, ``3m05s``, ``2h03m``, ``4d02h``."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _state_text(state: JobState) -> Text:
    return Text(state.value, style=_STATE_STYLE[state])


def _jobfleet_ids(fleet: Fleet, backend: str, entries: Sequence[QueueEntry]) -> list[str | None]:
    """The jobfleet id of each row that is a job of this registry, else None.

    Looked up by native id (one indexed query per job, only for this user's
    rows: the registry is this user's), and then the row's name must be the
    one the job has on its scheduler: a native id the scheduler reused for
    somebody else's job is not ours.
    """
    token = fleet.registry.token
    me = user_name()
    found: dict[str, JobRecord | None] = {}
    ids: list[str | None] = []
    for entry in entries:
        record = None
        if me is None or entry.user == me:
            if entry.native_id not in found:
                found[entry.native_id] = fleet.registry.find_native(backend, entry.native_id)
            record = found[entry.native_id]
        # Submitted jobs carry jobfleet's name (per attempt); adopted ones keep their own.
        ours = record is not None and entry.name in (
            scheduler_name(token, record.id, record.name, record.attempt),
            record.name,
        )
        ids.append(record.id if record is not None and ours else None)
    return ids


def _print_queue(rows: Sequence[tuple[str | None, QueueEntry]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NATIVE", "NAME", "USER", "STATE", "CODE", "ELAPSED", "NODES", "QUEUE"):
        # Long names and reasons fold onto more lines rather than lose their ends.
        table.add_column(column, no_wrap=column != "NAME", overflow="fold")
    table.add_column("REASON", overflow="fold")
    for job_id, e in rows:
        # Text, not markup: names and ids are the scheduler's ("123_[5-10%2]").
        table.add_row(
            Text(job_id or "-"),
            Text(e.display_id),
            Text(e.name),
            Text(e.user),
            _state_text(e.state),
            Text(e.native_state),
            Text(_duration(e.elapsed_s)),
            Text(e.nodes or "-"),
            Text(e.queue or "-"),
            Text(e.reason or ""),
        )
    Console().print(table)


@cli.command()
@config_options
@click.option("--backend", metavar="NAME", help="Scheduler to ask (default from config).")
@click.option(
    "--all-users",
    is_flag=True,
    help="Everybody's jobs, not only yours (local backend: still only yours, as each "
    "user has their own local queue).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (keys below).")
@handle_errors
def queue(
    config_path: str | None,
    profile: str | None,
    backend: str | None,
    all_users: bool,
    as_json: bool,
) -> None:
    """Every unfinished job the scheduler knows for you, jobfleet's or not.

    One scheduler call (squeue, qstat -xml, or the local queue). A started
    array element is a row of its own (123_4; Grid Engine 45.4); the elements
    still waiting are one row (123_[5-10%2]; Grid Engine 45.5-10:1). ID is the
    jobfleet id of the jobs of this registry, - for any other job.

    \b
    --json prints a list of objects with these keys:
      id            jobfleet id, or null for a job this registry did not submit
      backend       the backend asked
      native_id     the scheduler's id of the job (of the whole array for its rows)
      tasks         array element ("4") or waiting elements ("5-10%2"), else null
      display_id    the id as the scheduler writes it ("123", "123_4", "45.4")
      name, user    the job's name on the scheduler, and its owner
      state         jobfleet state: pending, running, ... (unknown if unmapped)
      native_state  the scheduler's state code (PENDING, hqw, running, ...)
      elapsed_s     seconds since it started; null while it waits
      nodes, queue  where it runs, and its partition or queue (null if unknown)
      reason        why it waits or is held, in the scheduler's words, or null
    """
    with Fleet(_load(config_path, profile, {"backend": backend})) as fleet:
        be = fleet.backend()
        entries = be.list_queue(all_users)
        rows = list(zip(_jobfleet_ids(fleet, be.name, entries), entries, strict=True))
    if as_json:
        _print_json([{"id": i, "backend": be.name, **e.to_dict()} for i, e in rows])
    elif not rows:
        # Each user has their own local queue: --all-users would show the same.
        mine = not all_users and be.name != "local"
        hint = " of yours (--all-users shows everybody's)" if mine else ""
        click.echo(f"the {be.name} queue has no unfinished jobs{hint}")
    else:
        _print_queue(rows)


@cli.command()
@config_options
@click.option(
    "--prefix", required=True, metavar="P", help="Adopt your jobs whose names start with P."
)
@click.option("--backend", metavar="NAME", help="Scheduler to ask (default from config).")
@click.option("--json", "as_json", is_flag=True, help="Print the adopted records as JSON.")
@handle_errors
def adopt(
    config_path: str | None,
    profile: str | None,
    prefix: str,
    backend: str | None,
    as_json: bool,
) -> None:
    """Record jobs on the scheduler that the registry does not know.

    For jobs submitted by hand, or by a program that crashed before recording
    them: each of your unfinished jobs whose name starts with P becomes a
    jobfleet job (its command shown as unknown), followed like any other by
    status, wait and cancel. A job this registry submitted without confirming
    it is confirmed instead, never recorded twice. Running it again adopts
    nothing new.
    """
    with Fleet(_load(config_path, profile, {"backend": backend})) as fleet:
        records = fleet.adopt(prefix)
    if as_json:
        _print_json([r.to_dict() for r in records])
    elif not records:
        click.echo(f"nothing to adopt: no unknown job of yours is named {prefix}...")
    else:
        _print_table(records)


#: How long ``top`` keeps showing a job after it ended.
_TOP_ENDED_S = 600.0


def _top_records(fleet: Fleet, show_all: bool, limit: int) -> tuple[list[JobRecord], str | None]:
    """Fresh records for one refresh of ``top`` (one poll per backend), and what
    went wrong asking the schedulers, if anything (the last known states then)."""
    if show_all:
        records = fleet.registry.recent(limit)
    else:
        records = fleet.registry.unfinished()
        shown = {r.id for r in records}
        cutoff = time.time() - _TOP_ENDED_S
        records += [
            r
            for r in fleet.registry.recent(limit)
            if r.id not in shown and r.state.is_terminal and r.updated_at >= cutoff
        ]
    problem = None
    try:
        records = fleet.refresh(records)
    except CommandError as exc:
        if not exc.transient:
            raise
        # A scheduler that does not answer for a moment must not end the view.
        problem = f"a scheduler did not answer ({exc}); showing the last known states"
    records.sort(key=lambda r: (r.state.is_terminal, -int(r.id) if r.id.isdigit() else 0))
    return records, problem


def _top_view(records: Sequence[JobRecord], problem: str | None, footer: str) -> Group:
    from rich.table import Table

    counts: dict[JobState, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    summary = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    jobs = f"{len(records)} job{'' if len(records) == 1 else 's'}"
    header = Text(f"{time.strftime('%H:%M:%S')}  {jobs}")
    header.append(f": {summary}" if summary else " (none unfinished or recently ended)")
    header.append(footer, style="dim")
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NAME", "BACKEND", "STATE", "ELEMENTS", "EXIT", "REASON", "AGE"):
        folds = column in ("NAME", "REASON")
        table.add_column(column, no_wrap=not folds, overflow="fold" if folds else "ellipsis")
    now = time.time()
    for r in records:
        table.add_row(
            Text(r.id),
            Text(r.name),
            Text(r.backend),
            _state_text(r.state),
            Text(_element_summary(r) if r.elements else "-"),
            Text("-" if r.exit_code is None else str(r.exit_code)),
            Text(r.reason or ""),
            Text(_duration(now - r.created_at)),
        )
    parts: list[Text | Table] = [header]
    if problem:
        parts.append(Text(problem, style="yellow"))
    parts.append(table)
    return Group(*parts)


@cli.command()
@config_options
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between refreshes.",
)
@click.option("--iterations", type=click.IntRange(1), metavar="N", help="Stop after N refreshes.")
@click.option("--all", "show_all", is_flag=True, help="The most recent jobs, ended or not.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    metavar="N",
    help="How many recent jobs --all shows (and where ended jobs are looked for).",
)
@handle_errors
def top(
    config_path: str | None,
    profile: str | None,
    interval: float,
    iterations: int | None,
    show_all: bool,
    limit: int,
) -> None:
    """A live table of your jobs: the unfinished ones and those that ended in the
    last 10 minutes (--all: the most recent ones, ended or not).

    Each refresh asks every backend once about all its unfinished jobs. Arrays show
    how many elements are in each state. Ctrl-C quits (exit status 0). When the
    output is not a terminal, one plain table is printed per refresh instead of
    redrawing one in place.
    """
    from rich.console import Console
    from rich.live import Live

    console = Console()
    # Live redraws only on a real terminal; elsewhere it would print nothing but
    # the last table, so each refresh is printed as it comes.
    redraw = console.is_terminal and not console.is_dumb_terminal
    footer = f"   every {interval:g}s; Ctrl-C quits" if redraw else ""
    with Fleet(_load(config_path, profile)) as fleet:
        try:
            if redraw:
                with Live(console=console, auto_refresh=False) as live:
                    _top_loop(
                        fleet,
                        lambda view: live.update(view, refresh=True),
                        show_all,
                        limit,
                        interval,
                        iterations,
                        footer,
                    )
            else:
                _top_loop(fleet, console.print, show_all, limit, interval, iterations, footer)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how one leaves top: not an error


def _top_loop(
    fleet: Fleet,
    show: Callable[[Group], None],
    show_all: bool,
    limit: int,
    interval_s: float,
    iterations: int | None,
    footer: str,
) -> None:
    done = 0
    while True:
        records, problem = _top_records(fleet, show_all, limit)
        show(_top_view(records, problem, footer))
        done += 1
        if iterations is not None and done >= iterations:
            return
        time.sleep(interval_s)


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@config_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: values and where each came from."
)
@handle_errors
def config_show(config_path: str | None, profile: str | None, as_json: bool) -> None:
    """Print the merged configuration and where each value came from."""
    config = _load(config_path, profile)
    rows = describe(config)
    if as_json:
        _print_json(
            {
                "file": config.path,
                "profile": config.profile,
                "profiles": list(config.profiles),
                "values": {key: value for key, value, _ in rows},
                "sources": {key: source for key, _, source in rows},
            }
        )
        return
    click.echo(f"# file: {config.path or '(none found)'}   profile: {config.profile or '(none)'}")
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        click.echo(f"{key:<{width}}  {json.dumps(value):<20}  # {source}")


#: Better words than click's "Missing argument 'COMMAND...'", by parameter name.
_MISSING = {
    "command": "missing COMMAND: give the command to run after --, e.g. jobfleet submit -- echo hi",
}


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="jobfleet",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", EXIT_FAILED)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()  # the help, as click prints it; not an error message
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "jobfleet"
        message = exc.format_message()
        if isinstance(exc, click.MissingParameter) and exc.param is not None:
            message = _MISSING.get(exc.param.name or "", message)
        _fail(f"{message} (see `{where} --help`)", EXIT_USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message(), EXIT_USAGE)
    except SystemExit:
        raise
    except Exception as exc:  # pragma: no cover - a bug; still no traceback for users
        if "--debug" in (argv if argv is not None else sys.argv):
            raise
        click.echo(
            f"jobfleet: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
        sys.exit(EXIT_FAILED)
