"""Adopting jobs that are on the scheduler but not in the registry."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.backends.base import NativeStatus, QueueEntry
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError
from jobfleet.naming import ADOPTED_COMMAND
from jobfleet.registry import SUBMITTING
from jobfleet.resources import Resources
from jobfleet.spec import JobSpec
from jobfleet.states import JobState
from support.board import Board, dead_owner, fleet_with

S = JobState


class Listed(Board):
    """A board whose queue listing the test writes too."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[QueueEntry] = []

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        return list(self.rows)


def row(native_id: str, name: str, tasks: str | None = None) -> QueueEntry:
    shown = native_id if tasks is None else f"{native_id}_{tasks}"
    return QueueEntry(native_id, tasks, shown, name, "me", S.PENDING, "PENDING")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with fleet_with(Listed(), tmp_path) as f:
        yield f


def listed(fleet: Fleet) -> Listed:
    be = fleet.backend("board")
    assert isinstance(be, Listed)
    return be


def test_jobs_with_the_prefix_are_adopted_once(fleet: Fleet) -> None:
    be = listed(fleet)
    be.rows = [
        row("7", "sweep-a"),
        row("8", "sweep-b", "3"),
        row("8", "sweep-b", "5-6%2"),
        row("9", "other"),
    ]
    be.board["7"] = NativeStatus(S.RUNNING)
    adopted = fleet.adopt("sweep-", backend="board")
    assert [(r.native_id, r.name, r.submitted) for r in adopted] == [
        ("7", "sweep-a", True),
        ("8", "sweep-b", True),
    ]
    assert adopted[0].state is S.RUNNING
    assert sorted(adopted[1].elements) == [3, 5, 6]
    assert adopted[0].spec["command"] == [ADOPTED_COMMAND]
    assert fleet.adopt("sweep-", backend="board") == []  # already known


def test_a_job_whose_submitter_died_is_confirmed_not_duplicated(fleet: Fleet) -> None:
    be = listed(fleet)
    (job,) = fleet.submit_many([JobSpec(["true"])], backend="board")
    native = job.native_id or ""
    # As if the submitter died before recording the submission:
    fleet.registry._conn.execute(
        "UPDATE jobs SET submitted = 0, native_id = NULL, state = 'unknown' WHERE id = ?",
        (int(job.id),),
    )
    name = be.submitted[0].name
    be.rows = [row(native, name)]
    (record,) = fleet.adopt(f"jf{fleet.registry.token}-", backend="board")
    assert (record.id, record.native_id, record.submitted) == (job.id, native, True)
    assert len(fleet.registry.recent(10)) == 1


def test_an_empty_prefix_is_refused(fleet: Fleet) -> None:
    with pytest.raises(SpecError, match="prefix"):
        fleet.adopt("", backend="board")


def _by_hand(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_a_slurm_job_submitted_by_hand_is_adopted_and_followed(
    slurm_home: Path, tmp_path: Path
) -> None:
    name = f"byhand-{uuid.uuid4().hex[:8]}"
    native = _by_hand(
        [
            "sbatch",
            "--parsable",
            f"--job-name={name}",
            f"--output={tmp_path}/out",
            "--wrap",
            "sleep 2; exit 4",
        ]
    ).split(";")[0]
    with Fleet() as fleet:
        (record,) = fleet.adopt(name)
        assert record.native_id == native and not record.state.is_terminal
        (final,) = fleet.wait([record.id], timeout_s=120)
    assert (final.state, final.exit_code) == (S.FAILED, 4)


def test_a_grid_engine_job_submitted_by_hand_is_adopted_and_followed(
    sge_home: Path, tmp_path: Path
) -> None:
    name = f"byhand-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\nsleep 2\nexit 5\n")
    native = _by_hand(
        ["qsub", "-terse", "-N", name, "-o", str(tmp_path), "-j", "y", "-cwd", str(script)]
    )
    with Fleet() as fleet:
        (record,) = fleet.adopt(name)
        assert record.native_id == native and not record.state.is_terminal
        (final,) = fleet.wait([record.id], timeout_s=120)
    assert (final.state, final.exit_code) == (S.FAILED, 5)


def test_the_adopt_command_on_live_slurm(slurm_home: Path, tmp_path: Path) -> None:
    from support.cli import jf

    name = f"cli-byhand-{uuid.uuid4().hex[:8]}"
    native = _by_hand(
        [
            "sbatch",
            "--parsable",
            f"--job-name={name}",
            f"--output={tmp_path}/out",
            "--wrap",
            "sleep 2; exit 0",
        ]
    ).split(";")[0]
    (record,) = json.loads(jf("adopt", "--prefix", name, "--json").stdout)
    assert (record["native_id"], record["name"], record["submitted"]) == (native, name, True)
    assert "nothing to adopt" in jf("adopt", "--prefix", name).stdout
    jf("wait", record["id"], "--timeout", "120")
    (final,) = json.loads(jf("status", record["id"], "--json").stdout)
    assert (final["state"], final["exit_code"]) == ("completed", 0)


def test_the_adopt_command_needs_a_prefix(jf_home: Path) -> None:
    from support.cli import jf

    proc = jf("adopt", "--prefix", "", expect=2)
    assert "prefix" in proc.stderr and "\n" not in proc.stderr.strip()


@pytest.mark.parametrize("prefix", [None, "lab42-"])
def test_many_jobs_of_dead_submitters_are_found_with_one_listing(
    fleet: Fleet, prefix: str | None
) -> None:
    be = listed(fleet)
    res = Resources.of(name_prefix=prefix)
    jobs = fleet.submit_many([JobSpec(["true"], resources=res) for _ in range(3)], backend="board")
    assert all(r.name.startswith(prefix or "jf") for r in be.submitted)
    dead = SUBMITTING + dead_owner()
    fleet.registry._conn.execute(
        "UPDATE jobs SET submitted = 0, native_id = NULL, state = 'unknown', reason = ?", (dead,)
    )
    # Two are still queued; the third already ended, so only a lookup by name finds it.
    be.rows = [row(j.native_id or "", r.name) for j, r in zip(jobs[:2], be.submitted, strict=False)]
    looked_up: list[str] = []
    real = be.find_submitted

    def find_submitted(name: str, job_id: str) -> str | None:
        looked_up.append(job_id)
        return real(name, job_id)

    be.find_submitted = find_submitted  # type: ignore[method-assign]
    records = fleet.status([j.id for j in jobs])
    assert [(r.native_id, r.submitted) for r in records] == [(j.native_id, True) for j in jobs]
    assert looked_up == [jobs[2].id]
