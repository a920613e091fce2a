"""The local scheduling policy (FIFO with EASY backfill), without processes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jobfleet.backends.local.plan import Amount, Running, Waiting, plan

CAP = Amount(cores=4, memory=16, gpus=1)


def w(
    key: str, cores: int = 1, memory: int = 0, gpus: int = 0, walltime: float | None = None
) -> Waiting:
    return Waiting(key, Amount(cores, memory, gpus), walltime)


def test_fifo_fills_free_cores_in_order() -> None:
    assert plan(CAP, [], [w("a"), w("b"), w("c"), w("d"), w("e")], now=0) == ["a", "b", "c", "d"]


def test_memory_and_gpus_are_slots_too() -> None:
    waiting = [w("a", memory=10), w("b", memory=10), w("g1", gpus=1), w("g2", gpus=1)]
    # b does not fit in memory and becomes the head; g1 backfills only into what
    # b leaves spare, which with an unknown end of a is everything but b's need.
    started = plan(CAP, [], waiting, now=0)
    assert started[0] == "a"
    assert "b" not in started
    assert "g2" not in started  # one GPU only


def test_head_job_is_not_starved_by_small_jobs_without_walltime() -> None:
    running = [Running(Amount(2, 0, 0), ends_at=None)]
    # Head needs 4 cores: only when the running job ends. Small jobs of unknown
    # length would delay it, and there is nothing spare at its shadow time.
    assert plan(CAP, running, [w("big", cores=4), w("small")], now=0) == []


def test_small_job_backfills_when_it_ends_before_the_head_can_start() -> None:
    running = [Running(Amount(2, 0, 0), ends_at=100.0)]
    waiting = [w("big", cores=4), w("short", walltime=50), w("long", walltime=500)]
    assert plan(CAP, running, waiting, now=0) == ["short"]


def test_backfill_into_cores_the_head_leaves_spare() -> None:
    running = [Running(Amount(3, 0, 0), ends_at=None)]
    # Head needs 2: at its shadow time 4 are free, 2 spare; but only 1 is free now.
    assert plan(CAP, running, [w("head", cores=2), w("one"), w("two")], now=0) == ["one"]


def test_nothing_starts_when_full() -> None:
    running = [Running(Amount(4, 0, 0), ends_at=None)]
    assert plan(CAP, running, [w("a")], now=0) == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 16), st.integers(0, 1)), max_size=30),
    st.lists(
        st.tuples(
            st.integers(1, 4),
            st.integers(0, 16),
            st.integers(0, 1),
            st.one_of(st.none(), st.floats(1, 1000)),
        ),
        max_size=4,
    ),
)
def test_never_oversubscribes(
    waiting_needs: list[tuple[int, int, int]],
    running_needs: list[tuple[int, int, int, float | None]],
) -> None:
    running = [Running(Amount(c, m, g), e) for c, m, g, e in running_needs]
    used = Amount()
    for r in running:
        used = used + r.need
    waiting = [w(str(i), c, m, g) for i, (c, m, g) in enumerate(waiting_needs)]
    started = plan(CAP, running, waiting, now=0)
    assert len(set(started)) == len(started)
    total = used
    for key in started:
        total = total + waiting[int(str(key))].need
    if used.fits_in(CAP):
        assert total.fits_in(CAP)
    # FIFO: a task is never skipped when every earlier one was started and it fits.
    if waiting and used.fits_in(CAP) and waiting[0].need.fits_in(CAP - used):
        assert started[0] == "0"


def test_no_backfill_past_a_head_waiting_on_jobs_without_walltime() -> None:
    # The head waits for a job that may run for ever: a 1 h job would not
    # "end before" an unknown time, and there is no spare room at that time.
    running = [Running(Amount(3, 0, 0), ends_at=None)]
    waiting = [w("head", cores=4), w("small-1h", walltime=3600)]
    assert plan(CAP, running, waiting, now=0) == []
