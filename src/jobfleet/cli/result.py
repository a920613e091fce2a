"""``jobfleet result ID``: what the Python call(s) of a job returned or raised."""

from __future__ import annotations

import click

from jobfleet.cli.common import (
    EXIT_FAILED,
    config_options,
    fail,
    handle_errors,
    job_ids_completed,
    load,
    print_json,
)
from jobfleet.engine.fleet import Fleet

__all__ = ["result"]


@click.command()
@config_options
@click.argument("job_id", shell_complete=job_ids_completed)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (keys below).")
@handle_errors
def result(config_path: str | None, profile: str | None, job_id: str, as_json: bool) -> None:
    """What the Python call(s) of a job made by jobfleet.Executor returned (their
    repr) or raised (type, message, remote traceback). Exit status 0 when every call
    returned, 1 when one raised or the job ended without a result or has not ended.

    \b
    --json prints an object with the keys:
      id, state, exit_code   the job
      calls                  a list of {index, position, ok, value, type,
                             message, traceback}: index is the array element
                             (null: a single job), position the call's place in it
    """
    from jobfleet.futures.results import call_results  # cloudpickle: only when asked

    with Fleet(load(config_path, profile)) as fleet:
        record = fleet.refresh(fleet.records([job_id]))[0]
    if not record.settled:
        fail(f"job {job_id} has not ended ({record.state.value}): jobfleet wait {job_id}", 1)
    calls = call_results(record)
    if as_json:
        print_json(
            {
                "id": record.id,
                "state": record.state.value,
                "exit_code": record.exit_code,
                "calls": [c.to_dict() for c in calls],
            }
        )
    else:
        several = len(calls) > 1
        for call in calls:
            where = ""
            if several:
                where = f"[{call.index}]" if call.index is not None else ""
                where += f"#{call.position}: " if where or call.position else ": "
            if call.ok:
                click.echo(f"{where}{call.value}")
            elif call.type:
                click.echo(f"{where}{call.type}: {call.message}")
                click.echo(call.traceback.rstrip(), err=True)
            else:
                click.echo(f"{where}{call.message}")
    if not all(c.ok for c in calls):
        raise SystemExit(EXIT_FAILED)
