"""The ``jobfleet`` command: parses, calls the library, prints. Nothing else.

Each command group is a module of its own (``submit``, ``jobs``, ``queue``,
``config_cmd``); this one makes them one command and turns what click raises
into jobfleet's one-line errors.

Exit statuses: 0 success; 1 an operation failed (or ``wait`` saw a job not
succeed); 2 bad input or usage; 3 ``wait`` timed out.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from jobfleet import __version__
from jobfleet.cli.clean import clean
from jobfleet.cli.common import EXIT_FAILED, EXIT_USAGE, fail, stdout_gone
from jobfleet.cli.config_cmd import config_group
from jobfleet.cli.debug import debug_group
from jobfleet.cli.info import info
from jobfleet.cli.jobs import cancel, logs, status, wait
from jobfleet.cli.options import options
from jobfleet.cli.pipe import pipe_group
from jobfleet.cli.queue import adopt, queue, top
from jobfleet.cli.report import report
from jobfleet.cli.result import result
from jobfleet.cli.show import show
from jobfleet.cli.study import run, study_group
from jobfleet.cli.submit import submit

__all__ = ["cli", "main"]

# click >= 8.2 raises this (a UsageError carrying the help text) for a bare
# `jobfleet` or `jobfleet config`; older versions print the help themselves.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jobfleet")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
def cli(debug: bool) -> None:
    """Run work on any HPC scheduler, or on this machine, with one job model."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="jobfleet: %(levelname)s: %(message)s",
    )


for _command in (
    submit,
    status,
    show,
    wait,
    cancel,
    logs,
    result,
    clean,
    run,
    study_group,
    pipe_group,
    report,
    queue,
    adopt,
    top,
    options,
    info,
    config_group,
    debug_group,
):
    cli.add_command(_command)


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
    except BrokenPipeError as exc:
        if not stdout_gone():
            fail(str(exc), EXIT_FAILED)  # another pipe of ours broke: say so
        # `jobfleet status | head`: the reader went away. End quietly, as other
        # tools do, and keep Python from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
    except click.exceptions.Abort:
        fail("aborted", EXIT_FAILED)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()  # the help, as click prints it; not an error message
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "jobfleet"
        message = exc.format_message()
        if isinstance(exc, click.MissingParameter) and exc.param is not None:
            message = _MISSING.get(exc.param.name or "", message)
        fail(f"{message} (see `{where} --help`)", EXIT_USAGE)
    except click.ClickException as exc:
        fail(exc.format_message(), EXIT_USAGE)
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
