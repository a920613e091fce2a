"""Chaos: workers submitted as ONE array job on the local backend are killed with
SIGKILL every few seconds and topped up; every task still ends exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

from conftest import LOCAL_TEST_CONFIG
from jobfleet import Fleet, load_config
from jobfleet.pipe.api import Pipe
from jobfleet.pipe.model import RunState, TaskState

TASKS = 2000
WORKERS = 4


def test_killed_workers_lose_nothing_and_finish_nothing_twice(
    jf_home: Path, tmp_path: Path
) -> None:
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(LOCAL_TEST_CONFIG.format(cores=WORKERS))
    run = tmp_path / "run"
    # Each task prints its number and takes a little while: about 15 s of work for four.
    tasks = [f"echo result-$JOBFLEET_PIPE_TASK; sleep 0.0{i % 5 + 1}" for i in range(TASKS)]
    pipe = Pipe.create(run, tasks, heartbeat=0.2, lease=1.0, max_attempts=4, block_size=4)
    rng = random.Random(15)
    kills = 0
    with Fleet(load_config()) as fleet:
        jobs = [pipe.submit(WORKERS, fleet=fleet)]
        deadline = time.monotonic() + 240
        while not pipe.status().ended:
            assert time.monotonic() < deadline, pipe.status().to_dict()
            time.sleep(rng.uniform(1.0, 2.5))
            live = pipe.dir.worker_pids()
            if live and kills < 8:
                victim = rng.choice(sorted(live))
                try:
                    os.kill(live[victim][1], signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    continue
                jobs.append(pipe.submit(1, fleet=fleet))  # topped up
        records = fleet.wait(jobs, timeout_s=120)
    assert kills >= 3
    status = pipe.status()
    assert status.state is RunState.COMPLETED, status.to_dict()
    results = pipe.results()
    assert len(results) == TASKS and all(r.state is TaskState.COMPLETED for r in results)
    assert all(1 <= r.attempts <= 4 for r in results)  # within the budget
    assert sum(r.attempts > 1 for r in results) >= 1  # a kill did cost some task a run
    outputs = pipe.outputs()
    assert all(outputs[n] == f"result-{n}\n" for n in range(TASKS))  # every result present
    # Exactly once: each task has exactly one counted terminal record, and no two
    # completed records of a task at the same epoch.
    ends = Counter()
    for journal in (run / "journal").iterdir():
        for line in journal.read_text().splitlines():
            record = json.loads(line)
            if record["k"] == "end" and record["state"] == "completed":
                ends[(record["s"], record["e"])] += 1
    assert max(ends.values()) == 1
    assert {s for s, _ in ends} == set(range(TASKS))
    # Killed workers' elements ended failed or lost; the others completed.
    assert sum(1 for r in records for e in r.elements.values() if e.exit_code == 0) >= 1
    # Files grow with workers, not tasks.
    files = sum(len(files) for _, _, files in os.walk(run))
    assert files < 60, files
