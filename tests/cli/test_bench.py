"""The benchmarks in bench/ still run (tiny sizes; their figures are not checked here:
timings belong to the benchmarks, never to tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_poll_cost_runs_and_counts_one_call_each() -> None:
    out = run("poll_cost.py", "--jobs", "200", "--repeat", "2")
    assert "calls per poll: 1 squeue + 1 sacct" in out


@pytest.mark.slow
def test_local_throughput_runs(jf_home: Path) -> None:
    out = run("local_throughput.py", "--jobs", "20", "--repeat", "1")
    assert "ratio" in out


@pytest.mark.slow
def test_wait_cpu_runs(jf_home: Path) -> None:
    out = run("wait_cpu.py", "--elements", "30", "--repeat", "1")
    assert "unpaced (share 1.0)" in out and "ratio paced/unpaced" in out


@pytest.mark.slow
def test_futures_map_runs(jf_home: Path) -> None:
    out = run("futures_map.py", "--calls", "20", "--repeat", "1")
    assert "chunksize=50" in out and "ratio" in out


def test_report_scale_runs() -> None:
    out = run("report_scale.py", "--elements", "300", "--repeat", "1")
    assert "model + html for 300 elements:" in out


def test_pipe_throughput_runs() -> None:
    out = run("pipe_throughput.py", "--sizes", "50,200")
    assert "the first 50 no-op tasks of each run" in out and "200 tasks" in out


@pytest.mark.slow
def test_study_scale_runs(jf_home: Path) -> None:
    out = run("study_scale.py", "--points", "200", "--repeat", "1")
    assert "study of 200 points" in out and "most entries in one directory" in out


def test_registry_scale_runs() -> None:
    out = run(
        "registry_scale.py", "--jobs", "30", "--arrays", "2", "--elements", "20", "--runs", "1"
    )
    assert "30 single jobs" in out and "2 arrays of 20 elements" in out
    assert "wait --all" in out and "logs ID --index N" in out


@pytest.mark.slow
def test_local_array_scale_runs(jf_home: Path) -> None:
    out = run("local_array_scale.py", "--elements", "50", "--status-repeat", "1")
    assert "one array of 50 no-op elements" in out and "files per element" in out


def test_cli_startup_runs() -> None:
    out = run("cli_startup.py", "--jobs", "50", "--runs", "1")
    assert "registry of 50 finished jobs" in out
    assert re.search(r"jobfleet status [0-9]+ --json +wall .* cpu .*x", out), out


def test_home_layout_runs(jf_home: Path) -> None:
    out = run("home_layout.py", "--jobs", "30", "--batch", "10", "--rounds", "2")
    assert "30 submissions (local, held)" in out and "ceiling 1,001: ok" in out
    assert "entries in jobs/: 1" in out, "31 jobs: one shard"
    assert re.search(r"flat .* widest directory 2[0-9] \(jobs\)", out), out
    assert "ratio sharded / flat" in out


@pytest.mark.live_slurm
@pytest.mark.slow
def test_slurm_submit_runs(slurm_cluster: None) -> None:
    out = run("slurm_submit.py", "--jobs", "5", "--rounds", "2", "--tracked", "5")
    assert "ratio, median of 2: singles" in out and "an array of 5:" in out
    assert "poll of 5 queued jobs: 1 squeue + 0 sacct calls" in out
    assert "poll of 5 jobs gone from the queue: 1 squeue + 1 sacct calls" in out
