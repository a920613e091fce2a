"""A process with a registry open opens it again while other processes write to it.

Reading a database file's header through a descriptor of its own, then closing it,
dropped every POSIX lock the process held on the file, SQLite's included: a writer in
another process then took itself for the last connection and reset the write-ahead
log under this process's connections ("disk I/O error" at the next read). Found in the
review of issue 16's registry changes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec
from jobfleet.states import JobState as S

_WRITER = """
import sys
from jobfleet.registry import Registry, StatusUpdate
from jobfleet.states import JobState as S
with Registry(sys.argv[1]) as registry:
    registry.apply([StatusUpdate(sys.argv[2], S.RUNNING, reason=sys.argv[3])])
"""


def test_opening_again_drops_no_lock_of_the_connections_already_open(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(home) as kept:
        (job,) = kept.create_jobs([NewJob("a", "board", JobSpec(["true"]))])
        kept.mark_submitted(job.id, "n1")
        for step in range(4):
            with Registry(home) as brief:  # e.g. a view that opens its own
                assert brief.get(job.id).id == job.id
            subprocess.run(
                [sys.executable, "-c", _WRITER, str(home), job.id, f"writer {step}"],
                check=True,
                timeout=60,
            )
            kept.apply([StatusUpdate(job.id, S.RUNNING, reason=f"kept {step}")])
            with Registry(home) as fresh:
                assert fresh.get(job.id).reason == f"kept {step}"
        assert kept.get(job.id).reason == "kept 3"
