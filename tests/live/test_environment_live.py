"""The job's environment set-up on the live SLURM and Grid Engine clusters: one job with
modules (Environment Modules and the test module jftest/1.0 from tests/cluster/modules-up.sh),
an env file, prologue and epilogue lines, a scratch directory, the config's set-up before the
job's; a missing module failing the job with its reason; export_env false. Skipped, saying
why, without a cluster or without the modules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.environment import Environment
from jobfleet.script import EXIT_SETUP_FAILED
from jobfleet.spec import JobSpec, Resources
from jobfleet.states import JobState

PY = sys.executable
MODULES_DIR = Path(os.environ.get("JOBFLEET_MODULES_DIR", "/tmp/jobfleet-modules"))
needs_modules = pytest.mark.skipif(
    not (Path("/etc/profile.d/modules.sh").exists() and (MODULES_DIR / "jftest/1.0").exists()),
    reason="Environment Modules or the test module are missing: run tests/cluster/modules-up.sh "
    "as root (scripts/test.sh does)",
)
BACKENDS = [
    pytest.param("slurm_home", marks=pytest.mark.live_slurm, id="slurm"),
    pytest.param("sge_home", marks=pytest.mark.live_sge, id="sge"),
]
SHOW = (
    "import json, os; print(json.dumps({k: os.environ.get(k) for k in "
    "('JFTEST_LOADED', 'FROM_FILE', 'FROM_CONFIG', 'FROM_PROLOGUE', 'TMPDIR', "
    "'JF_SUBMITTER_ONLY')} | {'scratch_is_dir': os.path.isdir(os.environ.get('TMPDIR', ''))}))"
)


@pytest.fixture(params=BACKENDS)
def fleet(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    request.getfixturevalue(request.param)
    monkeypatch.setenv("MODULEPATH", str(MODULES_DIR))
    config = Path(os.environ["JOBFLEET_CONFIG"])
    # The configuration's set-up comes first; the job's lines after it.
    config.write_text(
        config.read_text() + "environment:\n  prologue: ['export FROM_CONFIG=config']\n"
    )
    f = Fleet(load_config())
    yield f  # type: ignore[misc]
    f.close()


def _seen(fleet: Fleet, job_id: str) -> dict[str, object]:
    return dict(json.loads(fleet.log_path(job_id).read_text().strip().splitlines()[-1]))


@needs_modules
def test_everything_in_effect_then_a_missing_module(fleet: Fleet, tmp_path: Path) -> None:
    (tmp_path / "site.sh").write_text("export FROM_FILE=yes\n")
    spec = JobSpec(
        [PY, "-c", SHOW],
        workdir=str(tmp_path),
        environment=fleet.config.environment.then(
            Environment.of(
                env_files=["site.sh"],
                modules=["jftest/1.0"],
                prologue=['export FROM_PROLOGUE="$FROM_CONFIG+job"'],
                epilogue=['test -d "$TMPDIR" && echo "$FROM_PROLOGUE" >epilogue-ran', "exit 4"],
                scratch=True,
            )
        ),
    )
    missing = JobSpec(
        ["touch", str(tmp_path / "ran")],
        environment=Environment.of(modules=["nosuch/3"]),
    )
    job, bad = fleet.submit(spec), fleet.submit(missing)
    done, failed = fleet.wait([job.id, bad.id], timeout_s=120)
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0), fleet.log_path(
        job.id, stream="stderr"
    ).read_text()
    seen = _seen(fleet, job.id)
    assert (seen["JFTEST_LOADED"], seen["FROM_FILE"]) == ("1", "yes")
    assert seen["FROM_PROLOGUE"] == "config+job"
    assert seen["scratch_is_dir"] is True
    assert not Path(str(seen["TMPDIR"])).exists()  # removed at the end
    assert (tmp_path / "epilogue-ran").read_text() == "config+job\n"
    assert "jobfleet: the epilogue exited 4" in fleet.log_path(job.id, stream="stderr").read_text()

    assert (failed.state, failed.exit_code) == (JobState.FAILED, EXIT_SETUP_FAILED)
    assert failed.reason == "module nosuch/3 could not be loaded"
    assert not (tmp_path / "ran").exists()


def test_export_env_false_keeps_the_submitters_environment_out(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JF_SUBMITTER_ONLY", "carried")
    carried = fleet.submit(JobSpec([PY, "-c", SHOW]))
    clean = fleet.submit(
        JobSpec(
            ["/bin/sh", "-c", 'echo "{\\"JF_SUBMITTER_ONLY\\": \\"${JF_SUBMITTER_ONLY-}\\"}"'],
            environment=Environment(export_env=False),
        )
    )
    results = fleet.wait([carried.id, clean.id], timeout_s=120)
    assert all(r.state is JobState.COMPLETED for r in results), results
    assert _seen(fleet, carried.id)["JF_SUBMITTER_ONLY"] == "carried"  # the default carries it
    assert _seen(fleet, clean.id)["JF_SUBMITTER_ONLY"] == ""


@needs_modules
@pytest.mark.live_slurm
def test_slurm_srun_steps_keep_the_set_up_without_the_submitters_environment(
    slurm_home: Path,
) -> None:
    # sbatch --export=NONE hands srun SLURM_EXPORT_ENV=NONE: without the script's
    # SLURM_EXPORT_ENV=ALL each task would lose the module, TMPDIR and the --env value.
    show = (
        'echo "task=$SLURM_PROCID module=${JFTEST_LOADED-} mine=${MINE-} '
        'id=${JOBFLEET_JOB_ID-} tmp=${TMPDIR-}"'
    )
    spec = JobSpec(
        ["/bin/sh", "-c", show],
        env={"MINE": "given", "MODULEPATH": str(MODULES_DIR)},
        resources=Resources(tasks=2, launcher="srun"),
        environment=Environment.of(modules=["jftest/1.0"], export_env=False, scratch=True),
    )
    with Fleet(load_config()) as fleet:
        job = fleet.submit(spec)
        done = fleet.wait([job.id], timeout_s=120)[0]
        stderr = fleet.log_path(job.id, stream="stderr").read_text()
        lines = sorted(fleet.log_path(job.id).read_text().splitlines())
    assert done.state is JobState.COMPLETED, (done, stderr)
    assert len(lines) == 2, (lines, stderr)
    for task, line in enumerate(lines):
        words = dict(w.split("=", 1) for w in line.split())
        assert words["task"] == str(task)
        assert (words["module"], words["mine"], words["id"]) == ("1", "given", job.id), line
        assert words["tmp"].split("/")[-1].startswith(f"jobfleet-{job.id}."), line


@pytest.mark.waits_on_clock
@pytest.mark.live_sge
def test_sge_walltime_runs_the_epilogue_and_removes_scratch(sge_home: Path, tmp_path: Path) -> None:
    # h_rt's end is a SIGKILL; s_rt's SIGUSR1 a tenth of the walltime before it (at most
    # sge.walltime_grace) ends the command, and the script records it, runs the
    # epilogue and removes its scratch before the SIGKILL comes.
    spec = JobSpec(
        ["sh", "-c", 'echo "$TMPDIR" >scratch-was; sleep 300'],
        workdir=str(tmp_path),
        resources=Resources.of(walltime="20s"),
        environment=Environment.of(epilogue=["touch epilogue-ran"], scratch=True),
    )
    with Fleet(load_config()) as fleet:
        job = fleet.submit(spec)
        done = fleet.wait([job.id], timeout_s=120)[0]
    assert (done.state, done.exit_code) == (JobState.TIMEOUT, 138), done
    assert done.reason == "walltime limit exceeded (00:00:20)"
    assert (tmp_path / "epilogue-ran").exists()
    assert not Path((tmp_path / "scratch-was").read_text().strip()).exists()
