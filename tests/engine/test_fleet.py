"""Fleet over a fake backend: what gets recorded when submissions fail, half-way or at once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends.base import Backend, Capabilities, NativeStatus, PollTarget, SubmitRequest
from jobfleet.config import load_config
from jobfleet.engine import handover
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import CommandError, ConfigError, RegistryError, SpecError, SubmitError
from jobfleet.script import LOCAL, Dialect
from jobfleet.spec import Dependency, DepKind, JobSpec, parse_array
from jobfleet.states import JobState

S = JobState


Answer = str | SubmitError | BaseException


class FakeBackend(Backend):
    """Answers submissions from a script of answers, one job at a time (``submit``), or
    all at once with ``bulk`` (``submit_many``, as the local backend); polls know nothing.

    An answer is a native id, a SubmitError for that job, or an exception to raise
    when that job is submitted (for ``bulk``: a single exception instead of a list).
    """

    name = "fake"

    def script_dialect(self) -> Dialect:
        return LOCAL

    def __init__(
        self,
        results: Sequence[Answer] | BaseException = (),
        found: dict[str, str] | CommandError | None = None,
        *,
        bulk: bool = False,
    ) -> None:
        self.results = results
        self.found = found if found is not None else {}  # job id -> native id on the "scheduler"
        self.capabilities = replace(self.capabilities, bulk_submit=bulk)
        self.submitted: list[SubmitRequest] = []
        self.polled: list[PollTarget] = []
        self.looked_for: list[tuple[str, str]] = []
        self.cancelled: list[tuple[list[str], Sequence[int] | None, str | None]] = []
        #: Called with each request as it is submitted, one at a time.
        self.on_submit: Callable[[SubmitRequest], None] = lambda request: None

    def submit(self, request: SubmitRequest) -> str:
        assert not self.capabilities.bulk_submit, "a bulk backend gets submit_many"
        self.submitted.append(request)
        self.on_submit(request)
        answer = (
            self.results
            if isinstance(self.results, BaseException)
            else self.results[len(self.submitted) - 1]
        )
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[str | SubmitError]:
        assert self.capabilities.bulk_submit, "one job at a time unless bulk_submit"
        self.submitted.extend(requests)
        if isinstance(self.results, BaseException):
            raise self.results
        assert len(self.results) == len(requests)
        return [a for a in self.results if isinstance(a, str | SubmitError)]

    def submit_argv(self, request: SubmitRequest) -> list[str] | None:
        return None

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self.polled.extend(targets)
        return {}

    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        self.cancelled.append((list(native_ids), indices, signal))
        return {}

    def find_submitted(self, name: str, job_id: str) -> str | None:
        self.looked_for.append((name, job_id))
        if isinstance(self.found, CommandError):
            raise self.found
        return self.found.get(job_id)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    with Fleet(config, home=tmp_path / "home") as f:
        yield f


def use(fleet: Fleet, backend: FakeBackend) -> FakeBackend:
    fleet.use_backend(backend)  # as if configured
    return backend


def spec(name: str, env: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(["true"], name=name, workdir="/", env=env or {})


def test_a_job_the_scheduler_took_but_the_registry_could_not_record_is_named(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(fleet, FakeBackend(["7"]))

    def disk_full(submitted: object) -> None:
        raise RegistryError("cannot write the job registry X: no space left")

    monkeypatch.setattr(fleet.registry, "mark_submitted_many", disk_full)
    with pytest.raises(RegistryError) as info:
        fleet.submit(spec("a"), backend="fake")
    message = str(info.value)
    assert message.startswith("job 1 (native id 7) reached fake but could not be recorded")
    assert "no space left" in message and "finds it by its name" in message
    # Still recorded as being submitted by this process: once it is gone, the next
    # status looks for the job by its name (awaits_reconciling).
    (record,) = fleet.records(["1"])
    assert not record.submitted and record.state is JobState.UNKNOWN


def test_a_spec_the_script_refuses_records_nothing(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend(["1", "2"]))
    bad = spec("bad", env={"JOBFLEET_JOB_ID": "x"})
    with pytest.raises(SpecError, match="JOBFLEET_JOB_ID"):
        fleet.submit_many([spec("good"), bad], backend="fake")
    assert fleet.registry.recent() == []
    assert list((fleet.registry.home / "jobs").rglob("*")) == []
    assert backend.submitted == []


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (RuntimeError("scheduler exploded"), "RuntimeError: scheduler exploded"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
    ],
)
def test_an_exception_from_a_bulk_backend_leaves_jobs_unknown_until_looked_for(
    fleet: Fleet, error: BaseException, shown: str
) -> None:
    # The backend may have accepted some before the exception: not "failed" yet.
    backend = use(fleet, FakeBackend(error, bulk=True))
    with pytest.raises(type(error)):
        fleet.submit_many([spec("a"), spec("b")], backend="fake")
    a, b = sorted(fleet.registry.recent(), key=lambda r: int(r.id))
    for record in (a, b):
        assert record.state is S.UNKNOWN and not record.submitted
        assert record.reason and record.reason.startswith(f"submission outcome unknown ({shown})")
    # The next status looks for them by name: one reached the scheduler, one did not.
    backend.found = {a.id: "n-7"}
    a, b = fleet.status([a.id, b.id])
    assert (a.state, a.native_id, a.submitted) == (S.PENDING, "n-7", True)
    assert (b.state, b.reason) == (S.FAILED, "submission failed: it never reached the scheduler")
    assert [job_id for _, job_id in backend.looked_for] == [a.id, b.id]
    assert backend.looked_for[0][0].startswith("jf") and backend.looked_for[0][0].endswith("-a")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (RuntimeError("scheduler exploded"), "RuntimeError: scheduler exploded"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
    ],
)
def test_a_stop_half_way_records_each_job_as_far_as_it_got(
    fleet: Fleet, error: BaseException, shown: str
) -> None:
    refused = SubmitError("b", "invalid partition")
    backend = use(fleet, FakeBackend(["101", refused, error, "104", "105"]))
    with pytest.raises(type(error)):
        fleet.submit_many([spec(n) for n in "abcde"], backend="fake")
    a, b, c, d, e = sorted(fleet.registry.recent(), key=lambda r: int(r.id))
    assert [r.job_id for r in backend.submitted] == [a.id, b.id, c.id], "in order; none after"
    assert (a.state, a.native_id, a.submitted) == (S.PENDING, "101", True)
    assert (b.state, b.reason, b.submitted) == (S.FAILED, f"submission failed: {refused}", False)
    # It was being submitted: it may have reached the scheduler.
    assert (c.state, c.submitted) == (S.UNKNOWN, False)
    assert c.reason and c.reason.startswith(f"submission outcome unknown ({shown})")
    for never in (d, e):
        assert never.never_submitted and never.reason == (
            f"submission failed: submission interrupted before reaching the backend: {shown}"
        )
    # The next status looks for the one being submitted only, by its name.
    backend.found = {c.id: "n-3"}
    c, d = fleet.status([c.id, d.id])
    assert (c.state, c.native_id, c.submitted) == (S.PENDING, "n-3", True)
    assert d.never_submitted
    assert [job_id for _, job_id in backend.looked_for] == [c.id]


@pytest.mark.parametrize("bulk", [False, True])
def test_a_script_that_cannot_be_written_stops_the_batch_before_any_submission(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    backend = use(fleet, FakeBackend(["101", "102", "103", "104"], bulk=bulk))
    write = Path.write_text

    def third_fails(path: Path, *args: Any, **kwargs: Any) -> int:
        if path.name == "job.sh" and path.parent.name == "3":
            raise OSError(28, "No space left on device", str(path))
        return write(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", third_fails)
    with pytest.raises(OSError, match="No space left"):
        fleet.submit_many([spec(n) for n in "abcd"], backend="fake")
    assert backend.submitted == []
    for record in fleet.registry.recent():
        assert record.never_submitted and "No space left on device" in (record.reason or "")
        assert "before reaching the backend" in (record.reason or "")


@pytest.mark.parametrize("every_s", [0.0, 3600.0])
def test_jobs_submitted_one_at_a_time_are_recorded_as_they_go(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, every_s: float
) -> None:
    monkeypatch.setattr(handover, "MARK_EVERY_S", every_s)
    backend = use(fleet, FakeBackend(["101", "102", "103"]))
    seen: list[list[str | None]] = []  # at each submission, the native ids recorded
    backend.on_submit = lambda request: seen.append(
        [r.native_id for r in sorted(fleet.registry.recent(), key=lambda r: int(r.id))]
    )
    records = fleet.submit_many([spec(n) for n in "abc"], backend="fake")
    if every_s == 0:  # after each one
        assert seen == [[None, None, None], ["101", None, None], ["101", "102", None]]
    else:  # in one transaction at the end (a hand-over shorter than MARK_EVERY_S)
        assert seen == [[None, None, None]] * 3
    assert [(r.state, r.native_id, r.submitted) for r in records] == [
        (S.PENDING, n, True) for n in ("101", "102", "103")
    ]


def test_a_registry_that_fails_half_way_stops_the_submissions_and_names_the_jobs(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handover, "MARK_EVERY_S", 0.0)
    backend = use(fleet, FakeBackend(["101", "102", "103"]))

    def disk_full(submitted: object) -> None:
        raise RegistryError("cannot write the job registry X: no space left")

    monkeypatch.setattr(fleet.registry, "mark_submitted_many", disk_full)
    with pytest.raises(RegistryError) as info:
        fleet.submit_many([spec(n) for n in "abc"], backend="fake")
    assert str(info.value).startswith("job 1 (native id 101) reached fake but could not be")
    a, b, c = sorted(fleet.registry.recent(), key=lambda r: int(r.id))
    assert [r.job_id for r in backend.submitted] == [a.id], "nothing more once it cannot record"
    # Still being submitted by this process: once it is gone, found by its name.
    assert (a.state, a.submitted) == (S.UNKNOWN, False) and a.reason.startswith("being submitted")
    assert b.never_submitted and c.never_submitted


def test_an_unanswered_lookup_keeps_the_job_unknown(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        fleet.submit(spec("a"), backend="fake")
    backend.found = CommandError(["squeue"], "controller down", transient=True)
    (record,) = fleet.status()
    assert record.state is S.UNKNOWN, "cannot tell is unknown, never failed"


def test_a_script_that_cannot_be_written_fails_before_reaching_the_backend(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = use(fleet, FakeBackend(["1"]))

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(OSError):
        fleet.submit(spec("a"), backend="fake")
    (record,) = fleet.registry.recent()
    assert record.state is S.FAILED and "disk full" in (record.reason or "")
    assert backend.submitted == []


def test_a_submission_that_may_have_gone_through_is_unknown(fleet: Fleet) -> None:
    unsure = SubmitError("a", "sbatch timed out", maybe_submitted=True)
    use(fleet, FakeBackend([unsure]))
    with pytest.raises(SubmitError) as info:
        fleet.submit(spec("a"), backend="fake")
    assert info.value.maybe_submitted
    (record,) = fleet.registry.recent()
    assert record.state is S.UNKNOWN and "sbatch timed out" in (record.reason or "")


def test_partial_submit_errors_fail_only_those_jobs(fleet: Fleet) -> None:
    refused = SubmitError("b", "invalid partition")
    use(fleet, FakeBackend(["101", refused, "103"]))
    with pytest.raises(SubmitError, match="1 of 3 submissions did not go through"):
        fleet.submit_many([spec("a"), spec("b"), spec("c")], backend="fake")
    a, b, c = sorted(fleet.registry.recent(), key=lambda r: int(r.id))
    assert (a.state, a.native_id, a.submitted) == (S.PENDING, "101", True)
    assert (c.state, c.native_id, c.submitted) == (S.PENDING, "103", True)
    assert (b.state, b.native_id, b.submitted) == (S.FAILED, None, False)
    assert b.reason == f"submission failed: {refused}"


def test_waiting_on_a_failed_submission_returns_at_once(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend([SubmitError("a", "invalid partition")]))
    with pytest.raises(SubmitError):
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
    # A name is known only with its implementation (the catalog's entry points).
    with pytest.raises(ConfigError) as info:
        fleet.backend("pbspro")
    assert "choose one of htcondor, local, lsf, pbs, sge, slurm, torque" in str(info.value)
    assert "pbspro" not in [b.name for b in fleet._backends.made()]


class SettlingBackend(FakeBackend):
    """Jobs end as the test says; everything else as FakeBackend."""

    def __init__(self) -> None:
        super().__init__()
        self.next_id = 0
        self.ends: dict[str, JobState] = {}

    def submit(self, request: SubmitRequest) -> str:
        self.submitted.append(request)
        self.next_id += 1
        return str(self.next_id)

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        return {
            t.native_id: NativeStatus(self.ends[t.native_id])
            for t in targets
            if t.native_id in self.ends
        }


@pytest.mark.parametrize(
    ("kind", "ended", "expect"),
    [
        (DepKind.AFTER_OK, S.COMPLETED, "dropped"),
        (DepKind.AFTER_OK, S.FAILED, "never"),
        (DepKind.AFTER_OK, S.TIMEOUT, "never"),
        (DepKind.AFTER_NOT_OK, S.FAILED, "dropped"),
        (DepKind.AFTER_NOT_OK, S.COMPLETED, "never"),
        (DepKind.AFTER_ANY, S.CANCELLED, "dropped"),
        (DepKind.AFTER_OK, S.RUNNING, "kept"),
    ],
)
def test_dependencies_on_ended_jobs_are_settled_before_submission(
    fleet: Fleet, kind: DepKind, ended: JobState, expect: str
) -> None:
    backend = use(fleet, SettlingBackend())
    first = fleet.submit(spec("first"), backend="fake")
    backend.ends[first.native_id or ""] = ended
    then = fleet.submit(
        JobSpec(["true"], name="then", workdir="/", dependencies=(Dependency(kind, (first.id,)),)),
        backend="fake",
    )
    request = backend.submitted[-1]
    if expect == "never":
        assert then.state is S.CANCELLED and not then.submitted
        assert "can never be met" in (then.reason or "") and ended.value in (then.reason or "")
        assert request.job_id == first.id, "the dependent is never handed to the backend"
    elif expect == "dropped":
        assert request.job_id == then.id and request.dependencies == ()
    else:
        assert request.dependencies == ((kind, (first.native_id,)),)
        assert request.dependency_owners == {first.native_id: first.id}


def test_cancel_passes_elements_and_a_normalised_signal(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend(["7"]))
    array = fleet.submit(
        JobSpec(["true"], name="arr", workdir="/", array=parse_array("1-3")), backend="fake"
    )
    fleet.cancel([array.id], indices=[2])
    fleet.cancel([array.id], signal="sigusr1")
    assert backend.cancelled == [(["7"], [2], None), (["7"], None, "USR1")]
    with pytest.raises(SpecError, match="no element 9"):
        fleet.cancel([array.id], indices=[9])
    with pytest.raises(SpecError, match="not a signal"):
        fleet.cancel([array.id], signal="NOPE")


def test_cancelling_a_job_of_unknown_submission_finds_it_by_name_first(fleet: Fleet) -> None:
    backend = use(fleet, FakeBackend(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        fleet.submit(spec("a"), backend="fake")
    (record,) = fleet.registry.recent()
    backend.found = {record.id: "n-9"}  # it did reach the scheduler
    fleet.cancel([record.id])
    assert backend.cancelled == [(["n-9"], None, None)]
    assert fleet.registry.get(record.id).native_id == "n-9"


class AfterAnyBackend(SettlingBackend):
    """A scheduler whose dependencies only wait for the end (like Grid Engine)."""

    capabilities = Capabilities(dependencies=frozenset({DepKind.AFTER_ANY}))


def test_scripts_check_what_after_any_schedulers_cannot(fleet: Fleet) -> None:
    backend = use(fleet, AfterAnyBackend())
    first = fleet.submit(spec("first"), backend="fake")
    then = fleet.submit(
        JobSpec(
            ["true"],
            name="then",
            workdir="/",
            dependencies=(Dependency(DepKind.AFTER_OK, (first.id,)),),
        ),
        backend="fake",
    )
    script = Path(then.job_dir, "job.sh").read_text()
    assert f"__jf_check {first.job_dir}/exit_code || __jf_never" in script
    assert backend.submitted[-1].dependencies == ((DepKind.AFTER_OK, (first.native_id,)),)


def test_dependencies_of_a_batch_are_asked_about_once(fleet: Fleet) -> None:
    backend = use(fleet, SettlingBackend())
    polls: list[int] = []
    original = backend.poll

    def counted(targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        polls.append(len(targets))
        return original(targets)

    backend.poll = counted  # type: ignore[method-assign]
    first = fleet.submit(spec("first"), backend="fake")
    deps = (Dependency(DepKind.AFTER_OK, (first.id,)),)
    fleet.submit_many(
        [JobSpec(["true"], name=f"d{i}", workdir="/", dependencies=deps) for i in range(50)],
        backend="fake",
    )
    assert polls == [1], "one poll for the one job all fifty depend on"


class FlakyBackend(SettlingBackend):
    """Its first poll finds the scheduler down; it answers afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self.polls += 1
        if self.polls == 1:
            raise CommandError(["squeue"], "controller down", transient=True)
        return {t.native_id: NativeStatus(S.COMPLETED, 0) for t in targets}


def test_wait_rides_out_a_scheduler_that_does_not_answer(fleet: Fleet) -> None:
    backend = use(fleet, FlakyBackend())
    job = fleet.submit(spec("a"), backend="fake")
    (done,) = fleet.wait([job.id], timeout_s=30)
    assert done.state is S.COMPLETED and backend.polls == 2


def test_backend_settings_come_from_the_configuration(tmp_path: Path) -> None:
    from jobfleet.backends.sge import SgeBackend
    from jobfleet.backends.slurm import SlurmBackend

    (tmp_path / "c.yaml").write_text(
        "slurm: {submit_retries: 2, kill_invalid_dependents: false}\n"
        "sge: {parallel_environment: mpi, memory_resource: mem_free, verify_requests: false}\n"
    )
    with Fleet(load_config(tmp_path / "c.yaml"), home=tmp_path / "home") as fleet:
        slurm = fleet.backend("slurm")
        sge = fleet.backend("sge")
    assert isinstance(slurm, SlurmBackend) and isinstance(sge, SgeBackend)
    assert (slurm.slurm_settings.submit_retries, slurm.slurm_settings.kill_invalid_dependents) == (
        2,
        False,
    )
    s = sge.sge_settings
    assert (s.parallel_environment, s.memory_resource, s.verify_requests) == (
        "mpi",
        "mem_free",
        False,
    )


def test_old_module_paths_still_import_with_a_deprecation_warning() -> None:
    import importlib
    import sys

    for old, new in (("jobfleet.fleet", "Fleet"), ("jobfleet.monitor", "Monitor")):
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match="moved to jobfleet.engine"):
            module = importlib.import_module(old)
        import jobfleet

        assert getattr(module, new) is getattr(jobfleet, new)


def test_a_backend_with_a_flag_of_jobfleet_0_1_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="holds_mean_after_any is now part of Capabilities"):

        class Old(FakeBackend):
            holds_mean_after_any = True


def test_a_dry_run_refuses_a_bad_dependency_without_asking_any_scheduler(fleet: Fleet) -> None:
    other = use(fleet, FakeBackend(["7"]))
    (job,) = fleet.submit_many([spec("on-fake")], backend="fake")
    other.polled.clear()
    with pytest.raises(SpecError, match="dependencies must be on the same backend"):
        fleet.dry_run(
            JobSpec(["true"], dependencies=[Dependency(DepKind.AFTER_OK, (job.id,))]),
            backend="local",
        )
    assert other.polled == []  # refused before the fake scheduler was asked
