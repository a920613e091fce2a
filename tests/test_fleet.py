"""Fleet over a fake backend: what gets recorded when submissions fail, half-way or at once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jobfleet import fleet as fleet_module
from jobfleet.backends.base import Backend, NativeStatus, PollTarget, SubmitRequest
from jobfleet.config import load_config
from jobfleet.errors import ConfigError, SpecError, SubmitError
from jobfleet.fleet import Fleet
from jobfleet.spec import JobSpec
from jobfleet.states import JobState

S = JobState


class FakeBackend(Backend):
    """Answers submissions from a script of results; polls know nothing."""

    name = "fake"
    dialect = "local"

    def __init__(self, results: Sequence[str | SubmitError] | BaseException = ()) -> None:
        self.results = results
        self.submitted: list[SubmitRequest] = []
        self.polled: list[PollTarget] = []

    def submit(self, request: SubmitRequest) -> str:  # pragma: no cover - submit_many is used
        raise AssertionError("Fleet submits through submit_many")

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | SubmitError]:
        self.submitted.extend(requests)
        if isinstance(self.results, BaseException):
            raise self.results
        assert len(self.results) == len(requests)
        return list(self.results)

    def submit_argv(self, request: SubmitRequest) -> list[str] | None:
        return None

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self.polled.extend(targets)
        return {}

    def cancel(self, native_ids: Sequence[str]) -> None:
        pass


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    with Fleet(config, home=tmp_path / "home") as f:
        yield f


def use(fleet: Fleet, backend: FakeBackend) -> FakeBackend:
    fleet._backends[backend.name] = backend  # as if configured
    return backend


def spec(name: str, env: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(["true"], name=name, workdir="/", env=env or {})


def test_a_spec_the_script_refuses_records_nothing(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend(["1", "2"]))
    bad = spec("bad", env={"JOBFLEET_JOB_ID": "x"})
    with pytest.raises(SpecError, match="JOBFLEET_JOB_ID"):
        fleet.submit_many([spec("good"), bad], backend="fake")
    assert fleet.registry.recent() == []
    assert list((fleet.registry.home / "jobs").iterdir()) == []
    assert backend.submitted == []


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (RuntimeError("scheduler exploded"), "RuntimeError: scheduler exploded"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
    ],
)
def test_an_exception_from_the_backend_marks_every_job_failed(
    fleet: Fleet, error: BaseException, shown: str
) -> None:
    use(fleet, FakeBackend(error))
    with pytest.raises(type(error)):
        fleet.submit_many([spec("a"), spec("b")], backend="fake")
    records = fleet.registry.recent()
    assert len(records) == 2
    for record in records:
        assert record.state is S.FAILED and not record.submitted
        assert record.reason == f"submission failed: submission interrupted: {shown}"
    assert fleet.registry.unfinished() == []


def test_partial_submit_errors_fail_only_those_jobs(fleet: Fleet) -> None:
    refused = SubmitError("b", "invalid partition")
    use(fleet, FakeBackend(["101", refused, "103"]))
    with pytest.raises(SubmitError, match="1 of 3 submissions failed"):
        fleet.submit_many([spec("a"), spec("b"), spec("c")], backend="fake")
    a, b, c = sorted(fleet.registry.recent(), key=lambda r: int(r.id))
    assert (a.state, a.native_id, a.submitted) == (S.PENDING, "101", True)
    assert (c.state, c.native_id, c.submitted) == (S.PENDING, "103", True)
    assert (b.state, b.native_id, b.submitted) == (S.FAILED, None, False)
    assert b.reason == f"submission failed: {refused}"


def test_waiting_on_a_failed_submission_returns_at_once(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        fleet.submit(spec("a"), backend="fake")
    (record,) = fleet.registry.recent()
    started = time.monotonic()
    (done,) = fleet.wait([record.id], timeout_s=10)
    assert time.monotonic() - started < 2
    assert done.state is S.FAILED and not done.succeeded
    assert backend.polled == []  # never submitted: nothing to ask the backend


def test_poll_targets_carry_the_jobfleet_id(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend(["n-1"]))
    record = fleet.submit(spec("a"), backend="fake")
    fleet.status([record.id])
    assert [(t.job_id, t.native_id, t.job_dir) for t in backend.polled] == [
        (record.id, "n-1", record.job_dir)
    ]


def test_a_deleted_current_directory_is_a_spec_error(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(fleet, FakeBackend(["1"]))

    def gone() -> str:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "getcwd", gone)
    for workdir in (None, "relative"):
        with pytest.raises(SpecError, match="current directory no longer exists") as info:
            fleet.submit(JobSpec(["true"], workdir=workdir), backend="fake")
        assert info.value.field == "workdir"
    assert fleet.registry.recent() == []


def test_a_backend_name_without_an_implementation_is_a_config_error(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_module, "KNOWN_BACKENDS", ("local", "slurm", "pbs"))
    with pytest.raises(ConfigError) as info:
        fleet.backend("pbs")
    assert "local, slurm, pbs" in str(info.value)
    assert "pbs" not in fleet._backends
