"""The backends the contract suite runs against, and what each one cannot be asked.

Adding a backend to the suite is one entry in :data:`BACKENDS`: its id, the
fixture that gives a JOBFLEET_HOME and JOBFLEET_CONFIG for it (skipping, saying
why, when its scheduler is not there), the shortest walltime it enforces, and
the contract items that do not apply to it, each with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import SLURM_TEST_CONFIG
from jobfleet import Fleet, load_config

SHIMS = Path(__file__).parent.parent / "shims"


@dataclass(frozen=True)
class BackendUnderTest:
    """One backend of the contract suite.

    Attributes:
        id: the test id.
        home: the fixture that configures JOBFLEET_HOME and JOBFLEET_CONFIG for it.
        walltime: the shortest time limit it enforces (SLURM counts whole minutes).
        submit_command: the program a submission runs; None for a backend that
            hands jobs over without one (the local agent's queue).
        native_id: what its job ids look like (a regular expression).
        not_applicable: contract items (test names without ``test_``) it is not
            held to, each with the reason; the test then skips saying so.
        time_resolution_s: how finely its accounting tells when jobs were submitted,
            started and ended.
    """

    id: str
    home: str
    walltime: str
    submit_command: str | None
    native_id: str = r"[0-9]+"
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    time_resolution_s: float = 1.0

    def require(self, item: str) -> None:
        """Skip, giving the declared reason, when ``item`` does not apply here."""
        why = self.not_applicable.get(item)
        if why is not None:
            pytest.skip(f"not applicable to {self.id}: {why}")


BACKENDS = [
    BackendUnderTest("local", home="jf_home", walltime="3s", submit_command=None),
    BackendUnderTest("slurm", home="slurm_home", walltime="1m", submit_command="sbatch"),
    BackendUnderTest("sge", home="sge_home", walltime="10s", submit_command="qsub"),
    BackendUnderTest("fakeslurm", home="fakeslurm_home", walltime="3s", submit_command="sbatch"),
    # bsub -W counts whole minutes: the shortest limit is a minute; bjobs prints its
    # times to the minute (Dec 28 19:56).
    BackendUnderTest(
        "fakelsf", home="fakelsf_home", walltime="1m", submit_command="bsub", time_resolution_s=60
    ),
    BackendUnderTest("fakepbs", "fakepbs_home", "3s", "qsub", native_id=r"[0-9]+\.fakepbs"),
    BackendUnderTest("faketorque", "faketorque_home", "3s", "qsub", native_id=r"[0-9]+\.fakepbs"),
    BackendUnderTest(
        "fakecondor",
        home="fakecondor_home",
        walltime="3s",
        submit_command="condor_submit",
        not_applicable={
            "cancel_a_waiting_call_and_a_running_one": "condor_rm removes only elements "
            "already materialized, and max_concurrent (max_materialize) holds the waiting "
            "one back (test_futures.py: its cancel() says False)",
        },
    ),
]

#: The fake LSF's configuration: its unit given (no lsf.conf is read), quick polls.
FAKELSF_CONFIG = """\
backend: lsf
wait:
  poll_interval: 0.5s
  min_gap: 0.2s
lsf:
  unit_for_limits: MB
  command_timeout: 30s
  retry_backoff: 0.5s
"""


@pytest.fixture(params=BACKENDS, ids=lambda b: b.id)
def backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    """Each backend in turn, its JOBFLEET_HOME and JOBFLEET_CONFIG exported; a test
    of an item declared not applicable to it skips, saying why."""
    under_test: BackendUnderTest = request.param
    under_test.require(request.node.originalname.removeprefix("test_"))
    request.getfixturevalue(under_test.home)
    return under_test


@pytest.fixture
def fleet(backend: BackendUnderTest) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


@pytest.fixture
def fakeslurm_home(
    jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The fake SLURM programs of tests/shims first on PATH, with their ``slurmd``
    running the jobs, and a configuration for the SLURM backend."""
    if shutil.which("flock") is None:
        pytest.skip("the fake sbatch needs flock(1) (util-linux)")
    state = tmp_path / "fakeslurm"
    state.mkdir()
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(SLURM_TEST_CONFIG)
    monkeypatch.setenv("PATH", f"{SHIMS / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKESLURM_STATE", str(state / "state.json"))
    monkeypatch.setenv("FAKESLURM_PYTHON", sys.executable)
    with (state / "slurmd.log").open("w") as log:
        slurmd = subprocess.Popen(
            [sys.executable, str(SHIMS / "fakeslurm.py"), "slurmd"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    yield jf_home
    slurmd.send_signal(signal.SIGTERM)  # it kills the jobs still running
    slurmd.wait(timeout=30)


@pytest.fixture
def fakelsf_home(jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake LSF programs of tests/shims/lsfbin first on PATH, its ``lsfd`` running
    the jobs, bjobs forgetting finished jobs after 5 s (so bhist -l tells how they
    ended), and a configuration for the LSF backend."""
    state = tmp_path / "fakelsf"
    state.mkdir()
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(FAKELSF_CONFIG)
    monkeypatch.setenv("PATH", f"{SHIMS / 'lsfbin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKELSF_STATE", str(state / "state.json"))
    monkeypatch.setenv("FAKELSF_PYTHON", sys.executable)
    monkeypatch.setenv("FAKELSF_CLEAN_PERIOD", "5")
    with (state / "lsfd.log").open("w") as log:
        lsfd = subprocess.Popen(
            [sys.executable, str(SHIMS / "fakelsf.py"), "lsfd"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    yield jf_home
    lsfd.send_signal(signal.SIGTERM)  # it kills the jobs still running
    lsfd.wait(timeout=30)


PBS_CONFIG = """\
backend: {dialect}
wait:
  poll_interval: 0.5s
  min_gap: 0.2s
{dialect}:
  command_timeout: 30s
  retry_backoff: 0.5s
{extra}"""


@contextlib.contextmanager
def _fake_pbs(
    dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = ""
) -> Iterator[None]:
    """The fake PBS (or Torque) programs of tests/shims first on PATH, its server
    running the jobs, and a configuration for that backend."""
    state = tmp_path / f"fake{dialect}"
    state.mkdir()
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(PBS_CONFIG.format(dialect=dialect, extra=extra))
    monkeypatch.setenv("PATH", f"{SHIMS / 'pbsbin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKEPBS_STATE", str(state / "state.json"))
    monkeypatch.setenv("FAKEPBS_PYTHON", sys.executable)
    monkeypatch.setenv("FAKEPBS_DIALECT", dialect)
    if dialect == "torque":  # the limit of old servers and site filters: names are cut
        monkeypatch.setenv("FAKEPBS_NAME_LIMIT", "15")
        # The site's server sets exit_code_canceled_job, the one way Torque records a
        # delete (docs/torque.md); jobfleet is told the same value (below).
        monkeypatch.setenv("FAKEPBS_EXIT_CODE_CANCELED", "-20")
    with (state / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, str(SHIMS / "fakepbs.py"), "server"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    yield
    server.send_signal(signal.SIGTERM)  # it kills the jobs still running
    server.wait(timeout=30)


@pytest.fixture
def fakepbs_home(jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with _fake_pbs("pbs", tmp_path, monkeypatch):
        yield jf_home


@pytest.fixture
def faketorque_home(
    jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    extra = "  name_limit: 15\n  exit_code_canceled_job: -20\n"
    with _fake_pbs("torque", tmp_path, monkeypatch, extra):
        yield jf_home


#: The HTCondor backend, polling fast, on the fake pool of tests/shims/fakecondor.py.
HTCONDOR_TEST_CONFIG = """\
backend: htcondor
wait:
  poll_interval: 0.5s
  min_gap: 0.2s
htcondor:
  command_timeout: 30s
  retry_backoff: 0.5s
"""


@pytest.fixture
def fakecondor_home(
    jf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The fake HTCondor tools of tests/shims/condor_bin first on PATH, with their
    schedd running the jobs, and a configuration for the HTCondor backend."""
    state = tmp_path / "fakecondor"
    state.mkdir()
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(HTCONDOR_TEST_CONFIG)
    monkeypatch.setenv("PATH", f"{SHIMS / 'condor_bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKECONDOR_STATE", str(state / "pool.json"))
    monkeypatch.setenv("FAKECONDOR_PYTHON", sys.executable)
    # The starter's hard kill after a soft kill (MachineMaxVacateTime, 600 s): shorter here.
    monkeypatch.setenv("FAKECONDOR_MAX_VACATE_TIME", "10")
    with (state / "schedd.log").open("w") as log:
        schedd = subprocess.Popen(
            [sys.executable, str(SHIMS / "fakecondor.py"), "schedd"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    yield jf_home
    schedd.send_signal(signal.SIGTERM)  # it kills the jobs still running
    schedd.wait(timeout=30)
