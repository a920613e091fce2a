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
    #: (slot, epoch) -> attempts started at that epoch, and of them ended ``retry``.
    attempts: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    done: set[tuple[int, int]] = field(default_factory=set)
    #: Blocks whose latest recorded claim wrote its ``done``: kept as records come, so
    #: that an idle worker learns whether everything ended without a look at each task.
    finished: set[int] = field(default_factory=set)
    _readers: dict[str, _Reader] = field(default_factory=dict)

    def refresh(self) -> None:
        """Read what the journals gained since the last call. A line that is not a
        whole record (a disk that filled up, a foreign file) is skipped, said once."""
        folder = self.run.root / "journal"
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.endswith(".jsonl") and e.is_file()]
        for name in names:
            reader = self._readers.setdefault(name, _Reader())
            try:
                with open(folder / name, "rb") as fh:
                    fh.seek(reader.offset)
                    data = fh.read()
            except OSError as exc:  # gone, or unreadable for now: read it next time
                log.warning("%s: cannot read the journal: %s", name, exc)
                continue
            if not data:
                continue
            reader.offset += len(data)
            data = reader.tail + data
            complete, _, reader.tail = data.rpartition(b"\n")
            if complete:
                try:  # workers write ASCII: decoded once, not line by line
                    lines: list[str] | list[bytes] = complete.decode("ascii").split("\n")
                except UnicodeDecodeError:  # a foreign line: each line judged alone
                    lines = complete.split(b"\n")
                for line in lines:
                    try:
                        self._take(json.loads(line), name[:-6])
                    except (ValueError, KeyError, TypeError, AttributeError):
                        log.warning("%s: a journal line that is not a record; skipped", name)

    def _take(self, record: dict[str, object], worker: str) -> None:
        kind = record["k"]
        block, epoch = int(record["b"]), int(record["e"])  # type: ignore[call-overload]
        if kind == "claim":
            known = self.claims.get(block)
            if known and epoch > max(known):
                self.finished.discard(block)  # a later claim: done only once it says so
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
            self.attempts.setdefault((slot, epoch), [0, 0])[0] += 1
        elif kind == "end":
            slot = int(record["s"])  # type: ignore[call-overload]
            if record.get("state") in _TERMINAL_ENDS:
                self.ends.setdefault((slot, epoch), {**record, "w": worker})
            elif record.get("state") == "retry":
                self.attempts.setdefault((slot, epoch), [0, 0])[1] += 1
        elif kind == "done":
            self.done.add((block, epoch))
            latest = self.latest(block)
            if latest is None or latest[0] <= epoch:
                self.finished.add(block)

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
        started, retried = self.attempts.get((slot, epoch), (0, 0))
        if started > retried:  # an attempt began and has not ended
            return SlotView(TaskState.RUNNING, None, tries)
        return SlotView(TaskState.PENDING, None, tries)  # not begun, or its next attempt

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

    def slot_views(self, total: int, leases: dict[int, int] | None = None) -> list[SlotView]:
        """Every slot's view, slots no claim covers pending.

        ``leases`` (block -> highest epoch of its claim files, listed BEFORE the
        journals were read): a block taken over whose new claim is not in the journals
        yet may still inherit or not the ends of the epoch before; those read
        ``running`` (cannot tell yet), never an end that may not count."""
        views = [SlotView(TaskState.PENDING)] * total
        for block, end in self.blocks():
            newer = None
            if leases is not None and block in leases:
                latest = self.latest(block)
                if latest is not None and leases[block] > latest[0]:
                    newer = leases[block]
            for slot in range(block, min(end, total)):
                view = self.view(slot, block)
                if newer is not None and view.state.is_terminal:
                    view = SlotView(TaskState.RUNNING, None, view.tries)
                views[slot] = view
        return views


def journal_names(run: RunDir) -> list[str]:
    """The workers that wrote a journal."""
    return sorted(p.stem for p in Path(run.root / "journal").glob("*.jsonl"))
