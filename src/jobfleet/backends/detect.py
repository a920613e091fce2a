"""Which schedulers this machine has: ``--backend auto`` and ``jobfleet info``.

Each backend that drives a scheduler's commands can look for them
(:attr:`~jobfleet.backends.base.BackendType.detect`): on PATH first (free), then
one short command that must answer (its version, or the server's). ``auto``
takes the first scheduler of :data:`AUTO_ORDER` that was found and answered,
then any other installed backend that did, else ``local``.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jobfleet import backends as catalog
from jobfleet.errors import CommandError
from jobfleet.runner import CommandResult, Runner, SubprocessRunner, within

__all__ = [
    "AUTO",
    "AUTO_ORDER",
    "DETECT_TIMEOUT_S",
    "Found",
    "choose",
    "find_all",
    "probe",
    "resolve",
    "resolve_cached",
    "silence",
    "which",
]

#: The backend name that means "the scheduler this machine has".
AUTO = catalog.AUTO
#: The order ``auto`` tries schedulers in (PBS Pro before Torque: both answer ``qstat``).
AUTO_ORDER = ("slurm", "pbs", "torque", "lsf", "sge", "htcondor")
#: The longest wait for one detection command.
DETECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Found:
    """A scheduler whose commands are on this machine.

    Attributes:
        backend: the backend that drives it.
        command: the path of the command it was found by.
        version: the version it reported (None: it did not say).
        answered: whether it answered (a client whose server is down did not).
        why: what went wrong when it did not answer, or why it is not this one.
        accounting: whether finished jobs can be asked about (None: unknown).
        facts: what is in force there and matters to jobs (units, name limits), in words.
    """

    backend: str
    command: str
    version: str | None = None
    answered: bool = True
    why: str = ""
    accounting: bool | None = None
    facts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # One line, whatever a scheduler's command printed: info shows it in a sentence.
        lines = [line.strip() for line in self.why.splitlines() if line.strip()]
        object.__setattr__(self, "why", "; ".join(lines)[:300])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of one scheduler of ``jobfleet info --json``."""
        return {
            "backend": self.backend,
            "command": self.command,
            "version": self.version,
            "answered": self.answered,
            "why": self.why or None,
            "accounting": self.accounting,
            "facts": dict(self.facts),
        }


def which(program: str) -> str | None:
    """The path of ``program`` on PATH, or None."""
    return shutil.which(program)


def probe(argv: Sequence[str], runner: Runner | None = None) -> CommandResult | None:
    """Run one short detection command; None when it could not run or hung."""
    with within(DETECT_TIMEOUT_S):
        try:
            return (runner or SubprocessRunner()).run(list(argv), timeout_s=DETECT_TIMEOUT_S)
        except CommandError:
            return None


def silence(what: str, result: CommandResult | None) -> str:
    """Why a detection command did not answer, in one line."""
    if result is None:
        return f"{what} did not answer within {DETECT_TIMEOUT_S:g}s"
    text = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return f"{what}: {text[0][:200] if text else f'exit status {result.returncode}'}"


def find_all(types: Mapping[str, Any], runner: Runner | None = None) -> list[Found]:
    """Every scheduler of the installed backends (``types``: name -> BackendType) whose
    commands are on PATH, in ``auto``'s order; all looked for at once (each of their
    commands bounded by :data:`DETECT_TIMEOUT_S`)."""
    looks = [(n, types[n].detect) for n in _ordered(types) if types[n].detect is not None]
    if not looks:
        return []
    with ThreadPoolExecutor(max_workers=len(looks)) as pool:
        futures = [pool.submit(contextvars.copy_context().run, look, runner) for _, look in looks]
        return [seen for f in futures if (seen := f.result()) is not None]


def resolve(types: Mapping[str, Any], runner: Runner | None = None) -> tuple[str, str]:
    """The backend ``auto`` stands for, and why: the first scheduler in order that
    answers (the later ones are not asked), else ``local``."""
    found = []
    for name in _ordered(types):
        look = types[name].detect
        seen = look(runner) if look is not None else None
        if seen is not None:
            found.append(seen)
            if seen.answered:
                break
    return choose(found)


_resolved: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {}
_resolved_lock = threading.Lock()


def resolve_cached(types: Mapping[str, Any]) -> tuple[str, str]:
    """:func:`resolve`, once per process for one PATH and set of backends."""
    key = (os.environ.get("PATH", ""), tuple(types))
    with _resolved_lock:
        if key not in _resolved:
            _resolved[key] = resolve(types)
        return _resolved[key]


def _ordered(types: Mapping[str, Any]) -> list[str]:
    return [n for n in AUTO_ORDER if n in types] + [n for n in types if n not in AUTO_ORDER]


def choose(found: Sequence[Found], order: Sequence[str] = AUTO_ORDER) -> tuple[str, str]:
    """The backend ``auto`` stands for among ``found``, and why, in words."""
    answering = {f.backend: f for f in found if f.answered}
    ranked = [name for name in order if name in answering]
    ranked += sorted(name for name in answering if name not in order)
    if ranked:
        pick = answering[ranked[0]]
        version = f" {pick.version}" if pick.version else ""
        return pick.backend, f"{pick.backend}{version} answered at {pick.command}"
    silent = [f for f in found if not f.answered]
    if silent:
        names = ", ".join(f"{f.backend} ({f.why or 'did not answer'})" for f in silent)
        return "local", f"no scheduler answered: {names}; this machine's own cores"
    return "local", "no scheduler's commands on PATH; this machine's own cores"
