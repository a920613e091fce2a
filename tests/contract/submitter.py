"""Submit JOBS small jobs one at a time; may SIGKILL itself in the middle of one.

Usage: python submitter.py DIR JOBS [DIE_IN]

Job ``contract-I`` appends its name to DIR/ran and exits 3 when I is a multiple
of 3, else 0. Run again, it submits only the jobs the registry does not hold yet
(it knows them by name). With DIE_IN, it kills itself with SIGKILL inside the
DIE_IN-th submission, after the scheduler took the job and before jobfleet
recorded it as submitted: the worst moment to die. That hook wraps the
backend's ``submit`` (``submit_many`` for a backend with ``bulk_submit``), the one
step of :meth:`Fleet.submit` after which the scheduler has the job; it is the only
thing here beyond the public API.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from jobfleet import Fleet, JobSpec


def job_spec(directory: Path, i: int) -> JobSpec:
    name = f"contract-{i}"
    code = 3 if i % 3 == 0 else 0
    return JobSpec(["sh", "-c", f"echo {name} >> '{directory}/ran'; exit {code}"], name=name)


def die_inside(fleet: Fleet, nth: int) -> None:
    backend = fleet.backend()
    step = "submit_many" if backend.capabilities.bulk_submit else "submit"
    real = getattr(backend, step)
    calls = 0

    def submitting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        results = real(*args, **kwargs)
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return results

    setattr(backend, step, submitting)


def main(argv: list[str]) -> int:
    directory, jobs = Path(argv[0]), int(argv[1])
    with Fleet() as fleet:
        if len(argv) > 2:
            die_inside(fleet, int(argv[2]))
        known = {r.name for r in fleet.status(limit=10 * jobs)}
        for i in range(jobs):
            if f"contract-{i}" not in known:
                record = fleet.submit(job_spec(directory, i))
                print(f"submitted {record.id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
