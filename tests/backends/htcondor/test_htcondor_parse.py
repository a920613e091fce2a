"""The HTCondor parsers on the fixtures of tests/backends/htcondor/fixtures (SOURCES says
where each comes from): every state and exit mapping, holds, procs to indices, usage,
the event log, the saved-output formats and detection."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from jobfleet.backends.base import PollTarget
from jobfleet.backends.command import PollContext
from jobfleet.backends.formats import read_saved
from jobfleet.backends.htcondor import parse, probe
from jobfleet.backends.htcondor.eventlog import parse_event_log
from jobfleet.backends.htcondor.usage import ad_usage, parse_usage
from jobfleet.errors import CommandError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.states import JobState

S = JobState
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def result(name: str, argv: tuple[str, ...] = ("condor_q", "-json"), rc: int = 0) -> CommandResult:
    err = FIXTURES / name.replace(".out", ".err")
    stderr = err.read_text() if name.endswith(".out") and err.exists() else ""
    return CommandResult(argv, rc, fixture(name), stderr)


def ctx(*targets: PollTarget) -> PollContext:
    by_id = {t.native_id: t for t in targets}
    return PollContext(by_id, list(by_id))


def target(native_id: str, indices: tuple[int, ...] | None = None) -> PollTarget:
    return PollTarget(f"j{native_id}", native_id, "/nonexistent", 0.0, indices)


# -- submit ------------------------------------------------------------------------------


def test_submit_prints_the_cluster_after_any_warning() -> None:
    assert parse.parse_submit(result("submit-one.out")) == "6"
    assert parse.parse_submit(result("submit-warning.out")) == "452"


def test_a_refused_submission_has_no_cluster_and_says_why() -> None:
    refused = result("submit-refused.out", ("condor_submit",), rc=1)
    assert "standard universe" in refused.stderr
    with pytest.raises(CommandError):
        parse.parse_submit(refused)
    assert not parse.TRANSIENT_SUBMIT.search(refused.stderr)
    assert parse.TRANSIENT_SUBMIT.search("ERROR: Failed to connect to local queue manager")


# -- the queue ---------------------------------------------------------------------------


def test_a_cluster_of_ten_procs_maps_to_the_users_indices() -> None:
    seen, release = parse.parse_queue(
        result("q-cluster.json"), ctx(target("7", tuple(range(1, 11))))
    )
    assert release == {}
    states = {i: e[0] for i, e in seen["7"].items()}
    assert states == {i: S.RUNNING if i in (1, 2, 3) else S.PENDING for i in range(1, 11)}


def test_procs_map_to_listed_indices_by_position_without_jobfleet_index() -> None:
    ad = {"ClusterId": 5, "ProcId": 1, "JobStatus": 2}
    assert parse.ad_index(ad, target("5", (1, 3, 7))) == (True, 3)
    assert parse.ad_index({**ad, "JobfleetIndex": 7}, target("5", (1, 3, 7))) == (True, 7)
    assert parse.ad_index({**ad, "ProcId": 0}, target("5")) == (True, None)
    assert parse.ad_index(ad, target("5"))[0] is False  # a single job has proc 0 only


def test_unmaterialized_procs_are_pending() -> None:
    ad = {"ClusterId": 8, "ProcId": 0, "JobStatus": 2, "JobMaterializeNextProcId": 2}
    res = CommandResult(("condor_q",), 0, f"[\n{parse_json(ad)}\n]\n", "")
    seen, _ = parse.parse_queue(res, ctx(target("8", (1, 2, 3, 4))))
    assert seen["8"][1][0] is S.RUNNING
    assert seen["8"][3] == (S.PENDING, None, "not materialized yet")
    assert 2 not in seen["8"]  # materialized and gone: the history tells


def parse_json(ad: dict[str, object]) -> str:
    import json

    return json.dumps(ad)


def test_held_jobs_are_pending_with_their_hold_reason() -> None:
    targets = [target("12"), target("11", (0, 1, 2, 3, 4))]
    seen, release = parse.parse_queue(result("q-held.json"), ctx(*targets))
    state, code, why = seen["12"][None]
    assert (state, code) == (S.PENDING, None)
    assert "waiting for job(s) 7, 11 to end" in (why or "")
    assert seen["11"][0] == (S.PENDING, None, None)
    assert seen["11"][2][0] is S.PENDING and "via condor_hold (by user jovyan)" in (
        seen["11"][2][2] or ""
    )
    assert "HoldReasonCode 1" in (seen["11"][2][2] or "")
    assert "cgroup memory limit" in (seen["11"][3][2] or "")
    assert "condor_release 11.3" in (seen["11"][3][2] or "")
    assert release == {}, "11 is still in the queue: 12 waits"


def test_a_held_dependent_is_released_once_its_predecessors_left() -> None:
    ads = [
        {
            "ClusterId": 12,
            "ProcId": 0,
            "JobStatus": 5,
            "HoldReasonCode": 15,
            "JobfleetAfter": "7 11",
        },
        {"ClusterId": 11, "ProcId": 0, "JobStatus": 4, "ExitCode": 0},  # completed, still listed
        {"ClusterId": 13, "ProcId": 0, "JobStatus": 5, "HoldReasonCode": 1, "JobfleetAfter": "99"},
        {"ClusterId": 14, "ProcId": 0, "JobStatus": 5, "HoldReasonCode": 15, "JobfleetAfter": "12"},
    ]
    # 12: 7 gone, 11 completed; 13: held by a user, not ours to release; 14: 12 waits.
    assert parse.releasable(ads) == {"12": ["7", "11"]}
    assert parse.releasable([{**ads[1], "JobStatus": 3}, ads[0]]) == {}, "removal in progress"


def test_a_predecessor_between_two_materializations_is_not_ended() -> None:
    factories = [
        {"ClusterId": 7, "JobMaterializeNextProcId": 2, "TotalSubmitProcs": 3},
        {"ClusterId": 8, "JobMaterializeNextProcId": 3, "TotalSubmitProcs": 3},  # all made
        {"ClusterId": 9},  # cannot tell: still making
    ]
    assert parse.still_materializing(factories) == {"7", "9"}


def test_every_job_status() -> None:
    seen, _ = parse.parse_queue(result("q-states.json"), ctx(target("20", (0, 1, 2, 3))))
    assert seen["20"] == {
        0: (S.RUNNING, None, "being removed"),
        1: (S.COMPLETED, 0, None),
        2: (S.RUNNING, None, "transferring output"),
        3: (S.RUNNING, None, "suspended"),
    }


def test_an_unknown_status_warns_and_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        state, code, _ = parse.map_ad({"JobStatus": 9}, in_queue=True)
    assert (state, code) == (S.UNKNOWN, None)
    assert "unknown HTCondor JobStatus 9" in caplog.text


def test_no_job_is_an_empty_output_and_a_failure_is_an_error() -> None:
    assert fixture("q-none.json") == ""
    assert parse.parse_queue(result("q-none.json"), ctx(target("7")))[0] == {}
    with pytest.raises(CommandError):
        parse.parse_queue(CommandResult(("condor_q",), 1, "", "Failed to connect"), ctx())
    with pytest.raises(CommandError):
        parse.parse_ads(CommandResult(("condor_q",), 0, "-- Schedd: x", ""))


# -- the history ---------------------------------------------------------------------------


def test_final_states_and_exit_codes_never_lie() -> None:
    targets = [target("30", (0, 1, 2)), target("31"), target("11", (0, 1, 2, 3, 4)), target("10")]
    seen = parse.parse_history(result("history.json", ("condor_history",)), ctx(*targets))
    assert seen["30"][0] == (S.COMPLETED, 0, None)
    assert seen["30"][1] == (S.FAILED, 3, None)
    assert seen["30"][2] == (S.FAILED, 137, "killed by signal 9")
    assert seen["31"][None] == (S.TIMEOUT, None, "walltime limit exceeded (00:01:00)")
    assert seen["11"] == {4: (S.CANCELLED, None, "cancelled by jovyan")}
    assert "10" not in seen, "10.9 is proc 9 of a single job: not ours"


#: The hold text of fixtures history-memory.json and eventlog-memory.log.
OOM_HOLD = (
    "Error from slot1_2@f490c38eb019: Job has gone over cgroup memory limit of 1024 "
    "megabytes. Last measured usage: 1093 megabytes.  Consider resubmitting with a higher "
    "request_memory."
)


def test_a_job_removed_while_held_for_its_memory_is_out_of_memory() -> None:
    """jobfleet's periodic_remove ends a job held with HoldReasonCode 34; its history ad
    keeps the hold as LastHoldReason*: out of memory, whichever clause the RemoveReason
    quotes; a time-out by the same expression stays a time-out, a condor_rm a cancel,
    and a disk hold (subcode 104) is no memory limit."""
    ids = ("50", "51", "52", "53", "54")
    seen = parse.parse_history(
        result("history-memory.json", ("condor_history",)), ctx(*(target(i) for i in ids))
    )
    oom = (S.OUT_OF_MEMORY, None, f"memory limit exceeded ({OOM_HOLD})")
    assert seen["50"][None] == oom
    assert seen["51"][None] == oom
    assert seen["52"][None] == (S.TIMEOUT, None, "walltime limit exceeded (00:01:00)")
    assert seen["53"][None] == (S.CANCELLED, None, "cancelled by jovyan")
    assert seen["54"][None] == (S.CANCELLED, None, "cancelled by jovyan")


def test_a_job_held_for_its_memory_is_pending_until_removed() -> None:
    """Until the periodic_remove runs (every PERIODIC_EXPR_INTERVAL), the hold reads
    pending with HTCondor's words; other holds stay pending for good."""
    held = {"ClusterId": 50, "ProcId": 0, "JobStatus": 5, "HoldReason": OOM_HOLD}
    state, _, why = parse.map_ad(held | {"HoldReasonCode": 34}, in_queue=True)
    assert state is S.PENDING and OOM_HOLD in (why or "") and "(HoldReasonCode 34)" in (why or "")
    assert parse.map_ad(held | {"HoldReasonCode": 1}, in_queue=True)[0] is S.PENDING
    for attr in ("HoldReasonSubCode", "LastHoldReason", "LastHoldReasonCode"):
        assert attr in parse.ATTRIBUTES


def test_event_log_memory_hold_then_periodic_remove_is_out_of_memory() -> None:
    found = parse_event_log(fixture("eventlog-memory.log"))
    assert found[("50", 0)] == (S.OUT_OF_MEMORY, None, f"memory limit exceeded ({OOM_HOLD})")
    assert found[("52", 0)][0] is S.TIMEOUT
    assert found[("53", 0)] == (S.PENDING, None, f"held: {OOM_HOLD} (HoldReasonCode 34)")


def test_completed_without_exit_code_is_unknown_never_success() -> None:
    assert parse.map_ad({"JobStatus": 4}, in_queue=False)[0] is S.UNKNOWN
    assert (
        parse.map_ad({"JobStatus": 4, "ExitBySignal": True, "ExitCode": 0}, in_queue=False)[0]
        is S.FAILED
    )
    # A periodic_remove that is not jobfleet's walltime is a cancel, not a time-out.
    other = "The job attribute PeriodicRemove expression 'NumJobStarts > 3' evaluated to TRUE"
    assert parse.map_ad({"JobStatus": 3, "RemoveReason": other}, in_queue=False)[0] is S.CANCELLED


def test_usage_from_the_history() -> None:
    used = parse_usage(
        result("history.json", ("condor_history",)), ctx(target("30", (0, 1, 2)), target("31"))
    )
    first = used["30"][0]
    assert (first.submitted_at, first.started_at, first.ended_at) == (
        1776358050.0,
        1776358060.0,
        1776358065.0,
    )
    assert first.hosts == ("f490c38eb019",)
    assert first.cpu_time_s == 3.75 and first.wall_time_s == 5.0
    assert first.max_memory_bytes == 10240 * 1024
    assert used["30"][1].max_memory_bytes is None  # 0: nothing measured
    removed = used["31"][None]
    assert removed.ended_at == 1776358220.0  # CompletionDate 0: when it left


def test_a_real_condor_q_ad_of_a_running_job() -> None:
    """HTCondor 8.8.10 on the OSG (fixtures/SOURCES): a proc of 100, running its
    fourth start, with rounded and raw memory and a glidein's slot name."""
    res = result("q-osg-8.8.10.json")
    seen, release = parse.parse_queue(res, ctx(target("3472942", tuple(range(100)))))
    assert seen["3472942"] == {81: (S.RUNNING, None, None)} and release == {}
    [ad] = parse.parse_ads(res)
    assert ad["MemoryUsage"] == "/Expr(((ResidentSetSize + 1023) / 1024))/"  # text, not MiB
    assert ad["TotalSubmitProcs"] == 100  # the cluster ad's attribute, on the proc's
    used = ad_usage(ad)
    assert used.max_memory_bytes == 1551120 * 1024  # the measured value, not the rounded
    assert used.hosts == ("notch009.int.chpc.utah.edu",)  # slot1_6@glidein_..@host
    assert (used.submitted_at, used.started_at, used.ended_at) == (
        1616890323,
        1617115471,
        None,
    )
    rows = parse.parse_queue_list(res, now=1617117434.0)
    assert rows[0].nodes == "CRUSH-OSG-C7-10-5-219-52" and rows[0].elapsed_s == 1963


def test_find_by_name() -> None:
    res = result("q-held.json")
    assert parse.parse_find_by_name(res, "jf3c4080ab-9-after") == "12"
    assert parse.parse_find_by_name(res, "jf3c4080ab-99-x") is None
    assert parse.parse_find_by_name(result("q-none.json"), "x") is None


def test_the_queue_view() -> None:
    rows = parse.parse_queue_list(result("q-cluster.json"), now=1776358065.0)
    assert len(rows) == 10
    running = next(r for r in rows if r.display_id == "7.0")
    assert (running.native_id, running.tasks, running.state, running.native_state) == (
        "7",
        "1",
        S.RUNNING,
        "R",
    )
    assert running.elapsed_s == 10 and running.nodes == "f490c38eb019"
    assert running.name == "jf3c4080ab-7-sleep" and running.user == "jovyan"


# -- the event log ---------------------------------------------------------------------------


def test_event_log_signal_abort_and_normal_termination() -> None:
    found = parse_event_log(fixture("eventlog-signal-abort.log"))
    assert found[("180158", 0)] == (S.FAILED, 139, "killed by signal 11")
    assert found[("180159", 0)] == (S.COMPLETED, 0, None)
    spaces = parse_event_log(fixture("eventlog-spaces.log"))
    assert spaces[("1", 0)] == (S.FAILED, 139, "killed by signal 11")


def test_event_log_holds_releases_removals_and_timeouts() -> None:
    found = parse_event_log(fixture("eventlog-iso.log"))
    assert found[("40", 0)] == (S.FAILED, 3, None)
    assert found[("41", 0)][0] is S.TIMEOUT
    assert found[("41", 1)] == (S.CANCELLED, None, "cancelled by jovyan")
    partial = fixture("eventlog-iso.log").split("001 (040")[0]
    assert parse_event_log(partial)[("40", 0)] == (S.PENDING, None, "released")


# -- saved outputs and detection ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("submit-one.out", "condor_submit"),
        ("submit-warning.out", "condor_submit"),
        ("q-cluster.json", "condor_q-json"),
        ("q-held.json", "condor_q-json"),
        ("q-states.json", "condor_q-json"),
        ("history.json", "condor_history-json"),
        ("eventlog-iso.log", "event-log"),
        ("eventlog-signal-abort.log", "event-log"),
    ],
)
def test_every_saved_output_is_read_by_its_format(name: str, fmt: str) -> None:
    formats = probe.output_formats()
    saved = read_saved(formats, fixture(name), backend="htcondor")
    assert saved.format.name == fmt
    assert saved.jobs()
    others = [f for f in formats if f.name != fmt and f.recognises(fixture(name), "")]
    assert others == [], "recognises must be strict"


def test_detect_reports_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "which", lambda program: f"/usr/bin/{program}")
    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, fixture("condor_version.out"), ""))
    found = probe.detect(runner)
    assert found is not None and (found.backend, found.version, found.answered) == (
        "htcondor",
        "25.7.2",
        True,
    )
    down = ScriptedRunner(lambda argv: CommandResult(argv, 1, "", "cannot find schedd"))
    silent = probe.detect(down)
    assert silent is not None and not silent.answered and "cannot find" in silent.why
    monkeypatch.setattr(probe, "which", lambda program: None)
    assert probe.detect(runner) is None
