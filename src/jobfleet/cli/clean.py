"""``jobfleet clean``: remove the files of ended jobs, keep their records."""

from __future__ import annotations

import click

from jobfleet.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    config_options,
    fail,
    handle_errors,
    load,
    print_json,
)
from jobfleet.engine.fleet import CleanReport, Fleet
from jobfleet.errors import SpecError

__all__ = ["clean", "size_text"]


def size_text(nbytes: int) -> str:
    """A size for people: ``512 B``, ``1.5 KiB``, ``12.0 MiB``.

    >>> size_text(512), size_text(1536), size_text(3 * 2**30)
    ('512 B', '1.5 KiB', '3.0 GiB')
    """
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{nbytes} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{nbytes} B"  # pragma: no cover - the loop returns


@click.command()
@config_options
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Only jobs that ended at least this long ago ('7d', '12h', '1h30m', seconds).",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    help="Only jobs that ended in this state (repeatable; default: every ended state).",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (keys below).")
@handle_errors
def clean(
    config_path: str | None,
    profile: str | None,
    older_than: str | None,
    states: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove the files of ended jobs: their directories (script, logs, exit-code
    files), those of their earlier attempts, and a Python call's payload. The
    records stay: `status` and `show` still work; `logs` and `result` say the
    files were removed by jobfleet clean. Output paths a job named outside its
    directory (a spec's stdout/stderr) are never removed.

    Never touched: unfinished jobs, jobs being submitted, jobs with a retry due,
    and jobs an unfinished job depends on (listed as kept, with why; --json: skipped).
    Prints a line per directory, then how many jobs and how much space.

    \b
    --json prints an object with the keys:
      dry_run       true with --dry-run (nothing was removed)
      removed       a list of {id, path, bytes}: each directory removed
      skipped       a list of {id, reason}: chosen jobs whose files were kept
      bytes_freed   the sum of the removed directories' bytes
    Exit status 1 when a directory could not be removed (e.g. permissions).
    """
    with Fleet(load(config_path, profile)) as fleet:
        try:
            report = fleet.clean(
                states=list(states) or None, older_than=older_than, dry_run=dry_run
            )
        except SpecError as exc:
            if exc.field not in ("state", "older_than"):
                raise
            fail(f"--{exc.field.replace('_', '-')}: {exc.message}", EXIT_USAGE)
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)
    if report.failed:
        for skipped in report.failed[:-1]:
            click.echo(f"jobfleet: error: job {skipped.job_id}: {skipped.reason}", err=True)
        last = report.failed[-1]
        fail(f"job {last.job_id}: {last.reason} (the next clean tries again)", EXIT_FAILED)


def _print(report: CleanReport) -> None:
    verb = "would remove" if report.dry_run else "removed"
    for removed in report.removed:
        click.echo(f"{removed.job_id} {verb} {removed.path} ({size_text(removed.bytes)})")
    for skipped in report.skipped:
        if not skipped.failed:
            click.echo(f"{skipped.job_id} kept: {skipped.reason}")
    jobs, freed = len(report.job_ids), size_text(report.bytes_freed)
    if report.dry_run:
        click.echo(f"would remove the files of {jobs} job(s), {freed} (dry run: nothing removed)")
    else:
        click.echo(f"removed the files of {jobs} job(s), freed {freed}")
