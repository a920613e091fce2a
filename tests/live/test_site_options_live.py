"""Site options on the live SLURM cluster: what `scontrol show job` says SLURM took for
qos, constraint, reservation, licenses, mail, priority and begin, and that such a job
runs to its true outcome. The test makes what it asks for at runtime (a QOS and a
remote license through sacctmgr, a node feature, a one-core reservation) and removes
it again; skipped, saying why, without the cluster or without root.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SubmitError
from jobfleet.spec import JobSpec, Resources
from jobfleet.states import JobState

pytestmark = pytest.mark.live_slurm

NAME = "jfsiteopt"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


def shown(native_id: str) -> dict[str, str]:
    """`scontrol show job` of one job, key -> value."""
    out = run("scontrol", "show", "job", native_id, "--oneliner").stdout
    return dict(re.findall(r"(?:^|\s)([A-Za-z]+)=(\S*)", out))


@pytest.fixture
def site(slurm_home: Path) -> Iterator[None]:
    """A QOS, a remote license, a node feature and a reservation of one core, all named
    NAME, made for the test and removed after it."""
    if os.geteuid() != 0:
        pytest.skip("making a QOS, a license and a reservation needs SLURM's admin (root)")
    node = run("sinfo", "--noheader", "--format=%N").stdout.split()[0]
    features = run("sinfo", "--noheader", "--format=%f").stdout.split()[0]
    run("sacctmgr", "-i", "add", "qos", NAME, check=False)
    run(
        *("sacctmgr", "-i", "add", "resource", f"name={NAME}", "count=2", "server=db"),
        *("servertype=flexlm", "cluster=ci", "percentallowed=100", "type=license"),
        check=False,
    )
    run("scontrol", "update", f"NodeName={node}", f"AvailableFeatures={NAME}",
        f"ActiveFeatures={NAME}")  # fmt: skip
    run("scontrol", "delete", f"ReservationName={NAME}", check=False)
    run(
        *("scontrol", "create", "reservation", f"ReservationName={NAME}", "StartTime=now"),
        *("Duration=10", "Users=root", "CoreCnt=1", f"Nodes={node}"),
    )
    try:
        yield
    finally:
        run("scontrol", "delete", f"ReservationName={NAME}", check=False)
        old = "" if features == "(null)" else features
        run("scontrol", "update", f"NodeName={node}", f"AvailableFeatures={old}",
            f"ActiveFeatures={old}", check=False)  # fmt: skip
        run("sacctmgr", "-i", "delete", "resource", NAME, "server=db", check=False)
        run("sacctmgr", "-i", "delete", "qos", NAME, check=False)


@pytest.fixture
def fleet(site: None) -> Iterator[Fleet]:
    f = Fleet(load_config())
    yield f
    f.close()


def test_slurm_takes_every_site_option(fleet: Fleet, tmp_path: Path) -> None:
    res = Resources.of(
        qos=NAME,
        constraint=NAME,
        reservation=NAME,
        licenses=[f"{NAME}@db:1"],
        mail_to="me@example.org",
        mail_on=["end", "fail"],
        priority=-10,
        walltime="2m",
    )
    job = fleet.submit(
        JobSpec(["sh", "-c", "sleep 2; exit 4"], workdir=str(tmp_path), resources=res)
    )
    seen = shown(job.native_id or "")
    assert seen["QOS"] == NAME
    assert seen["Features"] == NAME
    assert seen["Reservation"] == NAME
    assert seen["Licenses"] == f"{NAME}@db:1"
    assert (seen["MailUser"], seen["MailType"]) == ("me@example.org", "END,FAIL")
    assert seen["Nice"] == "10"  # priority -10: runs later among the user's jobs
    (done,) = fleet.wait([job.id], timeout_s=120)
    assert (done.state, done.exit_code) == (JobState.FAILED, 4)


def test_begin_holds_the_job_until_then(fleet: Fleet, tmp_path: Path) -> None:
    before = time.time()
    job = fleet.submit(
        JobSpec(["true"], workdir=str(tmp_path), resources=Resources.of(begin="+1h"))
    )
    seen = shown(job.native_id or "")
    assert seen["JobState"] == "PENDING" and seen["Reason"] == "BeginTime"
    start = time.mktime(time.strptime(seen["StartTime"], "%Y-%m-%dT%H:%M:%S"))
    assert before + 3600 - 5 <= start <= time.time() + 3600 + 5
    (record,) = fleet.status([job.id])
    assert record.state is JobState.PENDING
    fleet.cancel([job.id])


def test_what_the_site_has_not_is_refused_with_slurms_words(fleet: Fleet, tmp_path: Path) -> None:
    for res, words in (
        (Resources.of(constraint="nosuchfeature"), "Invalid feature specification"),
        (Resources.of(licenses=["nosuchlicense:1"]), "Invalid license specification"),
        (Resources.of(reservation="nosuchreservation"), "reservation is invalid"),
    ):
        with pytest.raises(SubmitError) as info:
            fleet.submit(JobSpec(["true"], workdir=str(tmp_path), resources=res))
        assert words in str(info.value)
    assert not [
        r for r in fleet.status() if r.native_id is not None and r.state.is_terminal is False
    ]
