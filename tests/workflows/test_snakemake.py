"""A real Snakemake workflow through jobfleet (examples/snakemake: the documented
profile and a Snakefile): a fan-out of 20, a fan-in, a rule that fails, then a rerun
that runs only what is left, on the local backend and on live SLURM.

Snakemake 9 and its cluster-generic executor live in ./.venv-snakemake
(tests/cluster/snakemake-up.sh); without them these tests skip, saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from jobfleet import Fleet, JobState, load_config

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("JOBFLEET_SNAKEMAKE_VENV", REPO / ".venv-snakemake"))
SNAKEMAKE = VENV / "bin" / "snakemake"


@pytest.fixture(params=["local", "slurm"], ids=str)
def home(request: pytest.FixtureRequest) -> Path:
    if not SNAKEMAKE.exists():
        pytest.skip(f"no {SNAKEMAKE} (tests/cluster/snakemake-up.sh installs Snakemake there)")
    fixture = "jf_home" if request.param == "local" else "slurm_home"
    return Path(request.getfixturevalue(fixture))  # skips, saying why, without SLURM


def _snakemake(workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [
            str(SNAKEMAKE),
            "--profile",
            "profile",
            "--keep-going",
            "--seconds-between-status-checks",
            "1",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


# Mostly Snakemake's polling: run beside the other tests (scripts/test.sh).
@pytest.mark.slow
@pytest.mark.waits_on_clock
def test_a_workflow_fans_out_fails_one_rule_and_reruns_only_it(home: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "workflow"
    shutil.copytree(REPO / "examples" / "snakemake", workdir)
    first = _snakemake(workdir)
    assert first.returncode == 1, first.stderr[-3000:]  # the check failed: no flag yet
    assert "Traceback" not in first.stderr
    assert len(list((workdir / "parts").glob("*.txt"))) == 20
    merged = (workdir / "merged.txt").read_text().splitlines()
    assert sorted(merged) == sorted(f"part {i}" for i in range(1, 21))
    assert not (workdir / "checked.txt").exists()
    with Fleet(load_config()) as fleet:
        jobs = fleet.status(limit=100)
    assert Counter(r.name for r in jobs) == {"smk-part": 20, "smk-merge": 1, "smk-check": 1}
    states = {r.name: r.state for r in jobs}
    assert states["smk-check"] is JobState.FAILED  # as Snakemake was told: failed
    assert all(r.state is JobState.COMPLETED for r in jobs if r.name != "smk-check")

    (workdir / "flag").touch()
    second = _snakemake(workdir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (workdir / "checked.txt").read_text() == "20\n"
    with Fleet(load_config()) as fleet:
        again = fleet.status(limit=100)
    new = [r for r in again if r.id not in {j.id for j in jobs}]
    assert [(r.name, r.state) for r in new] == [("smk-check", JobState.COMPLETED)]


def test_the_docs_show_the_profile_as_it_is() -> None:
    """docs/snakemake.md's table quotes the profile's commands: they cannot drift."""
    import yaml

    profile = yaml.safe_load((REPO / "examples/snakemake/profile/config.yaml").read_text())
    docs = (REPO / "docs" / "snakemake.md").read_text()
    for key in (
        "cluster-generic-submit-cmd",
        "cluster-generic-status-cmd",
        "cluster-generic-cancel-cmd",
    ):
        assert f"| `{key}` | `{profile[key]}` |" in docs, key
    assert profile["executor"] == "cluster-generic"
    assert profile["default-resources"] == ["mem_mb=1000", "runtime=60"]


@pytest.mark.parametrize(
    ("state", "retry_due", "word"),
    [
        (JobState.COMPLETED, False, "success"),
        (JobState.FAILED, False, "failed"),
        (JobState.TIMEOUT, False, "failed"),
        (JobState.OUT_OF_MEMORY, False, "failed"),
        (JobState.CANCELLED, False, "failed"),
        (JobState.LOST, False, "failed"),
        (JobState.PENDING, False, "running"),
        (JobState.RUNNING, False, "running"),
        (JobState.UNKNOWN, False, "running"),  # cannot tell: never failed on a guess
        (JobState.FAILED, True, "running"),  # a retry is coming
    ],
)
def test_what_snakemake_is_told(state: JobState, retry_due: bool, word: str) -> None:
    from jobfleet.cli.jobs import snakemake_word
    from jobfleet.states import JobRecord

    spec = {"retries": 1} if retry_due else {}
    record = JobRecord("1", "j", "local", "1", state, None, None, True, "/d", 0.0, 0.0, spec)
    assert record.retry_due is retry_due
    assert snakemake_word(record) == word
