"""The LSF backend's fixes from the review of issue 12: array limits, DONE/PDONE/PERR
with exit codes, bhist's event files."""

from __future__ import annotations

import pytest

from jobfleet import JobSpec, parse_array
from jobfleet.backends.base import PollTarget
from jobfleet.backends.command import PollContext
from jobfleet.backends.lsf import parse
from jobfleet.backends.lsf.backend import LsfBackend
from jobfleet.backends.lsf.directives import LsfSettings
from jobfleet.errors import SpecError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.states import JobState


def backend(**settings: object) -> LsfBackend:
    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, "", ""))
    return LsfBackend(runner, LsfSettings(unit_for_limits="MB", **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("array", "words"),
    [
        ("1000-1001", "largest index 1001"),  # two elements, but past MAX_JOB_ARRAY_SIZE
        (
            ",".join(str(p) for p in range(2, 999) if all(p % d for d in range(2, p))),
            "255 characters",
        ),
    ],
)
def test_an_array_lsf_would_refuse_is_refused_up_front(array: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        backend().check_request(JobSpec(["true"], array=parse_array(array)))
    assert info.value.field == "array" and words in info.value.message
    backend(max_array_size=2000).check_request(JobSpec(["true"], array=parse_array("1000-1001")))


# -- DONE, PDONE and PERR with their exit codes ----------------------------------------------

F, C = JobState.FAILED, JobState.COMPLETED


@pytest.mark.parametrize(
    ("stat", "code", "reason", "expected"),
    [
        ("DONE", "", "", (C, 0, None)),
        ("PDONE", "", "", (C, 0, None)),
        ("PERR", "", "", (C, 0, "post-execution processing failed (LSF state PERR)")),
        ("DONE", "17", "", (F, 17, "exit code 17, which LSF counts as done (SUCCESS_EXIT_VALUES)")),
        ("PDONE", "3", "", (F, 3, None)),
        ("PERR", "3", "", (F, 3, "post-execution processing failed (LSF state PERR)")),
        ("PDONE", "140", "TERM_RUNLIMIT: job killed", (JobState.TIMEOUT, 140, None)),
    ],
)
def test_done_pdone_and_perr_tell_the_exit_code(
    stat: str, code: str, reason: str, expected: tuple[JobState, int, str | None]
) -> None:
    state, number, why = parse.element_of(stat, code, reason, "")
    assert (state, number) == expected[:2]
    if expected[2] is not None:
        assert expected[2] in (why or "")


def test_bhist_done_with_a_non_zero_exit_is_no_success() -> None:
    lines = [
        "Job <7>, Job Name <x>, User <u>",
        "Mon Jan 11 10:00:00: Exited with exit code 17. The CPU time used is 0.0 seconds;",
        "Mon Jan 11 10:00:00: Done successfully. The CPU time used is 0.0 seconds;",
    ]
    assert parse.history_element(lines)[:2] == (F, 17)  # type: ignore[index]


# -- bhist reads more than the current event log ---------------------------------------------


def test_bhist_reads_the_event_files_the_setting_names() -> None:
    target = PollTarget("1", "7", "/nowhere", 0.0)
    assert backend().accounting_argv([target]) == ["bhist", "-l", "-n", "2", "7"]
    assert backend(bhist_files=0).accounting_argv([target]) == ["bhist", "-l", "-n", "0", "7"]


# -- bhist's answer is read whatever its exit status ------------------------------------------


def test_bhist_records_count_when_another_id_was_not_found() -> None:
    record = (
        "Job <7>, Job Name <x>, User <u>, Project <default>, Command <true>\n"
        "Mon Jan 11 10:00:00: Submitted from host <h>, to Queue <normal>;\n"
        "Mon Jan 11 10:00:05: Done successfully. The CPU time used is 0.0 seconds;\n"
    )
    result = CommandResult(("bhist", "-l", "7", "8"), 255, record, "Job <8> is not found\n")
    targets = {i: PollTarget("1", i, "/nowhere", 0.0) for i in ("7", "8")}
    seen = parse.parse_history(result, PollContext(targets, ["7", "8"]))
    assert seen == {"7": {None: (JobState.COMPLETED, 0, None)}}
