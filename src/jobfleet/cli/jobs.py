"""``jobfleet status``, ``wait``, ``cancel`` and ``logs``: jobs of the registry, by id
(``cancel``: or by name)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

import click

from jobfleet.cli.common import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    Decimal,
    WholeNumber,
    config_options,
    fail,
    handle_errors,
    job_ids_completed,
    load,
    print_jobs,
    print_json,
    warn,
)
from jobfleet.cli.jsonout import Encoded
from jobfleet.engine import cancel as cancelling
from jobfleet.engine.fleet import Fleet
from jobfleet.engine.views import Report, element_counts
from jobfleet.errors import ConfigError, SpecError, WaitTimeout, shown
from jobfleet.states import JobRecord, JobState

__all__ = ["ProgressBar", "cancel", "logs", "snakemake_word", "status", "wait"]


@click.command()
@config_options
@click.argument("job_ids", nargs=-1, shell_complete=job_ids_completed)
@click.option(
    "--limit",
    type=WholeNumber(1),
    default=20,
    show_default=True,
    help="How many recent jobs without IDs.",
)
@click.option(
    "--timeout",
    type=Decimal(),
    metavar="SECONDS",
    help="Longest wait for the schedulers (default: wait.status_timeout, 5s).",
)
@click.option(
    "--no-refresh",
    is_flag=True,
    help="Show the recorded states at once, asking no scheduler.",
)
@click.option(
    "--detail",
    is_flag=True,
    help="One job in full: times, hosts, memory and CPU used (as `jobfleet show ID`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (= --format json).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "snakemake"]),
    help="table (the default), json, or snakemake: one word a job, success, failed or "
    "running, as Snakemake's cluster-generic executor reads a status command.",
)
@handle_errors
def status(
    config_path: str | None,
    profile: str | None,
    job_ids: tuple[str, ...],
    limit: int,
    timeout: float | None,
    no_refresh: bool,
    detail: bool,
    as_json: bool,
    output_format: str | None,
) -> None:
    """Show jobs (default: the most recent ones).

    The schedulers are asked at once, for at most wait.status_timeout (or
    --timeout). A scheduler that does not answer by then (its controller is
    down) never hides its jobs: they are shown as last known, marked so
    (--json: "refreshed" is false and "not_refreshed_because" says why), with a
    warning naming it; the exit status is still 0. --no-refresh shows every job
    as last recorded without asking anybody. --detail (with one ID) shows that
    job in full, as `jobfleet show ID` does (--json: one object).
    """
    if as_json and output_format not in (None, "json"):
        raise SpecError("--json", f"--json and --format {output_format} exclude each other")
    as_json = as_json or output_format == "json"
    if output_format == "snakemake" and not job_ids:
        raise SpecError("--format", "--format snakemake needs the job IDs Snakemake asks about")
    if detail:
        if output_format == "snakemake":
            raise SpecError("--detail", "--detail and --format snakemake exclude each other")
        if len(job_ids) != 1:
            raise SpecError("--detail", "give exactly one job ID with --detail")
        from jobfleet.cli.show import show_one

        show_one(config_path, profile, job_ids[0], timeout, no_refresh, as_json)
        return
    if no_refresh and timeout is not None:
        raise SpecError("timeout", "--timeout and --no-refresh exclude each other")
    with Fleet(load(config_path, profile)) as fleet:
        report = fleet.status_report(
            list(job_ids) or None,
            limit=limit,
            within_s=timeout,
            ask=not no_refresh,
            # The table only counts them; --json has an ended array's encoded by the
            # registry, not read into a record each (100,000 elements: 1.45 -> 0.8 s),
            # unless its usage may still fill in (then it is polled, as before).
            ended_elements=False,
            settling_whole=as_json,
        )
        records = report.records
        encoded = {
            r.id: Encoded(fleet.elements_json(r.id))
            for r in records
            if as_json and not r.elements and r.id in report.element_counts
        }
    if output_format == "snakemake":
        for record in records:
            click.echo(snakemake_word(record))
    elif as_json:
        print_json([_json(r, report, encoded.get(r.id)) for r in records])
    elif not records:
        click.echo("no jobs yet; submit one with `jobfleet submit -- COMMAND`")
    else:
        print_jobs(records, stale=report.unanswered, counts=report.counts)
    if no_refresh:
        return
    for backend, why in report.unanswered.items():
        if why.startswith("not asked"):
            warn(f"{backend} {why}; its jobs show their recorded states")
        else:
            warn(f"{backend} did not answer ({why}); its jobs show their last known states")


def snakemake_word(record: JobRecord) -> str:
    """How Snakemake's cluster-generic executor reads a job: ``success`` only when it
    (every element) completed, ``failed`` when it ended otherwise (failed, timed out,
    out of memory, cancelled, lost), ``running`` while it has not ended, and while its
    state cannot be told (unknown): never failed on a guess."""
    if record.state is JobState.COMPLETED:
        return "success"
    if record.settled:
        return "failed"
    return "running"


def _json(record: JobRecord, report: Report, elements: Encoded | None) -> dict[str, object]:
    """A record's ``status --json`` object (``elements``: an ended array's, encoded)."""
    out = record.to_dict()
    if elements is not None:
        out["elements"] = elements  # to_dict's last key, where it would be
    out["refreshed"] = report.refreshed(record)
    out["not_refreshed_because"] = report.unanswered.get(record.backend)
    return out


def _summary(records: Sequence[JobRecord]) -> str:
    counts: dict[str, int] = {}
    for record in records:  # an array's elements, a single job's own state
        for state, n in (element_counts(record) or {record.state.value: 1}).items():
            counts[state] = counts.get(state, 0) + n
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items(), key=lambda kv: -kv[1]))


class ProgressBar:
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


@click.command()
@config_options
@click.argument("job_ids", nargs=-1, shell_complete=job_ids_completed)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Every unfinished job of the registry (e.g. after a crash).",
)
@click.option(
    "--timeout", type=Decimal(), metavar="SECONDS", help="Give up after this long (exit 3)."
)
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
    bar = ProgressBar() if sys.stdout.isatty() and not as_json else None
    with Fleet(load(config_path, profile)) as fleet:
        if every:
            job_ids = tuple(r.id for r in fleet.unfinished())
        try:
            if bar is not None:
                with bar.progress:
                    records = fleet.wait(list(job_ids), timeout_s=timeout, on_update=bar)
            else:
                records = fleet.wait(list(job_ids), timeout_s=timeout)
        except WaitTimeout as exc:
            fail(str(exc), EXIT_TIMEOUT)
    if as_json:
        print_json([r.to_dict() for r in records])
    else:
        click.echo(_summary(records))
    if not all(r.succeeded for r in records):
        sys.exit(EXIT_FAILED)


#: How many chosen jobs the confirmation question names before "and N more".
_PREVIEW = 5


@click.command()
@config_options
@click.argument("job_ids", nargs=-1, shell_complete=job_ids_completed)
@click.option(
    "--name",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Every unfinished job whose name matches this glob ('train-*'; case-sensitive;"
    " repeatable: any of them).",
)
@click.option("--all", "every", is_flag=True, help="Every unfinished job of the registry.")
@click.option("--backend", metavar="NAME", help="With --name/--all: only this backend's jobs.")
@click.option(
    "--index", "indices", type=WholeNumber(), multiple=True, metavar="N", help="Only this element."
)
@click.option(
    "--signal", "signal_name", metavar="SIG", help="Send SIG (e.g. TERM) instead of cancelling."
)
@click.option("--yes", "-y", is_flag=True, help="With --name/--all: do not ask first.")
@click.option(
    "--dry-run", is_flag=True, help="With --name/--all: list the jobs chosen; cancel nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@handle_errors
def cancel(
    config_path: str | None,
    profile: str | None,
    job_ids: tuple[str, ...],
    patterns: tuple[str, ...],
    every: bool,
    backend: str | None,
    indices: tuple[int, ...],
    signal_name: str | None,
    yes: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Cancel jobs (every element of arrays), or some elements, or send a signal.

    \b
    jobfleet cancel ID... [--index N]...  these jobs (--index: elements of one array)
    jobfleet cancel --name PATTERN...     unfinished jobs whose name matches a glob
    jobfleet cancel --all                 every unfinished job
    (--backend NAME: only that backend's jobs among --name/--all)

    --name and --all choose among the jobs of jobfleet's registry only, never
    other jobs on a scheduler, refreshed first (a job that has just ended is
    not chosen). On a terminal, they ask first (--yes: do not); otherwise they
    proceed. They print each job's state, then `cancelled N job(s)` (or
    `signalled N job(s) with SIG`); nothing chosen is no failure (exit 0).
    --json prints a list of the records after the cancel (--dry-run: before),
    one per job, so its length is the count. A backend that does not answer:
    the other backends' jobs are cancelled, then one error line names it
    (exit 1).
    """
    selecting = bool(patterns) or every
    _check_usage(bool(job_ids), selecting, patterns, every, backend, indices, dry_run)
    signal = cancelling.signal_name(signal_name) if signal_name is not None else None
    with Fleet(load(config_path, profile)) as fleet:
        if not selecting:
            records = fleet.cancel(list(job_ids), indices=list(indices) or None, signal=signal)
            if as_json:
                print_json([r.to_dict() for r in records])
            else:
                for r in records:
                    click.echo(f"{r.id} {r.state.value}")
            return
        try:
            chosen = fleet.unfinished_matching(list(patterns) or None, backend=backend)
        except ConfigError as exc:
            if backend is None or exc.key != "backend":
                raise
            fail(f"--backend: {exc.message}", EXIT_USAGE)  # checked before anything else
        if not chosen:
            if as_json:
                print_json([])
            else:
                click.echo(f"no unfinished jobs match {_selection(patterns, backend)}")
            return
        if dry_run:
            _print_chosen(chosen, signal, as_json)
            return
        if not (yes or as_json) and sys.stdin.isatty() and sys.stdout.isatty():
            _confirm(chosen, signal)
        report = fleet.cancel_report([r.id for r in chosen], signal=signal)
    acted = [r for r in report.records if r.backend not in report.unanswered]
    if as_json:
        print_json([r.to_dict() for r in acted])
    else:
        for r in acted:
            click.echo(f"{r.id} {r.state.value}")
        n = len(acted)
        click.echo(f"signalled {n} job(s) with {signal}" if signal else f"cancelled {n} job(s)")
    if report.unanswered:
        left = {b: sum(r.backend == b for r in report.records) for b in report.unanswered}
        fail(
            "; ".join(
                f"{b} did not answer ({why}): its {left[b]} job(s) may not be "
                + ("signalled" if signal else "cancelled")
                for b, why in report.unanswered.items()
            )
            + "; see `jobfleet status`",
            EXIT_FAILED,
        )


def _check_usage(
    ids: bool,
    selecting: bool,
    patterns: Sequence[str],
    every: bool,
    backend: str | None,
    indices: Sequence[int],
    dry_run: bool,
) -> None:
    """Raise a usage error (exit 2) for options of ``cancel`` that do not go together."""
    problem = None
    if ids and selecting:
        problem = "give job ids or --name/--all, not both"
    elif patterns and every:
        problem = "--name and --all exclude each other (--all takes every unfinished job)"
    elif backend is not None and not selecting:
        problem = "--backend goes with --name PATTERN or --all (ids name their jobs already)"
    elif dry_run and not selecting:
        problem = "--dry-run goes with --name PATTERN or --all"
    elif not ids and not selecting:
        problem = "give the ids of the jobs to cancel, or --name PATTERN, or --all"
    elif indices and selecting:
        problem = "--index takes the id of one array job, not --name/--all"
    if problem is not None:
        raise click.UsageError(problem, click.get_current_context())


def _selection(patterns: Sequence[str], backend: str | None) -> str:
    """The choice as the options that made it: ``--name 'a*' --backend local``."""
    words = [f"--name {shown(p)}" for p in patterns] or ["--all"]
    if backend is not None:
        words.append(f"--backend {shown(backend)}")
    return " ".join(words)


def _print_chosen(chosen: Sequence[JobRecord], signal: str | None, as_json: bool) -> None:
    if as_json:
        print_json([r.to_dict() for r in chosen])
        return
    print_jobs(chosen)
    what = f"send {signal} to" if signal else "cancel"
    click.echo(f"would {what} {len(chosen)} job(s) (dry run: nothing done)")


def _confirm(chosen: Sequence[JobRecord], signal: str | None) -> None:
    """Ask before acting on what a pattern chose; "no" ends with exit 1."""
    named = ", ".join(f"{r.id} {r.name}" for r in chosen[:_PREVIEW])
    more = f" and {len(chosen) - _PREVIEW} more" if len(chosen) > _PREVIEW else ""
    what = f"send {signal} to" if signal else "cancel"
    click.echo(f"would {what} {len(chosen)} job(s): {named}{more}")
    if not click.confirm(f"{what.capitalize()} them?", default=False):
        fail("nothing " + ("signalled" if signal else "cancelled"), EXIT_FAILED)


@click.command()
@config_options
@click.argument("job_id", shell_complete=job_ids_completed)
@click.option("--index", type=WholeNumber(), metavar="N", help="Array element.")
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
    with Fleet(load(config_path, profile)) as fleet:
        path = fleet.log_path(job_id, index=index, stream=stream)
    if path_only:
        click.echo(str(path))
        return
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        fail(f"no {stream} yet for job {job_id} at {path} (has it started?)", EXIT_FAILED)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
