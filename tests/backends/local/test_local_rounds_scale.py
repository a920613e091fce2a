"""A large array in the local agent's rounds, without processes: what a round looks at
and what the agent holds per pending element (issue 16)."""

from __future__ import annotations

from pathlib import Path

from jobfleet.backends.local.queue import CAPACITY_KEY, NewLocalJob, QueueStore
from jobfleet.backends.local.rounds import Rounds

ELEMENTS = 5000


def job(
    name: str, indices: range, *, deps: tuple[tuple[str, tuple[int, ...]], ...] = ()
) -> NewLocalJob:
    return NewLocalJob(
        jf_id=name, name=name, script=f"/j/{name}/job.sh", job_dir=f"/j/{name}",
        cores=1, memory=0, gpus=0, walltime=None, max_concurrent=None,
        indices=list(indices), deps=deps, env={"HOME": "/home/u", "PATH": "/bin"},
    )  # fmt: skip


def rounds(tmp_path: Path, cores: int = 2) -> Rounds:
    store = QueueStore(tmp_path)
    store.set_setting(CAPACITY_KEY, {"cores": cores, "memory": 0, "gpu_ids": []})
    agent = Rounds(tmp_path, cancel_grace_s=1.0)
    agent._refresh_capacity()
    return agent


def test_the_elements_of_a_job_share_its_request(tmp_path: Path) -> None:
    agent = rounds(tmp_path)
    agent.store.enqueue([job("big", range(ELEMENTS)), job("small", range(1))])
    agent._load_new()
    tasks = list(agent.tasks.values())
    assert len(tasks) == ELEMENTS + 1
    big = tasks[:ELEMENTS]
    # One environment and one script path for the whole array, not one per element.
    assert all(t.env is big[0].env and t.script is big[0].script for t in big)
    assert tasks[-1].env is not big[0].env and tasks[-1].env == big[0].env


def test_a_round_offers_at_most_as_many_elements_of_a_job_as_there_are_cores(
    tmp_path: Path,
) -> None:
    agent = rounds(tmp_path, cores=3)
    agent.store.enqueue([job("big", range(ELEMENTS)), job("next", range(2))])
    agent._load_new()
    offered = [w.key for w in agent._eligible()]
    # Three of the array (identical: a fourth cannot start where three did not), then
    # the next job's, in FIFO order.
    assert offered == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]


def test_started_and_ended_elements_leave_the_front_of_their_jobs_queue(tmp_path: Path) -> None:
    agent = rounds(tmp_path, cores=2)
    agent.store.enqueue([job("big", range(ELEMENTS))])
    agent._load_new()
    for _ in range(3):
        chosen = agent._choose(now=0.0)
        assert len(chosen) == 2
        for key in chosen:  # as if they ran and ended at once
            agent._finish(key, "completed", 0, None)
    assert [w.key for w in agent._eligible()] == [(1, 6), (1, 7)]
    assert agent.queued[1][0] == (1, 6)  # the ended ones were dropped, not scanned again
    assert agent.unfinished == {1: ELEMENTS - 6}


def test_a_dependency_never_met_cancels_every_pending_element_of_the_job(tmp_path: Path) -> None:
    agent = rounds(tmp_path)
    (first,) = agent.store.enqueue([job("first", range(1))])
    agent.store.enqueue([job("after", range(ELEMENTS), deps=(("after_ok", (first,)),))])
    agent._load_new()
    agent._resolve_dependencies(now=0.0)
    # The dependent array waits; the job it depends on is offered.
    assert [w.key for w in agent._eligible()] == [(first, 0)]
    agent._finish((first, 0), "failed", 1, None)
    agent._resolve_dependencies(now=0.0)
    assert agent.tasks == {} and agent.queued == {} and agent.with_deps == set()
    states = {row[2] for row in agent.store.task_rows([2])}
    assert states == {"cancelled"}


def test_a_job_submitted_while_the_agent_reads_the_queue_is_loaded_whole_next_time(
    tmp_path: Path,
) -> None:
    """active_tasks reads the tasks, then their jobs' requests: a client that enqueues a
    job between the two reads (either order of them) must not break the read."""
    agent = rounds(tmp_path)
    agent.store.enqueue([job("first", range(3))])
    client = QueueStore(tmp_path)  # another process's connection
    reads = 0
    real_read = agent.store.read

    def read_racing(sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        nonlocal reads
        reads += 1
        if reads == 3:  # between the second read and the third
            client.enqueue([job("racer", range(2))])
        return real_read(sql, params)

    agent.store.read = read_racing  # type: ignore[method-assign]
    agent._load_new()
    assert reads >= 3, "the race was not set up"
    agent.store.read = real_read  # type: ignore[method-assign]
    agent._load_new()
    assert sorted(agent.tasks) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]
    assert agent.tasks[(2, 1)].script == "/j/racer/job.sh"
