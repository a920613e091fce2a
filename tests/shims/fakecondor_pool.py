"""The fake HTCondor access point's pool: its state file, the user event log, and a
proc leaving the queue for the history. Shared by the tools (``fakecondor.py``) and
the schedd (``fakecondor_schedd.py``); see ``fakecondor.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

Ad = dict[str, Any]
State = dict[str, Any]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[State]:
    """The pool's state, locked; written back on leaving."""
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text()) if path.exists() else {}
        state.setdefault("next", 1)
        state.setdefault("queue", [])  # materialized procs, in the queue
        state.setdefault("pending", [])  # procs a factory has not materialized yet
        state.setdefault("history", [])
        yield state
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)


def event(ad: Ad, number: int, text: str, body: Sequence[str] = ()) -> None:
    """Append one event to the job's user event log (ISO dates)."""
    log = ad.get("_log")
    if not log:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"{number:03d} ({ad['ClusterId']:03d}.{ad['ProcId']:03d}.000) {stamp} {text}"]
    lines += [f"\t{line}" for line in body]
    with open(log, "a") as out:
        out.write("\n".join([*lines, "..."]) + "\n")


def leave(state: State, ad: Ad) -> None:
    """A proc leaves the queue for the history; its factory materializes the next."""
    state["queue"].remove(ad)
    ad["CompletionDate"] = int(time.time()) if ad["JobStatus"] == 4 else 0
    state["history"].append(ad)
    if ad["JobStatus"] == 3:
        event(ad, 9, "Job was aborted.", [ad.get("RemoveReason", "")])
