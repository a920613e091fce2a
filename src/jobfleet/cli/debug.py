"""``jobfleet debug parse``: read one saved scheduler output the way a poll would.

For bug reports from sites whose output differs: the user saves what a scheduler
command printed, and this says which format it is and what jobfleet makes of it
(:mod:`jobfleet.backends.formats`).
"""

from __future__ import annotations

import sys

import click
from rich.text import Text

from jobfleet.cli.common import EXIT_USAGE, fail, handle_errors, print_json
from jobfleet.engine.site import UnreadableOutputError, read_output

__all__ = ["debug_group"]

#: The most of a saved output read (status of many thousands of jobs fits easily).
MAX_SAVED_BYTES = 64 * 2**20


@click.group("debug")
def debug_group() -> None:
    """Tools for bug reports: how jobfleet reads your scheduler's output."""


@debug_group.command("parse")
@click.argument("backend", metavar="BACKEND")
@click.argument("path", metavar="FILE")
@click.option("--stderr", "stderr_path", metavar="FILE", help="What the command printed on stderr.")
@click.option("--json", "as_json", is_flag=True, help='Print {"format": ..., "jobs": [...]}.')
@handle_errors
def parse_cmd(backend: str, path: str, stderr_path: str | None, as_json: bool) -> None:
    """Read FILE, one saved output of a command BACKEND runs (its submit command, or a
    status or accounting command), and print which format it is and the jobs it
    holds, with jobfleet's state names. FILE may be - for stdin.

    \b
    --json prints an object with the keys:
      format  the format recognised (e.g. squeue, sacct, qstat-xml)
      jobs    a list of {native_id, index, state, exit_code, reason}; index is
              null for a job that is not an array element, exit_code null when
              the output carries none
    Output no format can read: exit status 2 and one line saying so.
    """
    stdout = _read(path, "FILE")
    stderr = _read(stderr_path, "--stderr") if stderr_path is not None else ""
    try:
        saved = read_output(backend, stdout, stderr)
    except UnreadableOutputError as exc:
        fail(f"{path}: {exc}", EXIT_USAGE)
    if as_json:
        print_json(saved.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    click.echo(f"format: {saved.format.name} (what `{saved.format.command}` prints)")
    jobs = saved.jobs()
    if not jobs:
        click.echo("no jobs in it")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NATIVE_ID", "INDEX", "STATE", "EXIT_CODE", "REASON"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        cells = [job["native_id"], job["index"], job["state"], job["exit_code"], job["reason"]]
        table.add_row(*(Text("-" if c is None else str(c)) for c in cells))
    Console().print(table)


def _read(path: str, what: str) -> str:
    """A saved output, at most :data:`MAX_SAVED_BYTES`, as text (undecodable bytes replaced)."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_SAVED_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_SAVED_BYTES + 1)
    except OSError as exc:
        fail(f"{what} {path}: {exc.strerror or exc}", EXIT_USAGE)
    if len(data) > MAX_SAVED_BYTES:
        fail(
            f"{what} {path}: larger than {MAX_SAVED_BYTES // 2**20} MiB; "
            "save the output of fewer jobs",
            EXIT_USAGE,
        )
    return data.decode("utf-8", errors="replace")
