"""Exit statuses and jobfleet's one-line errors and warnings: what the ``jobfleet``
command itself needs before any command runs (``jobfleet --help`` imports no more;
:mod:`.common` offers these too)."""

from __future__ import annotations

import select
import sys
from typing import NoReturn

import click

from jobfleet.errors import shorten

__all__ = [
    "EXIT_FAILED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "MAX_ERROR_LINE",
    "fail",
    "stdout_gone",
    "warn",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


def fail(message: str, status: int) -> NoReturn:
    """Print ``message`` as one ``jobfleet: error:`` line and exit with ``status``."""
    one_line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"jobfleet: error: {shorten(one_line, MAX_ERROR_LINE)}", err=True)
    sys.exit(status)


#: The longest error line printed: a message quoting a huge value is cut in the middle.
MAX_ERROR_LINE = 480


def warn(message: str) -> None:
    """One ``jobfleet: warning:`` line on stderr, as long as an error line may be."""
    one_line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"jobfleet: warning: {shorten(one_line, MAX_ERROR_LINE)}", err=True)


def stdout_gone() -> bool:
    """Whether nobody reads our standard output any more (``jobfleet status | head``
    after head ended): a pipe whose reader closed polls as an error."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real file (captured output)
        return False
