"""The ``jobfleet`` command: parses, calls the library, prints. Nothing else.

Each command group is a module of its own (``submit``, ``jobs``, ``queue``,
``config_cmd``); this one makes them one command, importing each module only
when one of its commands runs (:data:`COMMANDS`), and turns what click raises
into jobfleet's one-line errors.

Exit statuses: 0 success; 1 an operation failed (or ``wait`` saw a job not
succeed); 2 bad input or usage; 3 ``wait`` timed out.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from jobfleet import __version__
from jobfleet.cli.exits import EXIT_FAILED, EXIT_USAGE, fail, stdout_gone

__all__ = ["cli", "main"]

# click >= 8.2 raises this (a UsageError carrying the help text) for a bare
# `jobfleet` or `jobfleet config`; older versions print the help themselves.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


#: Every command: its name, the module of jobfleet.cli that defines it and the
#: attribute there, and its one-line help as ``jobfleet --help`` lists it (click
#: shortens it to the terminal's width). A command's module is imported only when
#: that command runs (or its own help is asked for): ``jobfleet --help`` imports
#: none, and ``jobfleet status`` not what ``submit`` or ``report`` need.
#: tests/cli/test_cli_startup.py holds this table to the commands themselves.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "adopt": ("queue", "adopt", "Record jobs on the scheduler that the registry does not know."),
    "cancel": (
        "jobs",
        "cancel",
        "Cancel jobs (every element of arrays), or some elements, or send a signal.",
    ),
    "clean": (
        "clean",
        "clean",
        "Remove the files of ended jobs: their directories (script, logs, exit-code files),"
        " those of their earlier attempts, and a Python call's payload.",
    ),
    "completion": (
        "completion",
        "completion",
        "Print the shell completion script for SHELL (bash, zsh or fish).",
    ),
    "config": ("config_cmd", "config_group", "Inspect the configuration."),
    "debug": (
        "debug",
        "debug_group",
        "Tools for bug reports: how jobfleet reads your scheduler's output.",
    ),
    "info": (
        "info",
        "info",
        "Each scheduler found on this machine (its command, version, whether it answers,"
        " whether it keeps accounting, the limits and units in force), the backend `auto`"
        " picks and why, and the configuration file and profile in use.",
    ),
    "logs": ("jobs", "logs", "Print a job's standard output (or error)."),
    "options": (
        "options",
        "options",
        "Every job option (resources, environment), its default and units, and what it"
        " becomes on each backend: directives and submit arguments, a refusal saying why,"
        " or what the backend does with it.",
    ),
    "pipe": (
        "pipe",
        "pipe_group",
        "Many small tasks inside one array allocation, each finished exactly once.",
    ),
    "queue": (
        "queue",
        "queue",
        "Every unfinished job the scheduler knows for you, jobfleet's or not.",
    ),
    "report": ("report", "report", "Draw the jobs ID..."),
    "result": (
        "result",
        "result",
        "What the Python call(s) of a job made by jobfleet.Executor returned (their repr)"
        " or raised (type, message, remote traceback).",
    ),
    "run": (
        "study",
        "run",
        "Run a study: each step as ONE array job, in the study's output directory"
        " (one directory per point, with its params.json).",
    ),
    "show": (
        "show",
        "show",
        "Show one job in full: state, times, hosts, memory and CPU used, per element.",
    ),
    "status": ("jobs", "status", "Show jobs (default: the most recent ones)."),
    "study": ("study", "study_group", "Studies run with jobfleet run."),
    "submit": ("submit", "submit", "Submit COMMAND (after --) as a job; prints the new job id."),
    "top": (
        "queue",
        "top",
        "A live table of your jobs: the unfinished ones and those that ended in the last"
        " 10 minutes (--all: the most recent ones, ended or not).",
    ),
    "wait": (
        "jobs",
        "wait",
        "Wait until the jobs end; exit 0 only if every one completed successfully.",
    ),
}

# click >= 8.4 names a mistyped command's likely meaning ("Did you mean 'status'?")
# from the group's commands; this group lists them from COMMANDS instead.
_NO_SUCH_COMMAND: Any = getattr(click.exceptions, "NoSuchCommand", None)


class LazyGroup(click.Group):
    """A group whose commands are imported when used (click's documented pattern:
    ``list_commands`` and ``get_command``); its help lists them from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"jobfleet.cli.{module}"), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - a wrong table
            raise TypeError(f"jobfleet.cli.{module}.{attribute} is not a click command")
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their one-line helps, as click lists them, without
        importing any command."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._short_help(ctx, name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str:
        if name in COMMANDS:
            # A stand-in with the same first sentence, shortened by click's own rule.
            return click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit)
        command = self.get_command(ctx, name)
        return command.get_short_help_str(limit) if command is not None else ""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if _NO_SUCH_COMMAND is None or not isinstance(exc, _NO_SUCH_COMMAND):
                raise
            raise _NO_SUCH_COMMAND(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=exc.ctx
            ) from None


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from jobfleet.cli.info import version_lines  # asks each scheduler found its version

    for line in version_lines():
        click.echo(line)
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help=f"Print jobfleet's version ({__version__}), Python's, and each scheduler's found here.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
def cli(debug: bool) -> None:
    """Run work on any HPC scheduler, or on this machine, with one job model."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="jobfleet: %(levelname)s: %(message)s",
    )


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
