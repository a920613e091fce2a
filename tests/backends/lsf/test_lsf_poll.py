"""The LSF backend's poll over scripted bjobs/bhist answers: one bjobs call for every
tracked job, one bhist call for those bjobs no longer shows, the exit-code file last;
a job nobody knows is never concluded, and a failing command concludes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobfleet.backends.base import PollTarget
from jobfleet.backends.lsf.backend import LsfBackend
from jobfleet.backends.lsf.directives import LsfSettings
from jobfleet.errors import CommandError
from jobfleet.jobdir import exit_code_path
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.states import JobState


def _bjobs(records: list[dict[str, str]], missing: list[str]) -> CommandResult:
    body = {
        "COMMAND": "bjobs",
        "JOBS": len(records) + len(missing),
        "RECORDS": records + [{"JOBID": m, "ERROR": f"Job <{m}> is not found"} for m in missing],
    }
    err = "".join(f"Job <{m}> is not found\n" for m in missing)
    return CommandResult(("bjobs",), 255 if missing else 0, json.dumps(body), err)


def _record(job_id: str, stat: str, code: str = "") -> dict[str, str]:
    return {"JOBID": job_id, "JOBINDEX": "0", "STAT": stat, "EXIT_CODE": code, "JOB_NAME": ""}


def test_a_thousand_jobs_cost_one_bjobs_and_one_bhist() -> None:
    ids = [str(n) for n in range(5000, 6000)]
    forgotten = ids[::10]

    def respond(argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == "bjobs":
            shown = [_record(i, "RUN") for i in ids if i not in forgotten]
            return _bjobs(shown, forgotten)
        assert argv[:4] == ("bhist", "-l", "-n", "2") and list(argv[4:]) == forgotten
        text = "".join(
            f"Job <{i}>, User <u>, Project <default>, Command <x>\n"
            "Sun Jan 10 17:50:12: Exited with exit code 2. The CPU time used is 0.0 seconds;\n"
            "Sun Jan 10 17:50:12: Completed <exit>;\n"
            for i in forgotten
        )
        return CommandResult(argv, 0, text, "")

    runner = ScriptedRunner(respond)
    backend = LsfBackend(runner, LsfSettings(unit_for_limits="KB"))
    statuses = backend.poll([PollTarget("1", i, "/nonexistent", 0.0) for i in ids])
    assert (runner.count("bjobs"), runner.count("bhist")) == (1, 1)
    assert len(statuses) == 1000
    assert {statuses[i].state for i in forgotten} == {JobState.FAILED}
    assert {statuses[i].exit_code for i in forgotten} == {2}


def test_a_job_nobody_knows_is_not_concluded(tmp_path: Path) -> None:
    def respond(argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == "bjobs":
            return _bjobs([], ["77"])
        return CommandResult(argv, 255, "", "No matching job found\n")

    backend = LsfBackend(ScriptedRunner(respond), LsfSettings(unit_for_limits="KB"))
    target = PollTarget("1", "77", str(tmp_path), 0.0)
    assert backend.poll([target]) == {}  # the caller keeps the last known state
    Path(exit_code_path(str(tmp_path), None)).write_text("5\n")
    status = backend.poll([target])["77"]
    assert (status.state, status.exit_code) == (JobState.FAILED, 5)  # the script's record


@pytest.mark.parametrize("program", ["bjobs", "bhist"])
def test_a_failing_command_concludes_nothing(program: str) -> None:
    def respond(argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == program:
            return CommandResult(argv, 255, "", "LSF is down. Please wait ...\n")
        return _bjobs([], ["77"])

    backend = LsfBackend(ScriptedRunner(respond), LsfSettings(unit_for_limits="KB"))
    with pytest.raises(CommandError):
        backend.poll([PollTarget("1", "77", "/nonexistent", 0.0)])


def test_bacct_when_configured() -> None:
    runner = ScriptedRunner(
        lambda argv: (
            _bjobs([], ["9"])
            if argv[0] == "bjobs"
            else CommandResult(
                argv,
                0,
                "Job <9>, User <u>\n"
                "Mon Oct  8 17:09:51: Completed <exit>; TERM_OWNER: job killed by owner.\n",
                "",
            )
        )
    )
    backend = LsfBackend(runner, LsfSettings(unit_for_limits="KB", accounting="bacct"))
    status = backend.poll([PollTarget("1", "9", "/nonexistent", 0.0)])["9"]
    assert runner.calls[-1] == ("bacct", "-l", "9")
    assert (status.state, status.exit_code) == (JobState.CANCELLED, None)
