"""The job's environment set-up on the local backend, with real jobs: Environment Modules
(tests/cluster/modules-up.sh installs them and the test module jftest/1.0), prologue,
epilogue, env files, scratch, export_env, and each job pinned to CPUs of its own."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from conftest import LOCAL_TEST_CONFIG
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
CPUS = sorted(os.sched_getaffinity(0))

#: Prints what the job sees of its set-up, as JSON.
SHOW = (
    "import json, os; print(json.dumps({"
    "'loaded': os.environ.get('JFTEST_LOADED'), 'file': os.environ.get('FROM_FILE'),"
    "'prologue': os.environ.get('FROM_PROLOGUE'), 'tmpdir': os.environ.get('TMPDIR'),"
    "'scratch_is_dir': os.path.isdir(os.environ.get('TMPDIR', '')),"
    "'cpus': sorted(os.sched_getaffinity(0)), 'JOBFLEET_CPUS': os.environ.get('JOBFLEET_CPUS'),"
    "'secret': os.environ.get('JF_SUBMITTER_ONLY')}))"
)


@pytest.fixture
def fleet(jf_home: Path) -> Fleet:
    f = Fleet(load_config())
    yield f  # type: ignore[misc]
    f.close()


def _seen(fleet: Fleet, job_id: str) -> dict[str, object]:
    return dict(json.loads(fleet.log_path(job_id).read_text().strip().splitlines()[-1]))


@needs_modules
def test_modules_env_files_prologue_epilogue_and_scratch(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODULEPATH", str(MODULES_DIR))
    (tmp_path / "site.sh").write_text("export FROM_FILE=yes\n")
    spec = JobSpec(
        [PY, "-c", SHOW],
        workdir=str(tmp_path),
        environment=Environment.of(
            env_files=["site.sh"],
            modules=["jftest/1.0"],
            prologue=["export FROM_PROLOGUE=$JFTEST_LOADED", 'echo "$TMPDIR" >scratch-was'],
            epilogue=['test -d "$TMPDIR" && echo "epilogue saw $FROM_PROLOGUE" >epilogue-ran'],
            scratch=True,
        ),
    )
    job = fleet.submit(spec)
    done = fleet.wait([job.id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.COMPLETED, 0), fleet.log_path(
        job.id, stream="stderr"
    ).read_text()
    seen = _seen(fleet, job.id)
    assert (seen["loaded"], seen["file"], seen["prologue"]) == ("1", "yes", "1")
    assert seen["scratch_is_dir"] is True
    assert seen["tmpdir"] == (tmp_path / "scratch-was").read_text().strip()
    assert (tmp_path / "epilogue-ran").read_text() == "epilogue saw 1\n"
    assert not Path(str(seen["tmpdir"])).exists()  # removed when the job ended


@needs_modules
def test_a_missing_module_fails_the_job_and_says_which(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODULEPATH", str(MODULES_DIR))
    marker = tmp_path / "ran"
    spec = JobSpec(
        ["touch", str(marker)], environment=Environment.of(modules=["jftest/1.0", "nosuch/2"])
    )
    done = fleet.wait([fleet.submit(spec).id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.FAILED, EXIT_SETUP_FAILED)
    assert done.reason == "module nosuch/2 could not be loaded"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("command", "epilogue", "state", "code"),
    [
        ("exit 3", "exit 0", JobState.FAILED, 3),
        ("exit 0", "exit 9", JobState.COMPLETED, 0),
        ("exit 0", "false", JobState.COMPLETED, 0),
    ],
)
def test_the_epilogue_never_changes_the_outcome(
    fleet: Fleet, command: str, epilogue: str, state: JobState, code: int
) -> None:
    spec = JobSpec(command, shell=True, environment=Environment.of(epilogue=[epilogue]))
    done = fleet.wait([fleet.submit(spec).id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (state, code)


def test_kept_scratch_and_a_clean_environment(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JF_SUBMITTER_ONLY", "carried")
    base = tmp_path / "scratch base"
    base.mkdir()
    carried = fleet.submit(JobSpec([PY, "-c", SHOW]))
    clean = fleet.submit(
        JobSpec(
            [PY, "-c", SHOW],
            env={"MINE": "1"},
            environment=Environment.of(export_env=False, scratch=str(base), keep_scratch=True),
        )
    )
    fleet.wait([carried.id, clean.id], timeout_s=60)
    assert _seen(fleet, carried.id)["secret"] == "carried"  # the local default carries it
    seen = _seen(fleet, clean.id)
    assert seen["secret"] is None
    assert Path(str(seen["tmpdir"])).parent == base
    assert Path(str(seen["tmpdir"])).is_dir()  # kept


def test_each_job_is_pinned_to_cpus_of_its_own(fleet: Fleet, tmp_path: Path) -> None:
    # The test configuration offers 2 cores: with 2 CPUs here, jobs are pinned.
    if len(CPUS) < 2:
        pytest.skip("needs 2 CPUs")
    gate = tmp_path / "gate"
    # Both stay running until both have started, so they hold their CPUs at once.
    wait_both = f"import os,time\nwhile len(os.listdir({str(gate)!r})) < 2: time.sleep(0.05)\n"
    gate.mkdir()
    code = (
        f"import os; open(os.path.join({str(gate)!r}, os.environ['JOBFLEET_JOB_ID']), 'w')\n"
        + wait_both
        + SHOW.replace("import json, os; ", "import json\n")
    )
    one = fleet.submit(JobSpec([PY, "-c", code]))
    two = fleet.submit(JobSpec([PY, "-c", code]))
    both = fleet.submit(JobSpec([PY, "-c", SHOW], resources=Resources(cores=2)))
    done = fleet.wait([one.id, two.id, both.id], timeout_s=60)
    assert all(r.state is JobState.COMPLETED for r in done), done
    first, second, whole = (_seen(fleet, j.id) for j in (one, two, both))
    assert len(first["cpus"]) == len(second["cpus"]) == 1  # type: ignore[arg-type]
    assert first["cpus"] != second["cpus"], "two running jobs never share a CPU"
    for seen in (first, second, whole):
        assert seen["JOBFLEET_CPUS"] == ",".join(str(c) for c in seen["cpus"])  # type: ignore[attr-defined]
    assert whole["cpus"] == CPUS[:2]


def test_pinning_can_be_turned_off(jf_home: Path) -> None:
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(
        LOCAL_TEST_CONFIG.format(cores=1).replace(
            "  idle_exit: 3s\n", "  idle_exit: 3s\n  pin_cpus: false\n"
        )
    )
    with Fleet(load_config()) as fleet:
        job = fleet.submit(JobSpec([PY, "-c", SHOW]))
        assert fleet.wait([job.id], timeout_s=60)[0].state is JobState.COMPLETED
        seen = _seen(fleet, job.id)
    assert seen["cpus"] == CPUS
    assert seen["JOBFLEET_CPUS"] is None


def test_pinning_asked_for_with_more_cores_than_cpus_is_a_config_error() -> None:
    from jobfleet.backends.local import detect_capacity
    from jobfleet.errors import ConfigError

    assert detect_capacity(cores=len(CPUS) + 1).cpu_ids == ()  # auto: not pinned
    with pytest.raises(ConfigError) as err:
        detect_capacity(cores=len(CPUS) + 1, pin_cpus=True)
    assert err.value.key == "local.pin_cpus"


def test_set_e_in_the_prologue_leaves_a_failed_job_not_a_lost_one(
    fleet: Fleet, tmp_path: Path
) -> None:
    spec = JobSpec(
        ["sh", "-c", "exit 3"],
        workdir=str(tmp_path),
        environment=Environment.of(
            prologue=["set -e"], epilogue=["touch epilogue-ran"], scratch=str(tmp_path)
        ),
    )
    done = fleet.wait([fleet.submit(spec).id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.FAILED, 3)
    assert (tmp_path / "epilogue-ran").exists()
    assert not list(tmp_path.glob("jobfleet-*"))


def test_a_cancel_during_the_prologue_is_recorded_and_removes_scratch(
    fleet: Fleet, tmp_path: Path
) -> None:
    spec = JobSpec(
        ["touch", "ran"],
        workdir=str(tmp_path),
        environment=Environment.of(prologue=["touch in-set-up; sleep 60"], scratch=str(tmp_path)),
    )
    job = fleet.submit(spec)
    deadline = time.monotonic() + 30
    while not (tmp_path / "in-set-up").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    fleet.cancel([job.id])
    done = fleet.wait([job.id], timeout_s=60)[0]
    assert (done.state, done.exit_code) == (JobState.CANCELLED, 143), done
    assert "interrupted by SIGTERM" in fleet.log_path(job.id, stream="stderr").read_text()
    assert not (tmp_path / "ran").exists()
    assert not list(tmp_path.glob("jobfleet-*"))
