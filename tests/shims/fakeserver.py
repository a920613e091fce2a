"""What every fake scheduler of tests/shims shares: its daemon's loop, and how one of
its programs (sbatch, qsub, bjobs, condor_q, ...) answers.

Each fake keeps its cluster in a small JSON state file under an exclusive lock; its
daemon (slurmd, the PBS server, lsfd, the schedd) takes the lock every tick to start,
signal and reap jobs; its programs take it once per call, so every answer is a
consistent picture, as a real controller's is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

Program = Callable[[Any, list[str], list[str], list[str]], int]


def serve(tick: Callable[[], None], tick_s: float) -> None:
    """Call ``tick`` every ``tick_s`` seconds until SIGTERM (the caller then kills what
    still runs)."""
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    while not stop:
        tick()
        time.sleep(tick_s)


def answer(
    program: str,
    args: Sequence[str],
    state: contextlib.AbstractContextManager[Any],
    programs: dict[str, Program],
    calls_variable: str,
) -> int:
    """Run ``program`` (one of ``programs``) on the locked ``state``: log the call to
    the file ``$calls_variable`` names (if set), print what it wrote, return its status."""
    out: list[str] = []
    err: list[str] = []
    with state as locked:
        log_call(calls_variable, program, args)
        rc = programs[program](locked, list(args), out, err)
    reply(out, err)
    return rc


def log_call(calls_variable: str, program: str, args: Sequence[str]) -> None:
    """Append the call, tab-separated, to the file ``$calls_variable`` names (if set)."""
    calls = os.environ.get(calls_variable)
    if calls:
        with open(calls, "a") as log:
            log.write("\t".join([program, *args]) + "\n")


def reply(out: list[str], err: list[str]) -> None:
    """Print a program's output and errors, a line each."""
    if out:
        sys.stdout.write("\n".join(out) + "\n")
    if err:
        sys.stderr.write("\n".join(err) + "\n")
