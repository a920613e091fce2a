"""The run directory's atomic steps: staging, fresh claims, leases."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from jobfleet.errors import SpecError
from jobfleet.pipe.model import PipeSettings, TaskSpec
from jobfleet.pipe.store import BUNDLE, Block, RunDir


def _run(tmp_path: Path, tasks: int, block_size: int = 8) -> RunDir:
    run = RunDir.create(tmp_path / "run", PipeSettings(block_size=block_size))
    run.add(TaskSpec((f"echo {i}",), True) for i in range(tasks))
    return RunDir.open(tmp_path / "run")


def test_tasks_are_staged_in_bundles_and_read_back(tmp_path: Path) -> None:
    run = _run(tmp_path, 2 * BUNDLE + 5)
    bundles = sorted(p.name for p in (run.root / "tasks").iterdir())
    assert bundles == ["000000000000.jsonl", "000000001000.jsonl", "000000002000.jsonl"]
    assert run.total() == 2 * BUNDLE + 5
    assert run.task_of(1234) == (1234, TaskSpec(("echo 1234",), True))
    first, count = run.add([TaskSpec(("late",))])
    assert (first, count) == (2 * BUNDLE + 5, 1)
    assert RunDir.open(run.root).task_of(first)[1].argv == ("late",)


def test_a_run_is_not_made_twice_and_a_missing_one_says_how_to_make_it(tmp_path: Path) -> None:
    _run(tmp_path, 1)
    with pytest.raises(SpecError, match="already holds a pipe run"):
        RunDir.create(tmp_path / "run", PipeSettings())
    with pytest.raises(SpecError, match="jobfleet pipe create"):
        RunDir.open(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(SpecError, match="not a pipe run of format 1"):
        RunDir.open(tmp_path / "bad")


def test_blocks_never_cross_a_bundle(tmp_path: Path) -> None:
    run = _run(tmp_path, BUNDLE + 3, block_size=7)
    blocks = []
    while (block := run.claim_fresh()) is not None:
        blocks.append(block)
    assert blocks[-2:] == [Block(994, BUNDLE), Block(BUNDLE, BUNDLE + 3)]
    assert [b.start for b in blocks[1:]] == [b.end for b in blocks[:-1]]
    assert run.claim_fresh() is None


def _claim_all(root: str, out: str) -> None:
    run = RunDir.open(root)
    mine = []
    while (block := run.claim_fresh()) is not None:
        if run.take_claim(block, 0, str(os.getpid())):
            mine.append([block.start, block.end])
    Path(out).write_text(json.dumps(mine))


def test_racing_claimers_each_win_different_blocks_and_together_all(tmp_path: Path) -> None:
    run = _run(tmp_path, 3000, block_size=1)
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"claims{i}.json" for i in range(6)]
    procs = [ctx.Process(target=_claim_all, args=(str(run.root), str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    won = [tuple(b) for o in outs for b in json.loads(o.read_text())]
    assert sorted(won) == [(i, i + 1) for i in range(3000)]  # each exactly once
    assert sum(1 for o in outs if json.loads(o.read_text())) >= 2  # they did race


def test_a_claim_reads_no_more_of_the_run_than_its_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(tmp_path, 100 * BUNDLE, block_size=10)
    listings: list[bool] = []  # per call: whether the bundles' directory was listed
    reads: list[int] = []
    layout, bundle = RunDir.layout, RunDir._bundle

    def counting_layout(self: RunDir, refresh: bool = True) -> list[tuple[int, int]]:
        listings.append(refresh or not self._layout)  # when it lists the directory
        return layout(self, refresh)

    def counting_bundle(self: RunDir, start: int) -> list[dict[str, object]]:
        if start not in self._bundles:
            reads.append(start)
        return bundle(self, start)

    monkeypatch.setattr(RunDir, "layout", counting_layout)
    monkeypatch.setattr(RunDir, "_bundle", counting_bundle)
    fresh = RunDir.open(run.root)
    for _ in range(500):  # 5,000 tasks: the first five bundles
        block = fresh.claim_fresh()
        assert block is not None
        fresh.task_of(block.start)
    # The listing of the bundles was read once (not per claim), and besides the last
    # bundle (its length) only the five bundles holding the claimed tasks.
    assert listings.count(True) == 1
    assert sorted(reads) == [0, 1000, 2000, 3000, 4000, 99000]


def test_a_lease_is_taken_once_renewed_and_superseded(tmp_path: Path) -> None:
    run = _run(tmp_path, 10)
    block = run.claim_fresh()
    assert block == Block(0, 8)
    assert run.take_claim(block, 0, "w1")
    assert not run.take_claim(block, 0, "w2")
    assert run.still_ours(0, 0) and run.renew(0, 0)
    os.utime(run.claim_path(0, 0), (100.0, 100.0))
    (start, epoch, end, mtime) = next(run.claims())
    assert (start, epoch, end, mtime) == (0, 0, 8, 100.0)
    assert run.take_claim(block, 1, "w2")  # the takeover
    assert not run.still_ours(0, 0)  # the first holder learns it lost
    run.drop_claim(0, 0)
    assert not run.renew(0, 0)
    assert run.still_ours(0, 1)


def test_the_file_system_tells_the_time(tmp_path: Path) -> None:
    run = _run(tmp_path, 1)
    now = run.beat("w1")
    assert abs(now - run.fs_now()) < 5
    assert run.live_workers(now) == ["w1"]
    assert run.live_workers(now + run.settings.lease_s + 1) == []
    assert run.worker_pids()["w1"][1] == os.getpid()
    run.leave("w1")
    assert run.live_workers(now) == []
