"""``jobfleet debug parse``: saved scheduler output, recorded on the live clusters, read
the way a poll reads it (jobfleet.backends.formats and each backend's formats)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobfleet import backends as catalog
from jobfleet.backends.formats import UnreadableOutputError, poll_of_every, read_saved
from support.cli import jf

HERE = Path(__file__).parent
SLURM = HERE / "slurm" / "fixtures" / "22.05"
SGE = HERE / "sge" / "fixtures" / "8.1.9"
LSF = HERE / "lsf" / "fixtures" / "recorded"
PBS = HERE / "pbs" / "fixtures" / "22.05"
TORQUE = HERE / "torque" / "fixtures" / "6.1"
HTCONDOR = HERE / "htcondor" / "fixtures"


def job(
    native_id: str,
    index: int | None,
    state: str,
    code: int | None = None,
    reason: str | None = None,
) -> dict[str, object]:
    return {
        "native_id": native_id,
        "index": index,
        "state": state,
        "exit_code": code,
        "reason": reason,
    }


@pytest.mark.parametrize(
    ("backend", "fixture", "fmt", "count", "expected"),
    [
        ("slurm", SLURM / "sbatch-ok.out", "sbatch-parsable", 1, None),
        ("slurm", SLURM / "usage-sacct-ended.out", "sacct", 3, job("10357", 2, "completed", 0)),
        # A running job's sacct row says 0:0: no exit code yet, never a guessed 0.
        ("slurm", SLURM / "usage-sacct-running.out", "sacct", 3, job("10356", None, "running")),
        ("slurm", SLURM / "squeue-live.out", "squeue", None, job("256", 1, "running")),
        ("slurm", SLURM / "scontrol-all-final.out", "scontrol-show-job", None, None),
        ("sge", SGE / "oom-qsub-alloc400.out", "qsub-terse", 1, job("1015", None, "pending")),
        ("sge", SGE / "qstat-xml-g-d-live.out", "qstat-xml", 28, job("11", None, "running")),
        ("sge", SGE / "qacct-all.out", "qacct", 92, job("2", None, "completed", 0)),
        ("lsf", LSF / "bhist-l-done.out", "bhist-l", 1, job("872795", None, "completed", 0)),
        (
            "pbs",
            PBS / "qstat-fxt.json",
            "qstat-json",
            14,
            job("1002.pbs-head.cluster.example.org", None, "failed", 3),
        ),
        (
            "pbs",
            PBS / "qstat-fxt.txt",
            "qstat-text",
            14,
            job("1002.pbs-head.cluster.example.org", None, "failed", 3),
        ),
        (
            "torque",
            TORQUE / "qstat-x-t.xml",
            "qstat-xml",
            13,
            job("2002.torque-head.cluster.example.org", None, "failed", 3),
        ),
        ("htcondor", HTCONDOR / "history.json", "condor_history-json", 2,
         job("30", None, "completed", 0)),
    ],
)  # fmt: skip
def test_recorded_outputs_are_recognised_and_read(
    backend: str,
    fixture: Path,
    fmt: str,
    count: int | None,
    expected: dict[str, object] | None,
) -> None:
    formats = catalog.get(backend).formats
    assert formats is not None
    saved = read_saved(formats(), fixture.read_text(encoding="utf-8"), "", backend)
    assert saved.format.name == fmt
    jobs = saved.jobs()
    assert jobs, "a recorded output with jobs reads as none"
    if count is not None:
        assert len(jobs) == count
    if expected is not None:
        assert expected in jobs
    for found in jobs:
        if found["state"] in ("pending", "running", "unknown"):
            assert found["exit_code"] is None, found


def test_the_command_prints_the_same_as_json(jf_home: Path) -> None:
    fixture = SGE / "qacct-all.out"
    out = json.loads(jf("debug", "parse", "sge", str(fixture), "--json").stdout)
    saved = read_saved(catalog.get("sge").formats(), fixture.read_text(encoding="utf-8"))  # type: ignore[misc]
    assert out == saved.to_dict()
    text = jf("debug", "parse", "sge", str(fixture)).stdout
    assert text.startswith("format: qacct (what `qacct -j ID_OR_PATTERN` prints)")
    assert "completed" in text and "NATIVE_ID" in text


def test_stdin_is_read_with_a_dash(jf_home: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobfleet", "debug", "parse", "slurm", "-", "--json"],
        input=(SLURM / "sbatch-ok.out").read_text(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["format"] == "sbatch-parsable"


def test_what_no_format_reads_is_one_line_and_exit_2(jf_home: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("Job <12> is submitted to queue <normal>.\n")  # LSF's words, not SLURM's
    proc = jf("debug", "parse", "slurm", str(odd), expect=2)
    line = proc.stderr.strip()
    assert "\n" not in line and "not an output slurm reads" in line and "sacct" in line
    with pytest.raises(UnreadableOutputError):
        read_saved(catalog.get("sge").formats(), odd.read_text())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["local", "FILE"], "reads no scheduler output"),
        (["nosuch", "FILE"], "unknown backend"),
        (["slurm", "/no/such/file"], "No such file"),
        (["slurm", "BIG"], "larger than 64 MiB"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    jf_home: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    small, big = tmp_path / "small.out", tmp_path / "big.out"
    small.write_text("123\n")
    with big.open("wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: read at most 64 MiB + 1 byte of it
    paths = {"FILE": str(small), "BIG": str(big)}
    proc = jf("debug", "parse", *(paths.get(a, a) for a in args), expect=2)
    assert words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_a_saved_output_is_read_as_a_poll_of_every_job_it_names() -> None:
    ctx = poll_of_every(iter(["7", "12", "7", "3"]))
    assert (dict(ctx.targets), list(ctx.ids), ctx.accounting) == ({}, ["12", "3", "7"], None)
    assert poll_of_every([], accounting=False).accounting is False
