"""One no-op array of 100,000 elements through the local backend: what it costs.

Usage: python bench/local_array_scale.py [--elements 100000] [--status-repeat 5]

On a throw-away home (bench/localhome.py, as many cores as this machine has), ONE array
of N elements running ``true`` is submitted and waited for. Printed:

- submit time, time to done, elements/s;
- the local agent's peak RSS (``VmHWM`` of /proc/<agent pid>/status, sampled every
  0.2 s while it runs) and its CPU (utime + stime): in all, per element, and per
  tick (the agent's ticks are counted from its log when it logs them; otherwise the
  CPU per element is what there is);
- ``jobfleet status ID --json`` and ``jobfleet status ID`` wall time (each the median of
  --status-repeat interleaved runs), against ``python -c pass`` run the same way (the
  interpreter's own start-up: the ratio is the command's cost in starts of Python), and
  the in-process cost of the report: ``Fleet.status`` of the array plus its JSON;
- the most entries in one directory under the home, and the files per element (files
  under the job's directory, minus the job's own, divided by N);
- the CPU of one agent round (choosing what starts after two elements ended) with N
  elements pending against 1,000 pending, in-process without processes: a ratio near 1
  means a round costs what changed, not the array's size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from localhome import local_fleet

from jobfleet.arrays import parse_array
from jobfleet.backends.local.queue import CAPACITY_KEY, NewLocalJob, QueueStore
from jobfleet.backends.local.rounds import Rounds
from jobfleet.engine.fleet import Fleet
from jobfleet.spec import JobSpec
from jobfleet.states import JobState


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Reads the agent's peak RSS and CPU every ``every_s``: the agent exits for
    idleness a few seconds after the array ended, maybe before the wait returns."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.hwm_kib, self.cpu_s = 0, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            self.sample()

    def sample(self) -> None:
        try:
            hwm = proc_status(self.pid).get("VmHWM", "0 kB").split()[0]
            self.hwm_kib = max(self.hwm_kib, int(hwm))
            self.cpu_s = max(self.cpu_s, cpu_seconds(self.pid))
        except (OSError, ValueError, IndexError):
            pass  # gone


def agent_pid(home: Path) -> int:
    (lock,) = home.glob("local/*/agent.lock")
    return int(lock.read_text())


def widest(root: Path) -> tuple[int, str]:
    """The most entries in one directory under ``root``, and that directory."""
    most, where = 0, str(root)
    for here, dirs, files in os.walk(root):
        if len(dirs) + len(files) > most:
            most, where = len(dirs) + len(files), here
    return most, where


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def time_commands(fleet: Fleet, job_id: str, repeat: int) -> dict[str, float]:
    """Median wall time of each command, interleaved, against ``python -c pass``."""
    home = fleet.registry.home
    env = dict(
        os.environ, JOBFLEET_HOME=str(home), JOBFLEET_CONFIG=str(home.parent / "jobfleet.yaml")
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    jf = [sys.executable, "-m", "jobfleet"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "status ID --json": [*jf, "status", job_id, "--json"],
        "status ID": [*jf, "status", job_id],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            times[name].append(wall(argv, env))
    return {name: statistics.median(t) for name, t in times.items()}


def in_process_status(fleet: Fleet, job_id: str, repeat: int) -> float:
    """Median time of the library's status report of the array plus its JSON (what
    ``status ID --json`` does after its start-up)."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = fleet.status_report([job_id])
        json.dumps([r.to_dict() for r in report.records])
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def ticks_in_log(home: Path) -> int | None:
    """How many ticks the agent logged, if it logs them (``tick`` lines)."""
    logs = list(home.glob("local/*/agent.log"))
    if not logs:
        return None
    n = sum(1 for line in logs[0].read_text(errors="replace").splitlines() if " tick " in line)
    return n or None


def round_cost(pending: int, rounds: int = 200, throttle: int | None = None) -> float:
    """Seconds of one agent round (choose what starts, as after an element ended) with
    ``pending`` elements of one array waiting (``throttle``: at most that many running,
    as ``0-N%T``), in-process on a queue of its own (no processes are started: the
    chosen elements are marked ended straight away)."""
    with tempfile.TemporaryDirectory(prefix="jf-round-") as tmp:
        store = QueueStore(Path(tmp))
        store.set_setting(CAPACITY_KEY, {"cores": 2, "memory": 0, "gpu_ids": []})
        store.enqueue([
            NewLocalJob(
                jf_id="1", name="a", script=f"{tmp}/job.sh", job_dir=tmp, cores=1, memory=0,
                gpus=0, walltime=None, max_concurrent=throttle, indices=range(pending + 2 * rounds),
                deps=(), env=dict(os.environ),
            )
        ])  # fmt: skip
        agent = Rounds(Path(tmp), cancel_grace_s=1.0)
        agent._refresh_capacity()
        agent._load_new()
        start = time.process_time()
        for _ in range(rounds):
            for key in agent._choose(time.time()):
                agent.runs.pop(key, None)
                agent._finish(key, "completed", 0, None)
            agent._updates.clear()  # not written: the round's own cost is measured
        return (time.process_time() - start) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=100_000)
    parser.add_argument("--status-repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.elements
    small, large = round_cost(1000), round_cost(n)
    small_t, large_t = round_cost(1000, throttle=1), round_cost(n, throttle=1)
    cores = len(os.sched_getaffinity(0))
    with local_fleet(cores) as fleet:
        home = fleet.registry.home
        pid = agent_pid(home)
        sampler = Sampler(pid)
        sampler.sample()
        cpu0 = sampler.cpu_s
        sampler.start()
        start = time.perf_counter()
        record = fleet.submit(JobSpec(["true"], array=parse_array(f"0-{n - 1}")))
        submitted = time.perf_counter() - start
        (done,) = fleet.wait([record.id])
        elapsed = time.perf_counter() - start
        sampler.sample()
        sampler.done.set()
        cpu = sampler.cpu_s - cpu0
        hwm = f"{sampler.hwm_kib / 1024:.0f} MiB"
        ticks = ticks_in_log(home)
        if done.state is not JobState.COMPLETED:
            sys.exit(f"benchmark invalid: the array ended {done.state.value}")
        cmd = time_commands(fleet, record.id, args.status_repeat)
        inproc = in_process_status(fleet, record.id, args.status_repeat)
        most, where = widest(home)
        job_dir = home / "jobs"
        own = 2  # job.sh and submit-env.json
        per_element = (count_files(job_dir) - own) / n
    base = cmd["python -c pass"]
    print(f"one array of {n:,} no-op elements, local backend, {cores} cores")
    print(f"submit:           {submitted:8.2f} s")
    print(f"done after:       {elapsed:8.2f} s  ({n / elapsed:,.0f} elements/s)")
    print(f"agent peak RSS:   {hwm}")
    print(f"agent CPU:        {cpu:8.2f} s  ({cpu / n * 1e6:.0f} us per element)", end="")
    print(f", {cpu / ticks * 1e3:.2f} ms per tick over {ticks} ticks" if ticks else "")
    print(f"python -c pass:   {base:8.3f} s  (median of {args.status_repeat}, interleaved)")
    for name in ("status ID --json", "status ID"):
        print(
            f"{name + ':':18s}{cmd[name]:8.3f} s  (ratio to python -c pass: {cmd[name] / base:.1f})"
        )
    print(f"in-process status + JSON: {inproc:.3f} s")
    print(f"most entries in one directory: {most:,} ({Path(where).relative_to(home)})")
    print(f"files per element: {per_element:.2f}")
    print(
        f"agent round (choose and settle 2 elements) with {n:,} pending: {large * 1e6:.0f} us;"
        f" with 1,000 pending: {small * 1e6:.0f} us (ratio {large / small:.1f})"
    )
    print(
        f"the same, throttled (%1): {large_t * 1e6:.0f} us; with 1,000 pending:"
        f" {small_t * 1e6:.0f} us (ratio {large_t / small_t:.1f})"
    )


if __name__ == "__main__":
    main()
