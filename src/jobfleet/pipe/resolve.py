"""Every task's one state, resolved from the workers' journals by any process.

A journal is one worker's append-only record (:class:`~jobfleet.pipe.store.Journal`):

- ``claim``: it holds block ``b`` (slots ``b`` to ``end - 1``) at ``epoch``; a takeover's
  claim lists, in ``inherit``, the slots already ended and the epoch of each one's
  valid end (what the block's journals said when it took over), and in ``tries`` how
  many times each slot was started before;
- ``start`` / ``end``: a slot's attempt began, or ended (``completed``, ``failed``, or
  ``retry``: it runs again), with its exit code and where its output is;
- ``done``: the block's every slot ended.

Fencing: of all end records of a slot, the one that counts is the one at the block's
latest claimed epoch, or the one its latest claim inherited. A worker that lost its
lease while running (its claim was taken over at a higher epoch) may still append an
end record: no claim inherits it, so no reader counts it, and the new owner's record
stands. Each slot thus resolves to exactly one terminal record or none.

A retry slot (``{"ref": N}`` in a bundle, added by ``pipe retry``) runs task N again:
task N's state is that of its latest slot.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jobfleet.pipe.model import TaskState
from jobfleet.pipe.store import RunDir

__all__ = ["Resolver", "SlotView"]

log = logging.getLogger(__name__)

_TERMINAL_ENDS = ("completed", "failed")


@dataclass(slots=True)
class _Claim:
    end: int
    worker: str
    inherit: dict[int, int]
    tries: dict[int, int]


@dataclass(frozen=True, slots=True)
class SlotView:
    """One slot as the journals tell it.

    Attributes:
        state: pending, running, completed or failed (cancelled is the run's to say).
        end: its counted end record (exit code, output, worker), when it ended.
        tries: attempts started so far.
    """

    state: TaskState
    end: dict[str, object] | None = None
    tries: int = 0


@dataclass(slots=True)
class _Reader:
    offset: int = 0
    tail: bytes = b""


@dataclass
class Resolver:
    """Reads the journals of a run incrementally (only what was appended since the last
    :meth:`refresh`) and resolves each slot."""

    run: RunDir
    claims: dict[int, dict[int, _Claim]] = field(default_factory=dict)
    ends: dict[tuple[int, int], dict[str, object]] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)  # slot -> attempts started
    started_at: dict[tuple[int, int], float] = field(default_factory=dict)
    done: set[tuple[int, int]] = field(default_factory=set)
    _readers: dict[str, _Reader] = field(default_factory=dict)

    def refresh(self) -> None:
        """Read what the journals gained since the last call."""
        folder = self.run.root / "journal"
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.endswith(".jsonl")]
        for name in names:
            reader = self._readers.setdefault(name, _Reader())
            with open(folder / name, "rb") as fh:
                fh.seek(reader.offset)
                data = fh.read()
            if not data:
                continue
            reader.offset += len(data)
            data = reader.tail + data
            complete, _, reader.tail = data.rpartition(b"\n")
            if complete:
                for line in complete.split(b"\n"):
                    try:
                        record = json.loads(line)
                    except ValueError:  # a damaged line (a disk that filled up): not ours
                        log.warning("%s: a journal line that is not JSON; skipped", name)
                        continue
                    self._take(record, name[:-6])

    def _take(self, record: dict[str, object], worker: str) -> None:
        kind = record["k"]
        block, epoch = int(record["b"]), int(record["e"])  # type: ignore[call-overload]
        if kind == "claim":
            self.claims.setdefault(block, {})[epoch] = _Claim(
                int(record["end"]),  # type: ignore[call-overload]
                worker,
                {int(k): int(v) for k, v in record.get("inherit", {}).items()},  # type: ignore[attr-defined]
                {int(k): int(v) for k, v in record.get("tries", {}).items()},  # type: ignore[attr-defined]
            )
        elif kind == "start":
            slot = int(record["s"])  # type: ignore[call-overload]
            self.starts[slot] = self.starts.get(slot, 0) + 1
            self.started_at[(slot, epoch)] = float(record.get("at", 0.0))  # type: ignore[arg-type]
        elif kind == "end":
            if record.get("state") in _TERMINAL_ENDS:
                slot = int(record["s"])  # type: ignore[call-overload]
                self.ends.setdefault((slot, epoch), {**record, "w": worker})
        elif kind == "done":
            self.done.add((block, epoch))

    def latest(self, block: int) -> tuple[int, _Claim] | None:
        """The block's latest claim (epoch, claim), if any was recorded."""
        claims = self.claims.get(block)
        if not claims:
            return None
        epoch = max(claims)
        return epoch, claims[epoch]

    def view(self, slot: int, block: int) -> SlotView:
        """How slot ``slot`` of block ``block`` stands."""
        latest = self.latest(block)
        tries = self.starts.get(slot, 0)
        if latest is None:
            return SlotView(TaskState.PENDING, None, tries)
        epoch, claim = latest
        counted = claim.inherit.get(slot, epoch)
        end = self.ends.get((slot, counted))
        if end is not None:
            return SlotView(TaskState(str(end["state"])), end, tries)
        if (slot, epoch) in self.started_at:
            return SlotView(TaskState.RUNNING, None, tries)
        return SlotView(TaskState.PENDING, None, tries)

    def inherit(self, block: int, end: int) -> tuple[dict[int, int], dict[int, int]]:
        """What a takeover of ``block`` inherits: {slot: epoch of its counted end} for
        the slots that ended, and {slot: attempts started} for the others."""
        done: dict[int, int] = {}
        tries: dict[int, int] = {}
        latest = self.latest(block)
        for slot in range(block, end):
            if latest is not None:
                epoch, claim = latest
                counted = claim.inherit.get(slot, epoch)
                if (slot, counted) in self.ends:
                    done[slot] = counted
                    continue
            if self.starts.get(slot):
                tries[slot] = self.starts[slot]
        return done, tries

    def blocks(self) -> Iterator[tuple[int, int]]:
        """(start, end) of every block a claim was recorded for."""
        for block, claims in self.claims.items():
            yield block, max(c.end for c in claims.values())

    def slot_views(self, total: int) -> list[SlotView]:
        """Every slot's view, slots no claim covers pending."""
        views = [SlotView(TaskState.PENDING)] * total
        for block, end in self.blocks():
            for slot in range(block, min(end, total)):
                views[slot] = self.view(slot, block)
        return views


def journal_names(run: RunDir) -> list[str]:
    """The workers that wrote a journal."""
    return sorted(p.stem for p in Path(run.root / "journal").glob("*.jsonl"))
