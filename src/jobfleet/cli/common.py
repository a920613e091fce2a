"""What every command shares: exit statuses and error handling (from :mod:`.exits`),
configuration options, JSON output, and how states, durations and jobs are shown."""

from __future__ import annotations

import errno
import functools
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from jobfleet.cli import jsonout
from jobfleet.cli.exits import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    MAX_ERROR_LINE,
    fail,
    stdout_gone,
    warn,
)
from jobfleet.errors import JobfleetError, shown
from jobfleet.states import JobRecord, JobState

if TYPE_CHECKING:
    from rich.text import Text

    from jobfleet.config import Config

__all__ = [
    "EXIT_FAILED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "MAX_ERROR_LINE",
    "config_options",
    "duration",
    "element_summary",
    "fail",
    "handle_errors",
    "job_ids_completed",
    "load",
    "print_jobs",
    "print_json",
    "state_text",
    "stdout_gone",
    "warn",
]

F = TypeVar("F", bound=Callable[..., Any])

_NUMBER_RE = re.compile(r"-?[0-9]{1,18}")
_DECIMAL_RE = re.compile(r"-?(?:[0-9]{1,12}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})")


if TYPE_CHECKING:  # click 8.2 made ParamType generic; 8.1 (still supported) is not
    _IntType = click.ParamType[int]
    _FloatType = click.ParamType[float]
else:
    _IntType = _FloatType = click.ParamType


class WholeNumber(_IntType):
    """An integer option written with the digits 0-9 only.

    Python's int() also takes other scripts' digits ("٣") and surrounding
    whitespace ("4\\n"); a scheduler directive must never receive what the user
    did not type.
    """

    name = "integer"

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _NUMBER_RE.fullmatch(value):
            number = int(value)
        else:
            self.fail(f"{shown(value)} is not a whole number (digits 0-9)", param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{number} is not in the range x>={self.minimum}.", param, ctx)
        return number


class Decimal(_FloatType):
    """A number of seconds written with the digits 0-9 and one optional point."""

    name = "float"

    def __init__(self, minimum: float | None = None) -> None:
        self.minimum = minimum

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, str) and _DECIMAL_RE.fullmatch(value)
        ):
            number = float(value)
        else:
            self.fail(f"{shown(value)} is not a number (digits 0-9, e.g. 2.5)", param, ctx)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{number} is not in the range x>={self.minimum}.", param, ctx)
        return number


def handle_errors(func: F) -> F:
    """Turn library errors into one line and an exit status; never a traceback
    unless ``--debug`` was given."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except JobfleetError as exc:
            if debug:
                raise
            fail(str(exc), exc.exit_status)
        except BrokenPipeError as exc:
            if stdout_gone():
                raise  # the reader of our output went away: main() ends quietly
            fail(str(exc), EXIT_FAILED)
        except OSError as exc:
            if debug:
                raise
            fail(_os_error(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted (jobs keep running; see `jobfleet status`)", 130)

    return wrapper  # type: ignore[return-value]


#: What to do about an operating-system error, by errno (the registry says its own).
_OS_FIX = {
    errno.ENOSPC: "free some space and try again",
    errno.EDQUOT: "free some space (over quota) and try again",
    errno.EACCES: "check the permissions",
    errno.EROFS: "the file system is read-only",
}


def _os_error(exc: OSError) -> str:
    """An OSError that reached the command line: what, where, and the fix if known."""
    what = exc.strerror or str(exc)
    where = f": {exc.filename}" if exc.filename else ""
    fix = _OS_FIX.get(exc.errno or 0)
    return f"{what}{where}" + (f"; {fix}" if fix else "")


def job_ids_completed(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Job ids as the shell completes them (:mod:`jobfleet.cli.completion`, imported
    only while completing)."""
    from jobfleet.cli.completion import complete_job_ids

    return complete_job_ids(ctx, param, incomplete)


def _profiles_completed(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    from jobfleet.cli.completion import complete_profiles

    return complete_profiles(ctx, param, incomplete)


def config_options(func: F) -> F:
    """``--config`` and ``--profile``, accepted by every command that reads configuration."""
    func = click.option(
        "--profile",
        metavar="NAME",
        help="Apply this configuration profile.",
        shell_complete=_profiles_completed,
    )(func)
    return click.option(
        "--config", "config_path", metavar="PATH", help="Configuration file to read."
    )(func)


def load(
    config_path: str | None, profile: str | None, overrides: dict[str, Any] | None = None
) -> Config:
    """The configuration the options ``--config`` and ``--profile`` (and a command's
    own options, as ``overrides``) ask for."""
    from jobfleet.config import load_config  # what every backend's settings import

    return load_config(config_path, profile=profile, overrides=overrides)


def print_json(data: Any) -> None:
    click.echo(jsonout.dumps(data))


_STATE_STYLE = {
    JobState.PENDING: "yellow",
    JobState.RUNNING: "cyan",
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
    JobState.TIMEOUT: "red",
    JobState.OUT_OF_MEMORY: "red",
    JobState.LOST: "red",
    JobState.UNKNOWN: "dim",
}


def state_text(state: JobState) -> Text:
    from rich.text import Text  # rich is for tables: --json and --help go without it

    return Text(state.value, style=_STATE_STYLE[state])


def duration(seconds: float | None) -> str:
    """A short duration for tables: ``45s``, ``3m05s``, ``2h03m``, ``4d02h``."""
    from jobfleet.units import short_duration

    return "-" if seconds is None else short_duration(seconds)


def element_summary(counts: Mapping[str, int]) -> str:
    """How many elements of an array are in each state: ``2 completed, 1 running``."""
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def print_jobs(
    records: Sequence[JobRecord],
    stale: Collection[str] = (),
    counts: Callable[[JobRecord], Mapping[str, int] | None] | None = None,
) -> None:
    """A table of jobs, one row each (``status``, ``adopt``); jobs of the ``stale``
    backends (which did not answer) show their state as last known. ``counts``: how
    many elements of an array are in each state (default: from its elements;
    :meth:`~jobfleet.engine.views.Report.counts` for arrays read without them)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from jobfleet.engine.views import element_counts

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NAME", "BACKEND", "NATIVE", "STATE", "EXIT", "DETAIL"):
        table.add_column(column, no_wrap=column != "DETAIL")
    for r in records:
        of_elements = (counts or element_counts)(r)
        detail = element_summary(of_elements) if of_elements else (r.reason or "")
        # Text, not markup: a name or reason may hold brackets ("[x]", "123_[5-10]").
        table.add_row(
            Text(r.id),
            Text(r.name),
            Text(r.backend),
            Text(r.native_id or "-"),
            state_text(r.state) + (" (last known)" if r.backend in stale else ""),
            Text("-" if r.exit_code is None else str(r.exit_code)),
            Text(detail),
        )
    Console().print(table)
