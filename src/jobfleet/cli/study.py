"""``jobfleet run STUDY.yaml`` and ``jobfleet study status DIR``: studies from the
command line (the library: :mod:`jobfleet.studies`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from jobfleet.cli.common import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    config_options,
    fail,
    handle_errors,
    load,
    print_json,
)
from jobfleet.cli.jobs import ProgressBar
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import WaitTimeout

if TYPE_CHECKING:
    from jobfleet.studies.runner import Rerun

__all__ = ["run", "study_group"]

#: How many points that did not complete the summary lists (all of them: --json).
_LISTED = 20


@click.command()
@config_options
@click.argument("study_file", metavar="STUDY.yaml")
@click.option("--backend", metavar="NAME", help="Run on this backend (default: the study's).")
@click.option("--dry-run", is_flag=True, help="Say what would run; write and submit nothing.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a key of the study file (dotted: parameters.a=[1,2], resources.cores=4).",
)
@click.option("--rerun-failed", is_flag=True, help="Also run again the points that failed.")
@click.option("--rerun-all", is_flag=True, help="Run every point again, completed ones too.")
@click.option("--no-wait", is_flag=True, help="Submit, then return without waiting.")
@click.option("--timeout", type=float, metavar="SECONDS", help="Wait at most this long.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (keys below).")
@handle_errors
def run(
    config_path: str | None,
    profile: str | None,
    study_file: str,
    backend: str | None,
    dry_run: bool,
    overrides: tuple[str, ...],
    rerun_failed: bool,
    rerun_all: bool,
    no_wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Run a study: each step as ONE array job, in the study's output directory (one
    directory per point, with its params.json). Running it again resumes: completed
    points are kept, pending and running ones waited for, failed ones kept and
    reported (--rerun-failed runs them again), the others run. Exit status 0 only
    when every point completed.

    \b
    --json prints an object with the keys:
      name, output, ok       the study, its output directory, every point completed
      counts                 points per state ("not run" for those never run)
      steps                  [{name, points, counts}]
      not_completed          [{step, index, params, dir, state, exit_code, reason,
                              job_id, element, log}]
      submitted              the ids of the jobs this run submitted
    With --dry-run: {name, output, steps: [{name, points, run, keep, wait, blocked}]}.
    """
    from jobfleet.studies import load_study, run_study
    from jobfleet.studies.execute import Preview
    from jobfleet.studies.plan import describe_text

    if rerun_failed and rerun_all:
        fail("give --rerun-failed or --rerun-all, not both", 2)
    study = load_study(study_file, overrides=overrides)
    bar = ProgressBar() if sys.stdout.isatty() and not as_json and not no_wait else None
    with Fleet(load(config_path, profile or study.profile)) as fleet:
        rerun: Rerun = "all" if rerun_all else "failed" if rerun_failed else "none"
        try:
            if bar is not None and not dry_run:
                with bar.progress:
                    result = run_study(
                        study,
                        fleet=fleet,
                        backend=backend,
                        rerun=rerun,
                        timeout_s=timeout,
                        on_update=bar,
                    )
            else:
                result = run_study(
                    study,
                    fleet=fleet,
                    backend=backend,
                    rerun=rerun,
                    dry_run=dry_run,
                    wait=not no_wait,
                    timeout_s=timeout,
                )
        except WaitTimeout as exc:
            fail(f"{exc}; run it again to go on waiting (nothing is submitted twice)", EXIT_TIMEOUT)
    if isinstance(result, Preview):
        if as_json:
            print_json(result.to_dict())
            return
        click.echo(describe_text(study))
        for plan in result.plans:
            click.echo(
                f"{plan.step}: {len(plan.of('run'))} to run, {len(plan.of('keep'))} kept, "
                f"{len(plan.of('wait'))} running, {len(plan.of('blocked'))} blocked"
            )
        return
    _report(result, as_json)
    if not result.ok and not no_wait:
        sys.exit(EXIT_FAILED)


@click.group("study")
def study_group() -> None:
    """Studies run with jobfleet run."""


@study_group.command("status")
@config_options
@click.argument("directory", metavar="DIR")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (as jobfleet run's).")
@handle_errors
def status(config_path: str | None, profile: str | None, directory: str, as_json: bool) -> None:
    """How every point of the study whose output directory is DIR stands, its jobs
    asked about now. Exit status 0 only when every point completed."""
    from jobfleet.studies import study_status

    with Fleet(load(config_path, profile)) as fleet:
        result = study_status(directory, fleet=fleet)
    _report(result, as_json)
    if not result.ok:
        sys.exit(EXIT_FAILED)


def _report(result: object, as_json: bool) -> None:
    from jobfleet.studies.outcomes import StudyResult

    assert isinstance(result, StudyResult)
    if as_json:
        print_json(result.to_dict())
        return
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title=f"study {result.name} ({result.output_dir})", title_justify="left")
    states = sorted({p.state_text for p in result.points})
    table.add_column("step")
    for state in states:
        table.add_column(state, justify="right")
    for step in dict.fromkeys(p.step for p in result.points):
        counts = result.counts(step)
        table.add_row(step, *(str(counts.get(s, "")) for s in states))
    console.print(table)
    missing = result.not_completed()
    if not missing:
        console.print(f"every point completed ({len(result.points)})")
        return
    listed = Table(title="points that did not complete", title_justify="left")
    for column in ("step", "point", "parameters", "state", "exit", "log or reason"):
        listed.add_column(column)
    for p in missing[:_LISTED]:
        params = ", ".join(f"{k}={v}" for k, v in p.params.items())
        where = p.log if p.state is not None and p.log else (p.reason or "")
        if p.reason and p.state is not None:
            where = f"{where}\n{p.reason}"
        code = "" if p.exit_code is None else str(p.exit_code)
        listed.add_row(p.step, str(p.index), params, p.state_text, code, where)
    console.print(listed)
    if len(missing) > _LISTED:
        console.print(f"and {len(missing) - _LISTED} more (all of them: --json)")
