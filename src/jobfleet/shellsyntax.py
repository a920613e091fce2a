"""Prologue and epilogue lines read by bash's parser (``bash -n``) before a job is
submitted, so that a line which is not complete shell on its own (an ``if`` without its
``fi``, an unbalanced quote or parenthesis, a here-document) is refused with the shell's
own words, rather than found by the job once it runs.

The job script contains such a line anyway (each runs through ``command eval``, see
:mod:`jobfleet.scriptsetup`): this check is for the message, not for safety. Where bash
is missing the check is skipped; each line is parsed once per process (cached).
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess

from jobfleet.environment import Environment
from jobfleet.errors import SpecError, shown

__all__ = ["check_syntax", "syntax_problem"]

log = logging.getLogger(__name__)

_FIELDS = ("prologue", "epilogue")
_TIMEOUT_S = 10.0
_PREFIX_RE = re.compile(r"^bash: (?:-c: )?(?:line [0-9]+: )?")


def check_syntax(env: Environment) -> None:
    """Raise :class:`SpecError` naming the first prologue or epilogue line bash cannot parse.

    Raises:
        SpecError: ``environment.prologue[i]`` (or ``epilogue[i]``), with bash's message.
    """
    for field in _FIELDS:
        for i, line in enumerate(getattr(env, field)):
            problem = syntax_problem(line)
            if problem is not None:
                raise SpecError(
                    f"environment.{field}[{i}]",
                    f"{shown(line)} is not complete shell on its own line (bash -n: {problem}); "
                    "close every quote and bracket, end every if with fi and every loop with "
                    "done on the same line, and write a here-document with printf or in an "
                    "env file instead",
                )


@functools.lru_cache(maxsize=4096)
def syntax_problem(line: str) -> str | None:
    """What ``bash -n`` says of ``line`` (an error or a warning), or None when it is clean.

    extglob is on, as a prologue's ``shopt -s extglob`` may turn it on for later lines;
    the environment is empty, so no ``BASH_ENV`` is read.
    """
    bash = shutil.which("bash")
    if bash is None:
        log.debug("no bash on PATH: prologue and epilogue lines not checked")
        return None
    try:
        proc = subprocess.run(
            ["bash", "-n", "-O", "extglob", "-c", line],
            executable=bash,  # argv[0] "bash": its messages begin "bash: "
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            env={"LC_ALL": "C"},
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("bash -n could not check a prologue or epilogue line: %s", exc)
        return None
    said = [_without_prefix(x) for x in proc.stderr.splitlines() if x.strip()]
    if proc.returncode == 0 and not said:
        return None
    return "; ".join(said) or f"exit status {proc.returncode}"


def _without_prefix(message: str) -> str:
    """``bash: -c: line 1: syntax error ...`` -> ``syntax error ...``."""
    return _PREFIX_RE.sub("", message, count=1)
