"""A program that submits and watches N jobs, and may be killed (-9) at any point.

Run again after a crash, it picks up where it was: jobs already recorded are
not submitted again (it knows them by name), every job is watched, and each
job's callback appends the job id to a file. Used by tests/live/test_crash.py.

Usage: python crash_program.py JOBS CALLBACK_FILE [--die-in-submit BATCH | --pause-after BATCH]

``--die-in-submit BATCH``: SIGKILL itself inside the backend's submission of
that batch, after the scheduler took the jobs and before they are recorded as
submitted (the worst moment to die): after its ``submit_many`` (a backend with
``bulk_submit``), or after the ``submit`` of the batch's last job.
``--pause-after BATCH``: sleep a while after that batch was submitted and
polled, so that a kill from outside lands while jobs run and submissions are
half done, and not inside a callback.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from jobfleet import Fleet, JobSpec
from jobfleet.backends.base import Backend
from jobfleet.errors import SubmitError
from jobfleet.states import JobRecord

BATCH = 10


def job_spec(i: int) -> JobSpec:
    # Every third job fails with exit code 3; a few run a little while.
    code = 3 if i % 3 == 0 else 0
    return JobSpec(["sh", "-c", f"sleep {i % 4 * 0.1}; exit {code}"], name=f"crash-{i}")


def die_inside(backend: Backend, batch: int) -> None:
    bulk = backend.capabilities.bulk_submit
    step = "submit_many" if bulk else "submit"
    real = getattr(backend, step)
    last = batch if bulk else batch * BATCH
    calls = 0

    def submitting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        results = real(*args)
        if calls == last:
            os.kill(os.getpid(), signal.SIGKILL)
        return results

    setattr(backend, step, submitting)


def main(argv: list[str]) -> int:
    jobs, callback_file = int(argv[0]), argv[1]
    option = argv[2] if len(argv) > 3 else None
    batch_no = int(argv[3]) if len(argv) > 3 else 0
    die_in = batch_no if option == "--die-in-submit" else None
    pause_after = batch_no if option == "--pause-after" else None

    def note(record: JobRecord) -> None:
        with open(callback_file, "a", encoding="utf-8") as fh:
            fh.write(f"{record.id} {record.state.value} {record.exit_code}\n")

    with Fleet() as fleet:
        backend = fleet.backend()
        if die_in is not None:
            die_inside(backend, die_in)
        monitor = fleet.monitor()
        known = {r.name: r.id for r in fleet.registry.recent(10 * jobs)}
        monitor.watch(known.values(), on_exit=note)
        todo = [i for i in range(jobs) if f"crash-{i}" not in known]
        for start in range(0, len(todo), BATCH):
            batch = [job_spec(i) for i in todo[start : start + BATCH]]
            try:
                records = fleet.submit_many(batch)
            except SubmitError as exc:  # recorded as failed or unknown; watched below
                print(f"submission problem: {exc}", file=sys.stderr)
                records = fleet.registry.recent(len(batch))
            monitor.watch([r.id for r in records], on_exit=note)
            monitor.poll()
            print(f"submitted {len(records)}", flush=True)
            if start // BATCH + 1 == pause_after:
                time.sleep(60)
        records = monitor.wait()
        print(f"done {len(records)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
