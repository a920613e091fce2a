"""How a removed, held or never-released HTCondor job reads: the same words as on every
backend (docs/states.md), from a history ad and from the event log alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends.base import PollTarget
from jobfleet.backends.command import PollContext
from jobfleet.backends.htcondor import parse, reasons
from jobfleet.backends.htcondor.backend import HTCondorBackend
from jobfleet.backends.htcondor.eventlog import parse_event_log
from jobfleet.backends.htcondor.submitfile import HTCondorSettings
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.states import JobState

S = JobState
FIXTURES = Path(__file__).parent / "fixtures"
NEVER = "after_ok dependency on job 7 can never be met"


def history(*ids: str) -> dict[str, Any]:
    text = (FIXTURES / "history-removed.json").read_text()
    targets = {i: PollTarget(i, i, "/nowhere", 0.0) for i in ids}
    ctx = PollContext(targets, list(targets))
    seen = parse.parse_history(CommandResult(("condor_history",), 0, text, ""), ctx)
    return {i: elements[None] for i, elements in seen.items()}


def test_a_removed_job_says_who_or_what_removed_it() -> None:
    seen = history("60", "61", "62", "63", "64")
    assert seen["60"] == (S.CANCELLED, None, "cancelled by alice")
    assert seen["61"] == (S.TIMEOUT, None, "walltime limit exceeded (00:02:00)")
    assert seen["63"] == (
        S.CANCELLED,
        None,
        "cancelled: The system macro SYSTEM_PERIODIC_REMOVE expression "
        "'(JobStatus == 2) && (time() - JobCurrentStartDate > 300)' evaluated to TRUE",
    )
    assert seen["64"] == (S.CANCELLED, None, "cancelled by bob (no longer needed)")
    # The dependent whose job script found its dependency never met exited 196: the
    # backend reads its never file (below); the ad alone is a failure, never a success.
    assert seen["62"] == (S.FAILED, 196, None)


@pytest.mark.parametrize(
    ("remove_reason", "reads"),
    [
        ("via condor_rm (by user alice)", "cancelled by alice"),
        ("via condor_rm -forcex (by user alice)", "cancelled by alice (via condor_rm -forcex)"),
        (f"cancelled: {NEVER} (by user alice)", f"cancelled: {NEVER} (removed by alice)"),
        ("via condor_rm (by user )", "cancelled: via condor_rm"),
        ("", "cancelled (HTCondor did not say by whom)"),
        (None, "cancelled (HTCondor did not say by whom)"),
    ],
)
def test_cancel_wording(remove_reason: str | None, reads: str) -> None:
    assert reasons.cancelled(remove_reason) == reads
    ad = {"JobStatus": 3, "RemoveReason": remove_reason}
    assert parse.map_ad(ad, in_queue=False) == (S.CANCELLED, None, reads)


def test_held_wording_is_the_same_everywhere() -> None:
    ad = {"ClusterId": 8, "ProcId": 0, "JobStatus": 5}
    assert parse.map_ad(ad, in_queue=True)[2] == (
        "held: no reason given; `condor_release 8.0` once fixed, or jobfleet cancel"
    )
    coded = ad | {"HoldReason": "via condor_hold (by user alice)", "HoldReasonCode": 1}
    assert (parse.map_ad(coded, in_queue=True)[2] or "").startswith(
        "held: via condor_hold (by user alice) (HoldReasonCode 1); "
    )
    log = parse_event_log((FIXTURES / "eventlog-iso.log").read_text().split("009 (041.001")[0])
    assert log[("41", 1)] == (
        S.PENDING,
        None,
        "held: via condor_hold (by user jovyan) (HoldReasonCode 1)",
    )


def test_event_log_removals_read_as_the_history() -> None:
    found = parse_event_log((FIXTURES / "eventlog-iso.log").read_text(), walltime_s=60)
    assert found[("41", 0)] == (S.TIMEOUT, None, "walltime limit exceeded (00:01:00)")
    assert found[("41", 1)] == (S.CANCELLED, None, "cancelled by jovyan")
    older = parse_event_log((FIXTURES / "eventlog-signal-abort.log").read_text())
    # "Job was aborted by the user." (older HTCondor): by whom is not said.
    assert older[("180158", 0)][0] is S.FAILED, "its termination came first and stands"


def test_an_abort_without_a_reason_line_does_not_name_anybody() -> None:
    log = "009 (012.000.000) 03/10 16:40:45 Job was aborted by the user.\n...\n"
    assert parse_event_log(log)[("12", 0)] == (
        S.CANCELLED,
        None,
        "cancelled (HTCondor did not say by whom)",
    )


# -- the backend: the job script's files complete what HTCondor says ---------------------------


def backend(answers: dict[str, str], *, history: bool = True) -> HTCondorBackend:
    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, answers.get(argv[0], ""), "")

    return HTCondorBackend(ScriptedRunner(respond), HTCondorSettings(history=history))


def test_a_dependency_never_met_reads_cancelled_with_why(tmp_path: Path) -> None:
    (tmp_path / "never").write_text(NEVER + "\n")
    ad = json.loads((FIXTURES / "history-removed.json").read_text())
    [dependent] = [a for a in ad if a["ClusterId"] == 62]
    status = backend({"condor_history": json.dumps([dependent])}).poll(
        [PollTarget("9", "62", str(tmp_path), 0.0)]
    )["62"]
    assert (status.state, status.exit_code) == (S.CANCELLED, None)
    assert status.reason == f"cancelled: {NEVER}"


def test_the_event_log_gets_the_job_scripts_exit_code_and_reasons(tmp_path: Path) -> None:
    """No history: the event log tells how the procs ended, and the job script's files
    add what it cannot say (143 of a cancel, a dependency never met, the walltime)."""
    (tmp_path / "condor.log").write_text(
        "009 (070.000.000) 2026-04-16 16:48:30 Job was aborted.\n"
        "\tvia condor_rm (by user alice)\n...\n"
        "009 (070.001.000) 2026-04-16 16:49:05 Job was aborted.\n"
        "\tThe job attribute PeriodicRemove expression '(JobStatus == 2) && (time() - "
        "JobCurrentStartDate > JobfleetWalltime)' evaluated to TRUE\n...\n"
        "005 (070.002.000) 2026-04-16 16:47:26 Job terminated.\n"
        "\t(1) Normal termination (return value 196)\n...\n"
    )
    (tmp_path / "job.sub").write_text("+JobfleetWalltime = 90\nqueue 3\n")
    for index in (1, 2):
        (tmp_path / f"exit_code.{index}").write_text("143\n")
    (tmp_path / "never.3").write_text(NEVER + "\n")
    status = backend({}, history=False).poll(
        [PollTarget("9", "70", str(tmp_path), 0.0, indices=(1, 2, 3))]
    )["70"]
    assert status.elements == {
        1: (S.CANCELLED, 143, "cancelled by alice"),
        2: (S.TIMEOUT, 143, "walltime limit exceeded (00:01:30)"),
        3: (S.CANCELLED, None, f"cancelled: {NEVER}"),
    }
