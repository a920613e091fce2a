"""``jobfleet options``: every job option, its default and units, and what it becomes
on each backend (read off dry runs: see :mod:`jobfleet.engine.options`)."""

from __future__ import annotations

import logging

import click
from rich.text import Text

from jobfleet import backends as catalog
from jobfleet.cli.common import config_options, handle_errors, load, print_json
from jobfleet.engine.fleet import Fleet
from jobfleet.engine.options import TABLE_MACHINE, option_rows, options_markdown

__all__ = ["options"]


@click.command()
@config_options
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="NAME",
    help="Only this backend (repeatable; default: every installed one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (keys below).")
@click.option("--markdown", is_flag=True, help="Print the table of docs/options.md.")
@handle_errors
def options(
    config_path: str | None,
    profile: str | None,
    backends: tuple[str, ...],
    as_json: bool,
    markdown: bool,
) -> None:
    """Every job option (resources, environment), its default and units, and what it becomes on
    each backend: directives and submit arguments, a refusal saying why, or what
    the backend does with it. Read off a dry run of a job with the option set to
    the example value, so it is what jobfleet does, with your configuration (the
    local backend taken to have 64 cores, 256 GiB and 8 GPUs, so that every example
    fits whatever this machine has).

    \b
    --json prints a list of objects with the keys:
      key       the option's configuration key (resources.memory)
      default   its default, or null when left to the site
      doc       what it means, with its units
      sample    the example value tried
      becomes   backend name -> what the example became there
    """
    names = list(dict.fromkeys(backends)) or catalog.names()
    for name in names:
        catalog.get(name)  # an unknown name: the catalog's error names the valid ones
    # The local backend taken as TABLE_MACHINE: what an option does, not whether it fits here.
    with Fleet(load(config_path, profile, overrides=dict(TABLE_MACHINE))) as fleet:
        # The dry runs would warn of options a backend ignores: the table says so instead.
        logging.disable(logging.WARNING)
        try:
            rows = option_rows(fleet.dry_run, lambda n: fleet.backend(n).option_notes, names)
        finally:
            logging.disable(logging.NOTSET)
    if as_json:
        print_json([row.to_dict() for row in rows])
    elif markdown:
        click.echo(options_markdown(rows, names), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_lines=True)
        table.add_column("OPTION", no_wrap=True)
        table.add_column("DEFAULT", overflow="fold")
        table.add_column("MEANING", overflow="fold")
        for name in names:
            table.add_column(name.upper(), overflow="fold")
        for row in rows:
            default = "-" if row.default is None else repr(row.default)
            cells = [Text(row.becomes(name)) for name in names]
            table.add_row(Text(row.key), Text(default), Text(row.doc), *cells)
        Console().print(table)
