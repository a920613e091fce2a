"""A pipe run's directory on the shared file system, and the few atomic steps on it.

Only operations atomic on NFS and Lustre are relied on: creating a file exclusively
(``O_CREAT|O_EXCL``, or ``link`` of a finished temporary file), renaming within a
directory, and appending a whole line with one ``write`` to a file only its writer
appends to. No ``flock``/``fcntl``, no SQLite, no mmap::

    RUN/
      run.json                 the run record: format, settings, when it was created
      tasks/<start>.jsonl      bundles of up to 1,000 immutable task specs, named by the
                               number of their first task; a retry adds {"ref": N} lines
      cursor/<n>               ONE file: the first task no fresh claim has taken yet
      claims/<start>.<epoch>   the lease on the block of tasks starting at <start>; its
                               modification time is the last heartbeat; gone once the
                               block is done
      journal/<worker>.jsonl   what one worker did: claims, starts, ends (append-only)
      out/<worker>.log         the output of the tasks it ran, one after the other
                               (out/tasks/<slot>-<attempt>.log each, when asked)
      workers/<worker>         touched at each heartbeat: the worker is alive
      submissions.jsonl        the worker array jobs submitted, and how
      cancelled                present once the run is cancelled

File count grows with the number of workers (journals, outputs), not with the number
of tasks: a bundle holds a thousand tasks; claims are deleted once done.

Clocks: a lease's age is the difference of two modification times the file system
set (the claim's, and the checking worker's own ``workers/<worker>`` touched just
before): on NFS both are the server's clock; where a file system takes the client's
clock for ``utime``, node clocks must agree to well within ``lease_s - heartbeat_s``
(50 s by default).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jobfleet.errors import SpecError
from jobfleet.pipe.model import PipeSettings, TaskSpec, task_from_json

__all__ = ["BUNDLE", "FORMAT", "Block", "Journal", "RunDir"]

#: Tasks per bundle file.
BUNDLE = 1000
#: How every line of a retry bundle starts (``add_lines`` writes compact JSON).
_REF_LINE = b'{"ref":'
#: The run directory's format.
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Block:
    """Tasks ``start`` to ``end - 1`` of a run: what one claim takes."""

    start: int
    end: int


class Journal:
    """One worker's append-only journal: a whole JSON line per ``write``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict[str, object]) -> None:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk: say so rather than leave half a line
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _write_new(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text``, complete or not at all; False if it exists."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)  # exclusive, and atomic on NFS: a reader sees all of it or nothing
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


class RunDir:
    """A pipe run's directory: its record, tasks, cursor, claims and journals."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._bundles: dict[int, list[dict[str, object]]] = {}  # immutable once written
        self._kinds: dict[int, bool] = {}  # bundle start -> is it a retry bundle
        self._layout: list[tuple[int, int]] = []
        self._settings: PipeSettings | None = None

    # -- paths ---------------------------------------------------------------------
    @property
    def record_path(self) -> Path:
        return self.root / "run.json"

    def journal_path(self, worker: str) -> Path:
        return self.root / "journal" / f"{worker}.jsonl"

    def output_path(self, worker: str) -> Path:
        return self.root / "out" / f"{worker}.log"

    def task_output_path(self, slot: int, attempt: int) -> Path:
        """An attempt's own output file (``per_task_output``)."""
        return self.root / "out" / "tasks" / f"{slot}-{attempt}.log"

    def end_output_path(self, end: dict[str, object]) -> Path:
        """The file an end record's output (its offset and length) is in."""
        if self.settings.per_task_output:
            return self.task_output_path(int(end["s"]), int(end["a"]))  # type: ignore[call-overload]
        return self.output_path(str(end["w"]))

    def claim_path(self, start: int, epoch: int) -> Path:
        return self.root / "claims" / f"{start:012d}.{epoch}"

    @property
    def cancelled_path(self) -> Path:
        return self.root / "cancelled"

    @property
    def submissions_path(self) -> Path:
        return self.root / "submissions.jsonl"

    # -- the run record ------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike[str], settings: PipeSettings) -> RunDir:
        """Make a new run directory; refuses one that holds a run already."""
        run = cls(root)
        if run.record_path.exists():
            raise SpecError(
                "pipe", f"{run.root}: already holds a pipe run; add tasks with `pipe add`"
            )
        for sub in ("tasks", "cursor", "claims", "journal", "out", "workers", "work"):
            (run.root / sub).mkdir(parents=True, exist_ok=True)
        (run.root / "cursor" / "0").touch()
        record = {"format": FORMAT, "id": uuid.uuid4().hex[:12], **settings.to_dict()}
        if not _write_new(run.record_path, json.dumps(record, indent=2) + "\n"):
            raise SpecError("pipe", f"{run.root}: another process created a run here first")
        return run

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> RunDir:
        """An existing run directory; a clear error when it is none."""
        run = cls(root)
        try:
            record = json.loads(run.record_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpecError(
                "pipe", f"{run.root}: no pipe run here (make one with `jobfleet pipe create`)"
            ) from None
        except (OSError, ValueError) as exc:
            raise SpecError("pipe", f"{run.record_path}: cannot be read ({exc})") from None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise SpecError("pipe", f"{run.record_path}: not a pipe run of format {FORMAT}")
        run._settings = PipeSettings.from_dict(record)
        run.id = str(record.get("id", ""))
        return run

    id: str = ""

    @property
    def settings(self) -> PipeSettings:
        if self._settings is None:
            self._settings = RunDir.open(self.root).settings
        return self._settings

    @property
    def cancelled(self) -> bool:
        return self.cancelled_path.exists()

    # -- tasks ---------------------------------------------------------------------
    def layout(self, refresh: bool = True) -> list[tuple[int, int]]:
        """(start, count) of every bundle, in order. Bundles are contiguous (each starts
        where the run ended when it was added), so counts are the gaps between starts,
        and only the last bundle is read; ``refresh=False`` keeps what is known."""
        if refresh or not self._layout:
            starts = sorted(
                int(p.name[:-6])
                for p in (self.root / "tasks").iterdir()
                if p.name.endswith(".jsonl") and not p.name.startswith(".")
            )
            counts = [b - a for a, b in itertools.pairwise(starts)]
            if starts:
                counts.append(len(self._bundle(starts[-1])))
            self._layout = list(zip(starts, counts, strict=True))
        return self._layout

    def total(self, refresh: bool = True) -> int:
        """How many task slots the run has (tasks, and retries of them)."""
        layout = self.layout(refresh)
        return layout[-1][0] + layout[-1][1] if layout else 0

    def _bundle(self, start: int) -> list[dict[str, object]]:
        lines = self._bundles.get(start)
        if lines is None:
            path = self.root / "tasks" / f"{start:012d}.jsonl"
            lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
            self._bundles[start] = lines
        return lines

    def _bundle_of(self, index: int) -> tuple[int, int] | None:
        """The (start, count) of the bundle holding slot ``index``; the listing is read
        again only for a slot past what is known (claims stay O(1) in the run's size)."""
        for refresh in (False, True):
            layout = self.layout(refresh)
            if layout and index < layout[-1][0] + layout[-1][1]:
                lo, hi = 0, len(layout) - 1
                while lo < hi:  # the last bundle starting at or before index
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if layout[mid][0] <= index else (lo, mid - 1)
                return layout[lo]
        return None

    def add_lines(self, lines: Iterable[dict[str, object]]) -> tuple[int, int]:
        """Stage task lines in bundles after the last slot: (first slot, how many).
        Two processes adding at once each get bundles of their own."""
        batch = list(lines)
        first: int | None = None
        added = 0
        while batch:
            start = self.total()
            chunk = batch[:BUNDLE]
            text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in chunk)
            if _write_new(self.root / "tasks" / f"{start:012d}.jsonl", text):
                first = start if first is None else first
                added += len(chunk)
                batch = batch[BUNDLE:]
        return (first if first is not None else self.total(), added)

    def add(self, tasks: Iterable[TaskSpec]) -> tuple[int, int]:
        """Stage tasks: (first slot, how many)."""
        return self.add_lines(json.loads(t.to_json()) for t in tasks)

    def retry_refs(self) -> dict[int, int]:
        """Every retry slot and the task it runs again: {slot: task number}. Only
        ``pipe retry`` writes ``{"ref": N}`` lines, in bundles of their own, so a
        bundle's first bytes tell its kind and task bundles are never parsed here
        (a status reads no task spec)."""
        refs: dict[int, int] = {}
        for start, _ in self.layout(refresh=False):
            kind = self._kinds.get(start)
            if kind is None:
                path = self.root / "tasks" / f"{start:012d}.jsonl"
                with open(path, "rb") as fh:
                    kind = self._kinds[start] = fh.read(len(_REF_LINE)) == _REF_LINE
            if kind:
                for offset, line in enumerate(self._bundle(start)):
                    refs[start + offset] = int(line["ref"])  # type: ignore[call-overload]
        return refs

    def slot(self, index: int) -> dict[str, object]:
        """The raw line of task slot ``index``."""
        bundle = self._bundle_of(index)
        if bundle is None:
            raise IndexError(index)
        return self._bundle(bundle[0])[index - bundle[0]]

    def task_of(self, index: int) -> tuple[int, TaskSpec]:
        """The task slot ``index`` runs: (its task number, its spec); a retry slot
        runs the task it refers to."""
        line = self.slot(index)
        number = index
        if "ref" in line:
            number = int(line["ref"])  # type: ignore[call-overload]
            line = self.slot(number)
        return number, task_from_json(line, f"{self.root}/tasks, slot {index}")

    def block_at(self, start: int) -> Block | None:
        """The block a claim at ``start`` takes: up to ``block_size`` slots, never
        across a bundle; None past the last slot."""
        bundle = self._bundle_of(start)
        if bundle is None:
            return None
        return Block(start, min(start + self.settings.block_size, bundle[0] + bundle[1]))

    # -- the cursor: fresh claims ----------------------------------------------------
    def cursor(self) -> int:
        names = [p.name for p in (self.root / "cursor").iterdir() if p.name.isdigit()]
        return max(int(n) for n in names) if names else 0

    def claim_fresh(self) -> Block | None:
        """Take the next block no one has taken: rename the cursor past it. Exactly one
        renamer wins; the others find the cursor gone and look again."""
        while True:
            at = self.cursor()
            block = self.block_at(at)
            if block is None:
                return None
            try:
                (self.root / "cursor" / str(at)).rename(self.root / "cursor" / str(block.end))
            except FileNotFoundError:
                continue  # another worker moved it first
            return block

    # -- claims (leases) -----------------------------------------------------------
    def take_claim(self, block: Block, epoch: int, worker: str) -> bool:
        """Create the lease of ``block`` at ``epoch``; False when someone holds it. The
        file appears whole or not at all (a link of a finished temporary file): a
        claimer killed half-way leaves no empty lease behind."""
        return _write_new(self.claim_path(block.start, epoch), f"{worker} {block.end}\n")

    def renew(self, start: int, epoch: int) -> bool:
        """Heartbeat: False when the claim is gone (taken over)."""
        try:
            os.utime(self.claim_path(start, epoch))
        except FileNotFoundError:
            return False
        return True

    def still_ours(self, start: int, epoch: int) -> bool:
        """The claim is there and no takeover superseded it."""
        return self.claim_path(start, epoch).exists() and not self.superseded(start, epoch)

    def superseded(self, start: int, epoch: int) -> bool:
        return self.claim_path(start, epoch + 1).exists()

    def blocks_below(self, index: int) -> int:
        """How many blocks start before slot ``index`` (a block boundary): arithmetic
        on the bundles, no look at the tasks."""
        size = self.settings.block_size
        layout = self.layout(refresh=False)
        if not layout or index > layout[-1][0] + layout[-1][1]:
            layout = self.layout()  # bundles added since
        count = 0
        for start, length in layout:
            if start >= index:
                break
            count += -(-min(length, index - start) // size)
        return count

    def leases(self) -> dict[int, int]:
        """{block: the highest epoch of its claim files}."""
        out: dict[int, int] = {}
        for start, epoch, _, _ in self.claims():
            out[start] = max(epoch, out.get(start, -1))
        return out

    def expire(self, start: int, epoch: int) -> None:
        """Give a claim up at once (its tasks go to the next worker that looks)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.claim_path(start, epoch), (0, 0))

    def drop_claim(self, start: int, epoch: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.claim_path(start, epoch).unlink()

    def claims(self) -> Iterator[tuple[int, int, int, float]]:
        """(start, epoch, end, mtime) of every claim file there is. A block's end is
        worked out from where it starts (blocks are fixed), not read from the file."""
        with os.scandir(self.root / "claims") as entries:
            for entry in entries:
                start, dot, epoch = entry.name.partition(".")
                if not (dot and start.isdigit() and epoch.isdigit()):
                    continue  # a temporary file of a claim being made
                try:
                    mtime = entry.stat().st_mtime
                except OSError:
                    continue  # gone meanwhile (done, or taken over)
                block = self.block_at(int(start))
                if block is not None:
                    yield int(start), int(epoch), block.end, mtime

    # -- workers -------------------------------------------------------------------
    def beat(self, worker: str) -> float:
        """Touch this worker's file (it holds the worker's host and PID); the file
        system's time now."""
        path = self.root / "workers" / worker
        try:
            os.utime(path)
        except FileNotFoundError:
            path.write_text(f"{socket.gethostname()} {os.getpid()}\n", encoding="utf-8")
        return path.stat().st_mtime

    def leave(self, worker: str) -> None:
        """A worker that ends cleanly is no longer counted live."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / "workers" / worker).unlink()

    def worker_pids(self) -> dict[str, tuple[str, int]]:
        """{worker: (host, PID)} of the workers with a heartbeat file."""
        out = {}
        for path in (self.root / "workers").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                host, pid = path.read_text(encoding="utf-8").split()[:2]
                out[path.name] = (host, int(pid))
        return out

    def live_workers(self, now: float) -> list[str]:
        """Workers whose heartbeat is younger than the lease."""
        lease = self.settings.lease_s
        out = []
        with os.scandir(self.root / "workers") as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime < lease:
                        out.append(entry.name)
        return sorted(out)

    def fs_now(self) -> float:
        """The file system's clock now (a probe file touched and read)."""
        probe = self.root / "workers" / f".now.{os.getpid()}"
        probe.touch()
        try:
            return probe.stat().st_mtime
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
