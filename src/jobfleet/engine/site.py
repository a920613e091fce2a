"""This machine's schedulers and their output, for the command line: what ``auto``
stands for (``jobfleet info``), and a saved output read the way a poll reads it
(``jobfleet debug parse``). No Fleet and no registry: nothing here touches jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobfleet import backends as catalog
from jobfleet.backends.detect import AUTO, Found, choose, find_all
from jobfleet.backends.formats import SavedOutput, UnreadableOutputError, read_saved

__all__ = ["AUTO", "Schedulers", "UnreadableOutputError", "read_output", "schedulers"]


@dataclass(frozen=True, slots=True)
class Schedulers:
    """The schedulers found here, and what ``auto`` picks among them.

    Attributes:
        found: each scheduler whose commands are on PATH, in ``auto``'s order.
        auto: the backend ``auto`` stands for.
        why: why, in words.
    """

    found: list[Found]
    auto: str
    why: str


def schedulers() -> Schedulers:
    """Look for every installed backend's scheduler (all at once, each bounded)."""
    found = find_all(catalog.available())
    auto, why = choose(found)
    return Schedulers(found, auto, why)


def read_output(backend: str, stdout: str, stderr: str = "") -> SavedOutput:
    """One saved output of a command ``backend`` runs, read by its own parsers.

    Raises:
        ConfigError: no such backend.
        UnreadableOutputError: the backend reads no output, or none of its formats
            reads this one (the message names them).
    """
    kind = catalog.get(backend)
    if kind.formats is None:
        raise UnreadableOutputError(
            f"the {backend} backend reads no scheduler output (it runs no commands)"
        )
    return read_saved(kind.formats(), stdout, stderr, backend)
