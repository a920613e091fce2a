"""Fleet.unfinished_matching and Fleet.cancel_matching over two fake schedulers:
which jobs a pattern or a backend chooses, and what a backend that does not answer
leaves behind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jobfleet.backends.base import Backend, NativeStatus, PollTarget, SubmitRequest
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import CommandError, ConfigError, SpecError
from jobfleet.script import LOCAL, Dialect
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobRecord, JobState

S = JobState


class Scheduler(Backend):
    """Jobs run until cancelled, or until the test ends them; ``down`` answers nothing."""

    name = "scheduler"

    def __init__(self) -> None:
        self.states: dict[str, JobState] = {}
        self.cancelled: list[tuple[list[str], Sequence[int] | None, str | None]] = []
        self.down = False

    def script_dialect(self) -> Dialect:
        return LOCAL

    def submit(self, request: SubmitRequest) -> str:
        native = f"{self.name}-{len(self.states) + 1}"
        self.states[native] = S.RUNNING
        return native

    def submit_argv(self, request: SubmitRequest) -> list[str] | None:
        return None

    def _check_up(self, argv: str) -> None:
        if self.down:
            raise CommandError([argv], "Unable to contact the controller", transient=True)

    def poll(self, targets: Sequence[PollTarget]) -> dict[str, NativeStatus]:
        self._check_up("squeue")
        found = {}
        for t in targets:
            state = self.states[t.native_id]
            elements = {i: (state, None, None) for i in t.indices or ()}
            found[t.native_id] = NativeStatus(state, elements=elements)
        return found

    def cancel(
        self,
        native_ids: Sequence[str],
        *,
        indices: Sequence[int] | None = None,
        signal: str | None = None,
    ) -> dict[str, list[int | None]]:
        self._check_up("scancel")
        self.cancelled.append((list(native_ids), indices, signal))
        for native in native_ids:
            if signal is None and not self.states[native].is_terminal:
                self.states[native] = S.CANCELLED
        return {}

    def find_submitted(self, name: str, job_id: str) -> str | None:  # pragma: no cover
        return None


class Alpha(Scheduler):
    name = "alpha"


class Beta(Scheduler):
    name = "beta"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    with Fleet(config, home=tmp_path / "home") as f:
        f.use_backend(Alpha())
        f.use_backend(Beta())
        yield f


def backend(fleet: Fleet, name: str) -> Scheduler:
    found = fleet.backend(name)
    assert isinstance(found, Scheduler)
    return found


def job(fleet: Fleet, name: str, on: str = "alpha", array: str | None = None) -> JobRecord:
    spec = JobSpec(
        ["sleep", "60"], name=name, workdir="/", array=parse_array(array) if array else None
    )
    return fleet.submit(spec, backend=on)


def cancelled_ids(fleet: Fleet, name: str) -> list[str]:
    return [native for ids, _, _ in backend(fleet, name).cancelled for native in ids]


def states(fleet: Fleet, records: Sequence[JobRecord]) -> list[JobState]:
    return [r.state for r in fleet.records([r.id for r in records])]


def test_a_glob_chooses_only_the_unfinished_jobs_whose_names_match(fleet: Fleet) -> None:
    a, b = job(fleet, "train-a"), job(fleet, "train-b")
    others = [job(fleet, "trainee"), job(fleet, "Train-c"), job(fleet, "eval-train-d")]
    done = job(fleet, "train-done")
    backend(fleet, "alpha").states[done.native_id or ""] = S.COMPLETED
    fleet.refresh([done])

    report = fleet.cancel_matching("train-*")

    assert [r.id for r in report.records] == [a.id, b.id]
    assert [r.state for r in report.records] == [S.CANCELLED, S.CANCELLED]
    assert cancelled_ids(fleet, "alpha") == [a.native_id, b.native_id]
    assert states(fleet, others) == [S.PENDING] * 3  # untouched: case-sensitive, whole name
    assert states(fleet, [done]) == [S.COMPLETED]
    assert report.unanswered == {}


def test_several_patterns_choose_each_job_once(fleet: Fleet) -> None:
    a, b, e = job(fleet, "train-a"), job(fleet, "train-b"), job(fleet, "eval-1")
    chosen = fleet.unfinished_matching(["train-a", "train-?", "eval-*"])
    assert [r.id for r in chosen] == [a.id, b.id, e.id]
    # Without a wildcard a pattern is one exact name.
    assert [r.id for r in fleet.unfinished_matching(["train"])] == []
    assert [r.id for r in fleet.unfinished_matching("train-[b]")] == [b.id]
    assert cancelled_ids(fleet, "alpha") == []  # choosing cancels nothing


def test_every_unfinished_job_or_those_of_one_backend(fleet: Fleet) -> None:
    a1, b1, a2 = job(fleet, "x", "alpha"), job(fleet, "y", "beta"), job(fleet, "z", "alpha")
    assert [r.id for r in fleet.unfinished_matching(backend="beta")] == [b1.id]

    report = fleet.cancel_matching(backend="alpha")
    assert [r.id for r in report.records] == [a1.id, a2.id]
    assert states(fleet, [a1, b1, a2]) == [S.CANCELLED, S.RUNNING, S.CANCELLED]

    report = fleet.cancel_matching()
    assert [r.id for r in report.records] == [b1.id]  # the others have ended
    assert cancelled_ids(fleet, "beta") == [b1.native_id]


def test_a_job_that_ended_unseen_is_not_chosen(fleet: Fleet) -> None:
    ended, running = job(fleet, "train-a"), job(fleet, "train-b")
    backend(fleet, "alpha").states[ended.native_id or ""] = S.COMPLETED  # not polled yet
    assert fleet.registry.get(ended.id).state is S.PENDING  # as recorded at submission

    report = fleet.cancel_matching("train-*")

    assert [r.id for r in report.records] == [running.id]
    assert cancelled_ids(fleet, "alpha") == [running.native_id]
    assert fleet.registry.get(ended.id).state is S.COMPLETED


def test_an_array_is_cancelled_whole(fleet: Fleet) -> None:
    array = job(fleet, "sweep", array="1-4")
    (record,) = fleet.cancel_matching("sweep").records
    assert backend(fleet, "alpha").cancelled == [([array.native_id], None, None)]
    assert record.state is S.CANCELLED
    assert {e.state for e in record.elements.values()} == {S.CANCELLED}
    assert sorted(record.elements) == [1, 2, 3, 4]


def test_a_signal_is_sent_instead_and_checked_first(fleet: Fleet) -> None:
    a = job(fleet, "train-a")
    with pytest.raises(SpecError, match="not a signal"):
        fleet.cancel_matching("train-*", signal="NOPE")
    assert cancelled_ids(fleet, "alpha") == []
    (record,) = fleet.cancel_matching("train-*", signal="sigusr1").records
    assert backend(fleet, "alpha").cancelled == [([a.native_id], None, "USR1")]
    assert record.state is S.RUNNING


def test_bad_choices_raise_before_anything_is_asked(fleet: Fleet) -> None:
    job(fleet, "train-a")
    with pytest.raises(ConfigError, match=r"unknown backend 'nope'.*choose one of") as bad:
        fleet.cancel_matching(backend="nope")
    assert bad.value.key == "backend"
    with pytest.raises(SpecError, match="empty pattern"):
        fleet.cancel_matching([""])
    assert cancelled_ids(fleet, "alpha") == []


def test_no_match_is_an_empty_report(fleet: Fleet) -> None:
    job(fleet, "train-a")
    report = fleet.cancel_matching("eval-*")
    assert (report.records, report.unanswered) == ([], {})
    assert fleet.cancel_matching(backend="beta").records == []
    assert cancelled_ids(fleet, "alpha") == []


def test_a_backend_that_does_not_answer_keeps_no_other_job_from_being_cancelled(
    fleet: Fleet,
) -> None:
    a, b = fleet.refresh([job(fleet, "train-a", "alpha"), job(fleet, "train-b", "beta")])
    backend(fleet, "alpha").down = True

    report = fleet.cancel_matching("train-*")

    assert {r.id: r.state for r in report.records} == {a.id: S.RUNNING, b.id: S.CANCELLED}
    assert list(report.unanswered) == ["alpha"]
    assert "Unable to contact" in report.unanswered["alpha"]
    assert not report.refreshed(report.records[0]) and report.refreshed(report.records[1])


def test_cancel_by_ids_still_raises_but_cancels_the_other_backends_jobs(fleet: Fleet) -> None:
    a, b = fleet.refresh([job(fleet, "a", "alpha"), job(fleet, "b", "beta")])
    backend(fleet, "alpha").down = True
    with pytest.raises(CommandError, match="Unable to contact"):
        fleet.cancel([a.id, b.id])
    assert states(fleet, [a, b]) == [S.RUNNING, S.CANCELLED]
