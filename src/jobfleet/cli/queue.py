"""``jobfleet queue``, ``top`` and ``adopt``: what the schedulers have, jobfleet's or not."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import click
from rich.console import Group
from rich.text import Text

from jobfleet.cli.common import (
    EXIT_FAILED,
    Decimal,
    WholeNumber,
    config_options,
    duration,
    element_summary,
    fail,
    handle_errors,
    load,
    print_jobs,
    print_json,
    state_text,
    warn,
)
from jobfleet.engine.fleet import Fleet, QueueRow, Report
from jobfleet.states import JobState

__all__ = ["adopt", "queue", "top"]


def _print_queue(rows: Sequence[QueueRow], *, with_backend: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    columns = ("ID", "NATIVE", "NAME", "USER", "STATE", "CODE", "ELAPSED", "NODES", "QUEUE")
    for column in ("BACKEND", *columns) if with_backend else columns:
        # Long names and reasons fold onto more lines rather than lose their ends.
        table.add_column(column, no_wrap=column != "NAME", overflow="fold")
    table.add_column("REASON", overflow="fold")
    for row in rows:
        e = row.entry
        # Text, not markup: names and ids are the scheduler's ("123_[5-10%2]").
        table.add_row(
            *([Text(row.backend)] if with_backend else []),
            Text(row.job_id or "-"),
            Text(e.display_id),
            Text(e.name),
            Text(e.user),
            state_text(e.state),
            Text(e.native_state),
            Text(duration(e.elapsed_s)),
            Text(e.nodes or "-"),
            Text(e.queue or "-"),
            Text(e.reason or ""),
        )
    Console().print(table)


@click.command()
@config_options
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="NAME",
    help="Scheduler to ask (repeatable; default: the configured one and those of "
    "your unfinished jobs).",
)
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
    backends: tuple[str, ...],
    all_users: bool,
    as_json: bool,
) -> None:
    """Every unfinished job the scheduler knows for you, jobfleet's or not.

    One call per scheduler (squeue, qstat -xml, or the local queue), the
    schedulers asked at once: the configured backend and those of your
    unfinished jobs, or those given with --backend (repeatable). One that does
    not answer within wait.status_timeout (a controller that is down) is named
    in a warning and its rows are missing: the others are listed, and the exit
    status is 1. A started
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
    with Fleet(load(config_path, profile)) as fleet:
        report = fleet.queues(list(backends) or None, all_users=all_users)
        shared = any(fleet.backend(n).capabilities.shared_queue for n in report.asked)
    rows = report.rows
    answered = [n for n in report.asked if n not in report.unanswered]
    if not report.asked:
        fail(
            "no backend to ask: " + "; ".join(f"{n}: {w}" for n, w in report.skipped.items()),
            EXIT_FAILED,
        )
    if report.asked and not answered:  # nothing to list: an error, as for one backend
        fail(
            "; ".join(
                why if len(report.asked) == 1 else f"{name} did not answer ({why})"
                for name, why in report.unanswered.items()
            ),
            EXIT_FAILED,
        )
    if as_json:
        print_json([row.to_dict() for row in rows])
    elif rows:
        _print_queue(rows, with_backend=len(report.asked) > 1)
    elif answered:
        # A queue of this user's alone (local): --all-users would show the same.
        mine = not all_users and shared
        hint = " of yours (--all-users shows everybody's)" if mine else ""
        which = " and ".join(answered)
        click.echo(
            f"the {which} queue{'s have' if len(answered) > 1 else ' has'} no unfinished jobs{hint}"
        )
    for name, why in report.unanswered.items():
        warn(f"{name} did not answer ({why}); its jobs are not listed")
    if report.unanswered:
        sys.exit(EXIT_FAILED)


@click.command()
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
    with Fleet(load(config_path, profile, {"backend": backend})) as fleet:
        records = fleet.adopt(prefix)
    if as_json:
        print_json([r.to_dict() for r in records])
    elif not records:
        click.echo(f"nothing to adopt: no unknown job of yours is named {prefix}...")
    else:
        print_jobs(records)


#: How long ``top`` keeps showing a job after it ended.
_TOP_ENDED_S = 600.0


def _top_records(fleet: Fleet, show_all: bool, limit: int) -> tuple[Report, str]:
    """Fresh records for one refresh of ``top`` (one poll per backend; arrays that
    ended come counted, without their elements), and what went wrong asking the
    schedulers, if anything (the last known states then)."""
    within_s = fleet.config.wait.status_timeout_s
    if show_all:
        report = fleet.status_report(limit=limit, within_s=within_s, ended_elements=False)
    else:
        # A scheduler that does not answer for a moment must not end the view, nor
        # hold it up for longer than wait.status_timeout.
        asked = fleet.look(fleet.unfinished(), within_s=within_s)
        shown = {r.id for r in asked.records}
        cutoff = time.time() - _TOP_ENDED_S
        ended = [
            r
            for r in fleet.recent(limit, ended_elements=False)
            if r.id not in shown and r.state.is_terminal and r.updated_at >= cutoff
        ]
        counts = fleet.element_counts([r.id for r in ended])
        report = Report(asked.records + ended, asked.unanswered, asked.errors, counts)
    problem = "; ".join(
        f"{name} did not answer ({why}); its jobs show their last known states"
        for name, why in report.unanswered.items()
    )
    report.records.sort(key=lambda r: (r.state.is_terminal, -int(r.id) if r.id.isdigit() else 0))
    return report, problem


def _top_view(report: Report, problem: str, footer: str) -> Group:
    from rich.table import Table

    records = report.records
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
            state_text(r.state),
            Text(element_summary(of) if (of := report.counts(r)) else "-"),
            Text("-" if r.exit_code is None else str(r.exit_code)),
            Text(r.reason or ""),
            Text(duration(now - r.created_at)),
        )
    parts: list[Text | Table] = [header]
    if problem:
        parts.append(Text(problem, style="yellow"))
    parts.append(table)
    return Group(*parts)


@click.command()
@config_options
@click.option(
    "--interval",
    type=Decimal(0.1),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between refreshes.",
)
@click.option("--iterations", type=WholeNumber(1), metavar="N", help="Stop after N refreshes.")
@click.option("--all", "show_all", is_flag=True, help="The most recent jobs, ended or not.")
@click.option(
    "--limit",
    type=WholeNumber(1),
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
    with Fleet(load(config_path, profile)) as fleet:
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
        report, problem = _top_records(fleet, show_all, limit)
        show(_top_view(report, problem, footer))
        done += 1
        if iterations is not None and done >= iterations:
            return
        time.sleep(interval_s)
