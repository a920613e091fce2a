"""A backend whose answers a test writes on a board, and a fleet polling it fast."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from jobfleet import owner
from jobfleet.backends.base import Backend, NativeStatus, PollTarget, SubmitRequest
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import CommandError
from jobfleet.script import LOCAL, Dialect
from jobfleet.states import JobState

S = JobState


class Board(Backend):
    """A scheduler whose answers the test writes on a board (native id -> status)."""

    name = "board"

    def script_dialect(self) -> Dialect:
        return LOCAL

    def __init__(self) -> None:
        self.board: dict[str, NativeStatus] = {}
        self.down = False  # True: every poll fails as an unreachable scheduler does
        self.polls = 0
        self.next_id = 100
        self.submitted: list[SubmitRequest] = []
        self.found: dict[str, str] = {}  # scheduler name -> native id

    def submit(self, request: SubmitRequest) -> str:
        self.next_id += 1
        native = str(self.next_id)
        self.submitted.append(request)
        self.board[native] = NativeStatus(S.PENDING)
        self.found[request.name] = native
        return native

    def submit_argv(self, request: SubmitRequest) -> list[str] | None:
        return None

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self.polls += 1
        if self.down:
            raise CommandError(["squeue"], "squeue: timed out", transient=True)
        return {t.native_id: self.board[t.native_id] for t in targets if t.native_id in self.board}

    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        return {}

    def find_submitted(self, name: str, job_id: str) -> str | None:
        return self.found.get(name)


def dead_owner() -> str:
    """An owner string (see jobfleet.owner) of a process of this host that has ended."""
    child = subprocess.Popen(["sleep", "0"])
    child.wait()
    return f"{owner.current().split(':')[0]}:{child.pid}:"


FAST = {
    "wait.first_poll": 0.01,
    "wait.poll_interval": 0.02,
    "wait.min_gap": 0.01,
    "wait.lost_after": 1,
}


@contextlib.contextmanager
def fleet_with(be: Board, tmp_path: Path) -> Iterator[Fleet]:
    """A fleet polling fast, with ``be`` as its backend "board"."""
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path, overrides=FAST)
    with Fleet(config, home=tmp_path / "home") as f:
        f.use_backend(be)
        yield f
