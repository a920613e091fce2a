"""Releasing the jobs jobfleet submitted held for their dependencies: only those, only
once their predecessors ended for certain (the review of issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends.base import PollTarget
from jobfleet.backends.htcondor.backend import HTCondorBackend
from jobfleet.backends.htcondor.submitfile import HTCondorSettings
from jobfleet.errors import BackendError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.states import JobState

S = JobState
BIN = Path(__file__).parents[2] / "shims" / "condor_bin"
RELEASE = "(ClusterId == 20) && JobStatus == 5 && HoldReasonCode == 15"


class Pool:
    """Canned condor_q and condor_history answers; records the calls."""

    def __init__(self, queue: list[dict[str, Any]]) -> None:
        self.queue = queue
        self.history: CommandResult | None = None
        self.runner = ScriptedRunner(self.respond)

    def respond(self, argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == "condor_q":
            return CommandResult(argv, 0, json.dumps(self.queue), "")
        if argv[0] == "condor_history":
            return self.history or CommandResult(argv, 0, "", "")
        if argv[0] == "condor_release":
            return CommandResult(argv, 0, f"All jobs matching constraint ({argv[-1]}) ...\n", "")
        raise AssertionError(argv)


def proc(n: int, status: int, **more: Any) -> dict[str, Any]:
    ad = {"ClusterId": 20, "ProcId": n, "JobStatus": status, "JobfleetIndex": n + 1}
    return {**ad, "JobfleetAfter": "10", **more}


def test_only_the_procs_jobfleet_held_are_released_and_said_to_be() -> None:
    pool = Pool(
        [
            proc(0, 2),
            proc(1, 4, ExitCode=0, ExitBySignal=False),
            proc(2, 5, HoldReasonCode=34, HoldReason="memory exceeded"),
            proc(3, 5, HoldReasonCode=15, HoldReason="submitted on hold"),
            proc(4, 5, HoldReasonCode=1, HoldReason="via condor_hold"),
        ]
    )
    backend = HTCondorBackend(pool.runner, HTCondorSettings())
    target = PollTarget("5", "20", "/nowhere", 0.0, indices=(1, 2, 3, 4, 5), name="n")
    elements = backend.poll([target])["20"].elements or {}
    assert ("condor_release", "-constraint", RELEASE) in pool.runner.calls
    assert elements[4] == (S.PENDING, None, "released: its predecessors ended")
    assert elements[1][0] is S.RUNNING and elements[2][0] is S.COMPLETED
    assert "memory exceeded" in (elements[3][2] or "")
    assert "condor_hold" in (elements[5][2] or "")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKECONDOR_STATE", str(tmp_path / "pool.json"))
    monkeypatch.setenv("FAKECONDOR_PYTHON", sys.executable)
    return tmp_path


def test_the_fake_releases_what_the_constraint_names(fake: Path) -> None:
    state = {"next": 21, "queue": [proc(2, 5, HoldReasonCode=34), proc(3, 5, HoldReasonCode=15)]}
    (fake / "pool.json").write_text(json.dumps(state))
    done = subprocess.run(
        ["condor_release", "-constraint", RELEASE], capture_output=True, text=True, check=True
    )
    assert f"All jobs matching constraint ({RELEASE}) have been released" in done.stdout
    after = json.loads((fake / "pool.json").read_text())["queue"]
    assert [ad["JobStatus"] for ad in after] == [5, 1]
    again = subprocess.run(
        ["condor_release", "-constraint", RELEASE], capture_output=True, text=True
    )
    assert again.returncode == 1
    assert f"Couldn't find/release all jobs matching constraint ({RELEASE})" in again.stderr


# -- whether a predecessor still materializes procs -------------------------------------------


class Factories(Pool):
    """condor_q -factory answers from ``factories`` (or fails with ``factory_error``)."""

    def __init__(self, queue: list[dict[str, Any]]) -> None:
        super().__init__(queue)
        self.factories: list[dict[str, Any]] = []
        self.factory_error = ""

    def respond(self, argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == "condor_q" and "-factory" in argv:
            if self.factory_error:
                return CommandResult(argv, 1, "", self.factory_error)
            return CommandResult(argv, 0, json.dumps(self.factories) if self.factories else "", "")
        return super().respond(argv)


def waiting() -> Factories:
    held = {"ClusterId": 20, "ProcId": 0, "JobStatus": 5, "HoldReasonCode": 15}
    return Factories([{**held, "JobfleetAfter": "10"}])


def poll(pool: Pool, history: bool = True) -> None:
    backend = HTCondorBackend(pool.runner, HTCondorSettings(history=history, retry_backoff_s=0))
    backend.poll([PollTarget("5", "20", "/nowhere", 0.0, name="n")])


def test_no_release_while_the_predecessors_factory_has_procs_to_make() -> None:
    pool = waiting()
    # One proc of 10 was removed (an element cancelled): the factory goes on.
    pool.history = CommandResult(
        ("condor_history",), 0, json.dumps([{"ClusterId": 10, "ProcId": 0, "JobStatus": 3}]), ""
    )
    pool.factories = [{"ClusterId": 10, "JobMaterializeNextProcId": 1, "TotalSubmitProcs": 3}]
    poll(pool)
    assert pool.runner.count("condor_release") == 0
    pool.factories = []
    poll(pool)
    assert pool.runner.count("condor_release") == 1


def test_no_release_when_the_check_failed_whatever_it_said() -> None:
    pool = waiting()
    pool.factory_error = "Failed to fetch ads from schedd: SECMAN:2007:timed out\n"
    poll(pool)
    poll(pool, history=False)
    assert pool.runner.count("condor_release") == 0


def test_the_check_is_made_without_history_too() -> None:
    pool = waiting()
    pool.factories = [{"ClusterId": 10, "JobMaterializeNextProcId": 2, "TotalSubmitProcs": 3}]
    poll(pool, history=False)
    assert pool.runner.count("condor_release") == 0


def test_only_an_unset_history_is_no_history() -> None:
    backend = HTCondorBackend(Pool([]).runner, HTCondorSettings())
    missing: list[str] = []
    backend.accounting_missing = missing.append  # type: ignore[method-assign]
    ctx_target = PollTarget("5", "20", "/nowhere", 0.0, name="n")
    from jobfleet.backends.command import PollContext

    ctx = PollContext({"20": ctx_target}, ["20"])
    failed = CommandResult(("condor_history",), 1, "", "Error: history query timed out\n")
    with pytest.raises(Exception):  # noqa: B017 - a failed call, never "no history"
        backend.read_accounting(failed, ctx)
    assert missing == []
    unset = (
        "Error: No passed search file and configuration key HISTORY is unset.\n\n"
        "Extra Info: The variable HISTORY is not defined in your config file.\n"
    )
    backend.read_accounting(CommandResult(("condor_history",), 1, "", unset), ctx)
    assert len(missing) == 1


# -- cancelling elements ---------------------------------------------------------------------

NOTHING = "(ClusterId == 20) && (JobfleetIndex == 3)"


def test_a_constraint_matching_nothing_is_already_gone() -> None:
    backend = HTCondorBackend(Pool([]).runner, HTCondorSettings())
    said = f"Couldn't find/remove all jobs matching constraint ({NOTHING})\n"
    assert backend.cancel_ok(CommandResult(("condor_rm",), 1, "", said))


def test_the_fake_condor_rm_says_so_for_a_constraint_matching_nothing(fake: Path) -> None:
    (fake / "pool.json").write_text(json.dumps({"next": 21, "queue": [proc(0, 2)]}))
    done = subprocess.run(["condor_rm", "-constraint", NOTHING], capture_output=True, text=True)
    assert done.returncode == 1
    assert f"Couldn't find/remove all jobs matching constraint ({NOTHING})" in done.stderr


def test_elements_of_a_job_still_materializing_are_not_cancelled_alone() -> None:
    pool = Factories([proc(0, 2)])
    pool.factories = [{"ClusterId": 20, "JobMaterializeNextProcId": 2, "TotalSubmitProcs": 5}]
    backend = HTCondorBackend(pool.runner, HTCondorSettings(retry_backoff_s=0))
    with pytest.raises(BackendError, match="max_concurrent"):
        backend.cancel(["20"], indices=[1])
    assert pool.runner.count("condor_rm") == 0


# -- limits and reused cluster ids -----------------------------------------------------------


def test_an_array_past_max_jobs_per_submission_is_refused_up_front() -> None:
    from jobfleet import JobSpec, parse_array
    from jobfleet.errors import SpecError

    backend = HTCondorBackend(Pool([]).runner, HTCondorSettings())
    assert backend.capabilities.max_array_size == 20000
    small = HTCondorBackend(Pool([]).runner, HTCondorSettings(max_array_size=10))
    assert small.capabilities.max_array_size == 10
    with pytest.raises(SpecError):
        small.check_request(JobSpec(["true"], array=parse_array("1-11")))


def test_a_history_ad_of_another_job_with_the_same_cluster_is_not_read() -> None:
    from jobfleet.backends.command import PollContext
    from jobfleet.backends.htcondor import parse

    ads = [{"ClusterId": 20, "ProcId": 0, "JobStatus": 4, "ExitCode": 0, "JobBatchName": "old"}]
    result = CommandResult(("condor_history",), 0, json.dumps(ads), "")
    mine = PollTarget("5", "20", "/nowhere", 0.0, name="jfab-5-x")
    assert parse.parse_history(result, PollContext({"20": mine}, ["20"])) == {}
    same = PollTarget("5", "20", "/nowhere", 0.0, name="old")
    assert (
        parse.parse_history(result, PollContext({"20": same}, ["20"]))["20"][None][0] is S.COMPLETED
    )
    # What it used is not read either (the same poll's usage, from the same ads).
    from jobfleet.backends.htcondor import usage

    ads[0] |= {"RemoteWallClockTime": 5.0, "JobCurrentStartDate": 100, "CompletionDate": 105}
    result = CommandResult(("condor_history",), 0, json.dumps(ads), "")
    assert usage.parse_usage(result, PollContext({"20": mine}, ["20"])) == {}
    assert usage.parse_usage(result, PollContext({"20": same}, ["20"]))["20"][None].wall_time_s == 5


def test_the_fake_lists_factories_with_procs_to_make(fake: Path) -> None:
    later = [{**proc(n, 1), "TotalSubmitProcs": 4, "_limit": 2} for n in (3, 2)]
    state = {"next": 21, "queue": [proc(0, 2), proc(1, 2)], "pending": later}
    (fake / "pool.json").write_text(json.dumps(state))
    attrs = "ClusterId,JobMaterializeNextProcId,TotalSubmitProcs"
    argv = ["condor_q", "-factory", "-json", "-attributes", attrs]
    done = subprocess.run([*argv, "20"], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [
        {"ClusterId": 20, "JobMaterializeNextProcId": 2, "TotalSubmitProcs": 4}
    ]
    other = subprocess.run([*argv, "21"], capture_output=True, text=True, check=True)
    assert other.stdout == ""
