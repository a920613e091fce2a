"""``jobfleet report ID... --html PATH [--png PATH]``: a picture of every run (docs/report.md).

The plotting libraries (the ``report`` extra) are imported only here, when a picture is
drawn: never when the command line starts.
"""

from __future__ import annotations

import click

from jobfleet.cli.common import (
    Decimal,
    config_options,
    handle_errors,
    job_ids_completed,
    load,
    warn,
)
from jobfleet.engine.fleet import Fleet

__all__ = ["report"]


@click.command()
@config_options
@click.argument("job_ids", nargs=-1, metavar="ID...", shell_complete=job_ids_completed)
@click.option(
    "--study",
    "study_dir",
    metavar="DIR",
    help="Draw every job of the study whose output directory is DIR (jobfleet run).",
)
@click.option("--html", "html_path", metavar="PATH", help="Write the report as one HTML file.")
@click.option("--png", "png_path", metavar="PATH", help="Write the timeline and counts as a PNG.")
@click.option(
    "--timeout",
    type=Decimal(),
    metavar="SECONDS",
    help="Longest wait for the schedulers (default: wait.status_timeout, 5s).",
)
@click.option("--no-refresh", is_flag=True, help="Draw the records as they are, asking nobody.")
@handle_errors
def report(
    config_path: str | None,
    profile: str | None,
    job_ids: tuple[str, ...],
    study_dir: str | None,
    html_path: str | None,
    png_path: str | None,
    timeout: float | None,
    no_refresh: bool,
) -> None:
    """Draw the jobs ID... (every element of an array), or every job of a study
    (--study DIR): a timeline with one bar per
    job or element (waiting, then running, coloured by final state, labelled with
    its run time), running and pending counts over time, a histogram of run times,
    and a table of what did not complete.

    \b
    --html PATH  one self-contained HTML file (no network needed to view it)
    --png PATH   a static picture of the timeline and the counts
    Above 2,000 bars (100 in the PNG) the timeline groups bars; it says how.
    Needs the optional extra: pip install 'jobfleet[report]'.
    """
    if bool(job_ids) == bool(study_dir):
        raise click.UsageError("give the ids of the jobs to draw, or --study DIR")
    if not html_path and not png_path:
        raise click.UsageError("give --html PATH, --png PATH or both")
    if no_refresh and timeout is not None:
        raise click.UsageError("--timeout and --no-refresh exclude each other")
    # Imported here: the model is light, but say what is missing before asking anyone.
    from jobfleet.report import build_report, require, write_html, write_png

    if html_path:
        require("plotly.io")
    if png_path:
        require("matplotlib")
    if study_dir:
        from jobfleet.studies.execute import study_job_ids

        job_ids = tuple(study_job_ids(study_dir))
    with Fleet(load(config_path, profile)) as fleet:
        asked = fleet.status_report(
            list(dict.fromkeys(job_ids)), within_s=timeout, ask=not no_refresh
        )
    if not no_refresh:
        for backend, why in asked.unanswered.items():
            warn(f"{backend} did not answer ({why}); its jobs are drawn as last known")
    model = build_report(asked.records)
    tally = ", ".join(f"{n} {state.value}" for state, n in model.summary.per_state.items())
    drawn = "1 job or element" if len(model.bars) == 1 else f"{len(model.bars)} jobs and elements"
    what = f"{drawn}: {tally}" if tally else "nothing to draw"
    for path, write in ((html_path, write_html), (png_path, write_png)):
        if path:
            write(model, path)
            click.echo(f"wrote {path} ({what})")
