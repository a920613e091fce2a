"""Fleet's views for the command line: unfinished and recent jobs, and the
scheduler's queue with each row's jobfleet id (``jobfleet queue``, ``top``, ``wait --all``)."""

from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jobfleet.backends.base import Backend, NativeStatus, PollTarget, QueueEntry, SubmitRequest
from jobfleet.config import load_config
from jobfleet.engine import views as views_module
from jobfleet.engine.fleet import Fleet, QueueRow
from jobfleet.naming import scheduler_name
from jobfleet.registry import NewJob, StatusUpdate
from jobfleet.script import LOCAL, Dialect
from jobfleet.spec import JobSpec
from jobfleet.states import JobRecord, JobState

R = JobState.RUNNING
ME = pwd.getpwuid(os.geteuid()).pw_name


class QueueBackend(Backend):
    """A scheduler whose queue shows the rows a test gives it; polls know nothing."""

    name = "fake"

    def __init__(self, rows: Sequence[QueueEntry] = ()) -> None:
        self.rows = list(rows)
        self.listed: list[bool] = []

    def submit(self, request: SubmitRequest) -> str:  # pragma: no cover - not used here
        raise AssertionError("nothing is submitted here")

    def submit_argv(self, request: SubmitRequest) -> list[str] | None:  # pragma: no cover
        return None

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        return {}

    def cancel(  # pragma: no cover - not used here
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        return {}

    def find_submitted(self, name: str, job_id: str) -> str | None:  # pragma: no cover
        return None

    def script_dialect(self) -> Dialect:  # pragma: no cover - nothing is rendered here
        return LOCAL

    def list_queue(self, all_users: bool = False) -> list[QueueEntry]:
        self.listed.append(all_users)
        return list(self.rows)


class OtherBackend(QueueBackend):
    name = "other"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    with Fleet(config, home=tmp_path / "home") as f:
        yield f


def use(fleet: Fleet, backend: QueueBackend) -> QueueBackend:
    fleet.use_backend(backend)  # as if configured
    return backend


def record(fleet: Fleet, name: str, native_id: str, backend: str = "fake") -> JobRecord:
    (job,) = fleet.registry.create_jobs(
        [NewJob(name, backend, JobSpec(["true"], name=name))], [native_id]
    )
    return job


def row(native_id: str, name: str, user: str = ME, tasks: str | None = None) -> QueueEntry:
    shown = native_id if tasks is None else f"{native_id}_{tasks}"
    return QueueEntry(native_id, tasks, shown, name, user, R, "RUNNING")


def test_queue_rows_are_ours_by_native_id_name_and_user(fleet: Fleet) -> None:
    ours = record(fleet, "train", "101")
    adopted = record(fleet, "by-hand", "303")
    name = scheduler_name(fleet.registry.token, ours.id, "train")
    rows = [
        row("101", name),
        row("101", "jf00000000-1-train"),  # the id reused by another registry's job
        row("202", name),  # not in the registry
        row("303", "by-hand", tasks="2"),  # adopted: keeps its own name
        row("101", name, user=f"not-{ME}"),  # not this user's
    ]
    use(fleet, QueueBackend(rows))
    listed = fleet.queue("fake")
    assert [r.job_id for r in listed] == [ours.id, None, None, adopted.id, None]
    assert [r.entry for r in listed] == rows  # every row, in the scheduler's order
    assert {r.backend for r in listed} == {"fake"}


def test_a_native_id_of_another_backend_is_not_ours(fleet: Fleet) -> None:
    ours = record(fleet, "train", "101")
    use(fleet, QueueBackend())
    other = use(fleet, OtherBackend([row("101", "train")]))
    assert [r.job_id for r in fleet.queue("other")] == [None]
    other.rows = [row("101", scheduler_name(fleet.registry.token, ours.id, "train"))]
    assert [r.job_id for r in fleet.queue("other")] == [None]


def test_a_retried_job_is_ours_under_its_current_attempts_name(fleet: Fleet) -> None:
    job = record(fleet, "train", "101")
    token = fleet.registry.token
    backend = use(fleet, QueueBackend([row("101", scheduler_name(token, job.id, "train", 2))]))
    assert [r.job_id for r in fleet.queue("fake")] == [None]  # attempt 1 is the recorded one
    backend.rows = [row("101", scheduler_name(token, job.id, "train", 1))]
    assert [r.job_id for r in fleet.queue("fake")] == [job.id]


def test_a_user_without_a_name_owns_every_row(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = record(fleet, "train", "101")
    monkeypatch.setattr(views_module, "user_name", lambda: None)
    name = scheduler_name(fleet.registry.token, job.id, "train")
    use(fleet, QueueBackend([row("101", name, user="somebody")]))
    assert [r.job_id for r in fleet.queue("fake")] == [job.id]


def test_queue_passes_all_users_on_and_uses_the_configured_backend(fleet: Fleet) -> None:
    backend = use(fleet, QueueBackend())
    fleet.config = dataclasses.replace(fleet.config, backend="fake")  # as if configured
    assert fleet.queue() == []
    assert fleet.queue(all_users=True) == []
    assert backend.listed == [False, True]


def test_queue_row_json_is_the_queue_commands_contract() -> None:
    entry = row("303", "by-hand", tasks="2")
    assert QueueRow("7", "slurm", entry).to_dict() == {
        "id": "7",
        "backend": "slurm",
        **entry.to_dict(),
    }
    assert list(QueueRow(None, "sge", entry).to_dict())[:3] == ["id", "backend", "native_id"]


def test_unfinished_and_recent_are_the_records_as_recorded(fleet: Fleet) -> None:
    first = record(fleet, "first", "1")
    second = record(fleet, "second", "2")
    third = record(fleet, "third", "3", backend="other")
    fleet.registry.apply([StatusUpdate(second.id, JobState.COMPLETED, exit_code=0)])
    assert [r.id for r in fleet.unfinished()] == [first.id, third.id]  # oldest first
    assert [r.id for r in fleet.unfinished("other")] == [third.id]
    assert [r.id for r in fleet.recent(2)] == [third.id, second.id]  # newest first
    assert [r.id for r in fleet.recent()] == [third.id, second.id, first.id]
    # As recorded: no scheduler is asked (no backend "fake" or "other" is even set up).
    assert [r.state for r in fleet.recent()] == [third.state, JobState.COMPLETED, first.state]


def test_log_path_of_an_element_reads_that_element_only(fleet: Fleet) -> None:
    from jobfleet.errors import SpecError
    from jobfleet.spec import parse_array

    spec = JobSpec(["true"], name="arr", array=parse_array("3-2002"))
    (job,) = fleet.registry.create_jobs([NewJob("arr", "local", spec)], ["88"])
    (single,) = fleet.registry.create_jobs([NewJob("one", "local", JobSpec(["true"]))], ["89"])
    # The record a log path is made from holds the one element asked for, or none.
    assert list(fleet.registry.get_with_element(job.id, 1500).elements) == [1500]
    assert fleet.registry.get_with_element(job.id, 2).elements == {}
    assert fleet.registry.get_with_element(job.id, None).elements == {}
    assert fleet.registry.first_indices(job.id, 5) == [3, 4, 5, 6, 7]
    assert fleet.registry.first_indices(single.id, 5) == []
    Path(job.job_dir, "1").mkdir()  # as the submitter makes it (absent: written flat before)
    path = fleet.log_path(job.id, index=1500)
    assert path == Path(job.job_dir, "1", "stdout.1500")  # sharded by index // 1000
    assert fleet.log_path(single.id, stream="stderr") == Path(single.job_dir, "stderr")
    with pytest.raises(SpecError, match=r"is an array; pass --index N \(e.g. 3, 4, 5, 6, 7\)"):
        fleet.log_path(job.id)
    with pytest.raises(SpecError, match="has no element 2"):
        fleet.log_path(job.id, index=2)
    with pytest.raises(SpecError, match="has no element 0"):
        fleet.log_path(single.id, index=0)
