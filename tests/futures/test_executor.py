"""The executor's own promises on the local backend: the standard library's tools work
with its futures, map splits by the backend's array limit, shutdown, options, limits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from jobfleet import Executor, Fleet, JobState, load_config
from jobfleet.errors import SpecError

WAIT_S = 120
TESTS = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs import this module by name (its functions pickle by reference)."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS))


@pytest.fixture
def fleet(jf_home: Path) -> Iterator[Fleet]:
    with Fleet(load_config()) as f:
        yield f


def shout(word: str) -> str:
    print(f"saying {word}")
    return word.upper()


def test_as_completed_wait_and_asyncio_work_with_its_futures(fleet: Fleet) -> None:
    with Executor(fleet=fleet) as ex:
        futures = [ex.submit(shout, w) for w in ("a", "b", "c")]
        done = {f.result() for f in concurrent.futures.as_completed(futures, timeout=WAIT_S)}
        assert done == {"A", "B", "C"}
        finished, pending = concurrent.futures.wait(futures, timeout=WAIT_S)
        assert (len(finished), pending) == (3, set())

        async def gather() -> list[str]:
            return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))

        assert asyncio.run(gather()) == ["A", "B", "C"]
        assert futures[1].stdout() == "saying b\n"
        assert futures[1].record().state is JobState.COMPLETED


def test_map_splits_by_the_backends_array_limit_and_keeps_the_order(fleet: Fleet) -> None:
    backend = fleet.backend()
    backend.capabilities = dataclasses.replace(backend.capabilities, max_array_size=3)
    before = {r.id for r in fleet.recent(50)}
    with Executor(fleet=fleet) as ex:
        assert list(ex.map(pow, range(7), [3] * 7, timeout=WAIT_S)) == [i**3 for i in range(7)]
        made = [r for r in fleet.recent(50) if r.id not in before]
        assert sorted(len(r.elements) for r in made) == [1, 3, 3]
        # chunksize: 7 calls in 3 elements of one array
        before = {r.id for r in fleet.recent(50)}
        assert list(ex.map(pow, range(7), [2] * 7, chunksize=3)) == [i * i for i in range(7)]
        made = [r for r in fleet.recent(50) if r.id not in before]
        assert [len(r.elements) for r in made] == [3]


def test_shutdown_cancels_what_has_not_started(fleet: Fleet) -> None:
    ex = Executor(fleet=fleet, max_concurrent=1)
    with ex.batch():
        first = ex.submit(time.sleep, 2)
        rest = [ex.submit(time.sleep, 300) for _ in range(3)]
    wait_for(first.running, timeout_s=WAIT_S, what="the first call to start")
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result(timeout=1) is None
    assert all(f.cancelled() for f in rest)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(pow, 2, 2)


def test_options_change_only_the_resources_given(fleet: Fleet) -> None:
    base = Executor(fleet=fleet, resources={"cores": 1, "walltime": "10m"})
    bigger = base.options(memory="300M")
    future = bigger.submit(pow, 2, 5)
    assert future.result(timeout=WAIT_S) == 32
    asked = future.record().spec["resources"]
    assert (asked["cores"], asked["walltime_s"], asked["memory_bytes"]) == (1, 600, 300 * 2**20)
    base.shutdown()


def test_a_payload_over_the_limit_is_refused_before_anything_is_submitted(fleet: Fleet) -> None:
    with Executor(fleet=fleet, max_payload="1K") as ex:
        with pytest.raises(SpecError, match=r"over the executor's limit of 1,024"):
            ex.submit(len, b"x" * 5000)
        assert fleet.recent(5) == []


def test_a_batch_that_raises_submits_nothing(fleet: Fleet) -> None:
    with Executor(fleet=fleet) as ex:
        with pytest.raises(KeyError), ex.batch():
            never = ex.submit(pow, 2, 2)
            raise KeyError("stop")
        assert never.cancelled()
        assert fleet.recent(5) == []
