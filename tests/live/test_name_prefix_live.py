"""A job name prefix (``resources.name_prefix``, ``submit --name-prefix``) on every
backend: the scheduler knows the job by the prefixed name, ``jobfleet queue`` still
shows it as this registry's job, and its outcome is read back (on Grid Engine through
qacct asked by the prefixed pattern). SLURM and Grid Engine skip, saying why, without
their live clusters.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.cli import jf

PREFIX = "lab42-"


@pytest.fixture(
    params=[
        "local",
        pytest.param("slurm", marks=pytest.mark.live_slurm),
        pytest.param("sge", marks=pytest.mark.live_sge),
    ]
)
def backend(request: pytest.FixtureRequest, jf_home: Path) -> str:
    if request.param != "local":
        request.getfixturevalue(f"{request.param}_home")  # skips, saying why, without one
    return str(request.param)


def native_name(backend: str, native_id: str) -> str:
    """The job's name as its scheduler lists it."""
    if backend == "slurm":
        argv = ["squeue", "--noheader", "--format=%j", f"--jobs={native_id}"]
    else:
        argv = ["qstat", "-j", native_id]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    if backend == "sge":
        out = next(line.split()[1] for line in out.splitlines() if line.startswith("job_name:"))
    return out.strip()


def test_a_prefixed_job_is_found_named_and_read_back(backend: str) -> None:
    ok = jf("submit", "--name-prefix", PREFIX, "--name", "ok", "--", "sh", "-c", "sleep 3")
    bad = jf("submit", "--name-prefix", PREFIX, "--name", "bad", "--", "sh", "-c", "exit 3")
    ids = [ok.stdout.strip(), bad.stdout.strip()]
    rows = json.loads(jf("queue", "--json").stdout)
    mine = [r for r in rows if r["id"] in ids]
    assert mine, rows  # the running one at least is still queued, as this registry's
    assert all(r["name"].startswith(f"{PREFIX}jf") for r in mine), mine
    if backend != "local":
        shown = json.loads(jf("status", ids[0], "--json").stdout)[0]
        if shown["state"] in ("pending", "running"):
            assert native_name(backend, shown["native_id"]).startswith(f"{PREFIX}jf")
    ended = json.loads(jf("wait", *ids, "--json", "--timeout", "120", expect=1).stdout)
    assert [(r["state"], r["exit_code"]) for r in ended] == [("completed", 0), ("failed", 3)]
