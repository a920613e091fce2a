"""The LSF backend's pure parts over the fixtures (tests/backends/lsf/fixtures/SOURCES):
states and exit codes, not-found answers, wrapped bhist/bacct lines, usage, units,
directives and argv, and the formats of ``jobfleet debug parse``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from jobfleet.backends.base import PollTarget, SubmitRequest
from jobfleet.backends.command import PollContext
from jobfleet.backends.formats import UnreadableOutputError, read_saved
from jobfleet.backends.lsf import parse, usage
from jobfleet.backends.lsf.backend import LsfBackend, dependency_expression
from jobfleet.backends.lsf.directives import (
    LsfSettings,
    format_lsf_memory,
    lsf_directives,
    read_unit_for_limits,
    resolved,
    script_options,
)
from jobfleet.backends.lsf.formats import formats
from jobfleet.errors import CommandError, SpecError, SubmitError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.spec import DepKind, JobSpec, Resources, parse_array
from jobfleet.states import JobState

FIXTURES = Path(__file__).parent / "fixtures"
P, R, C, F = JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED


def load(name: str) -> CommandResult:
    """Fixture ``recorded/NAME`` or ``documented/NAME`` as the runner would return it."""
    base = FIXTURES / name
    meta = json.loads(base.with_suffix(".meta.json").read_text())
    out = base.with_suffix(".out").read_text()
    return CommandResult(tuple(meta["argv"]), meta["returncode"], out, meta["stderr"])


def ctx(
    *ids: str, arrays: tuple[str, ...] = (), names: dict[str, str] | None = None
) -> PollContext:
    targets = {
        i: PollTarget(
            "1",
            i,
            "/tmp",
            0.0,
            indices=(1, 2, 3, 4, 5) if i in arrays else None,
            name=(names or {}).get(i, ""),
        )
        for i in ids
    }
    return PollContext(targets, list(ids))


# -- submit ------------------------------------------------------------------------------


def test_job_id_from_bsub() -> None:
    assert parse.parse_submit(load("recorded/bsub-default-queue")) == "327"
    assert parse.parse_submit(load("documented/bsub-queue")) == "1234"
    with pytest.raises(CommandError, match="no job id"):
        parse.parse_submit(load("documented/bsub-refused-queue"))


def test_a_refused_submission_is_an_error_with_lsfs_words(tmp_path: Path) -> None:
    runner = ScriptedRunner(lambda argv: load("documented/bsub-refused-queue"))
    backend = LsfBackend(runner, LsfSettings(unit_for_limits="KB"))
    request = SubmitRequest("1", "jfab-1-x", JobSpec(command=["true"]), "/s.sh", str(tmp_path))
    with pytest.raises(SubmitError, match=r"No such queue\. Job not submitted"):
        backend.submit(request)
    assert runner.count("bsub") == 1  # not a passing refusal: never retried


# -- states and exit codes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ("PEND", P),
        ("WAIT", P),
        ("PROV", P),
        ("PSUSP", P),
        ("RUN", R),
        ("USUSP", R),
        ("SSUSP", R),
        ("DONE", C),
        ("PDONE", C),
        ("PERR", C),
        ("UNKWN", JobState.UNKNOWN),
        ("ZOMBI", JobState.UNKNOWN),
    ],
)
def test_every_state(stat: str, expected: JobState) -> None:
    assert parse.element_of(stat, "", "", "")[0] is expected
    assert set(parse.STATE_MAP) >= {stat}


def test_done_is_exit_code_zero_as_bjobs_leaves_it_empty() -> None:
    assert parse.element_of("DONE", "", "", "") == (C, 0, None)


@pytest.mark.parametrize(
    ("code", "reason", "state", "exit_code"),
    [
        ("3", "", F, 3),
        ("", "", F, None),  # never a guessed 0
        ("-", "", F, None),
        ("0", "", F, None),  # EXIT is never a success, nor carries a success's code
        (
            "140",
            "TERM_RUNLIMIT: job killed after reaching LSF run time limit",
            JobState.TIMEOUT,
            140,
        ),
        (
            "152",
            "TERM_CPULIMIT: job killed after reaching LSF CPU usage limit",
            F,  # CPU time, not the walltime (as on PBS and Torque)
            152,
        ),
        (
            "137",
            "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit",
            JobState.OUT_OF_MEMORY,
            137,
        ),
        ("130", "TERM_OWNER: job killed by owner", JobState.CANCELLED, 130),
        ("130", "TERM_ADMIN: job killed by root or LSF administrator", JobState.CANCELLED, 130),
        ("", "TERM_ORPHAN_SYSTEM: orphan job terminated", JobState.CANCELLED, None),
        ("", "TERM_REQUEUE_OWNER: job killed and requeued by owner", P, None),
        ("1", "TERM_PREEMPT: job killed after preemption", F, 1),
    ],
)
def test_exit_mapping(code: str, reason: str, state: JobState, exit_code: int | None) -> None:
    got = parse.element_of("EXIT", code, reason, "")
    assert got[:2] == (state, exit_code)


def test_an_unknown_state_warns_and_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert parse.element_of("NEWSTATE", "", "", "")[0] is JobState.UNKNOWN
    assert "NEWSTATE" in caplog.text


# -- bjobs -------------------------------------------------------------------------------


def test_bjobs_json_every_ending() -> None:
    ids = ("101", "102", "103", "104", "105", "106", "107", "108")
    seen = parse.parse_queue(load("documented/bjobs-json-mixed"), ctx(*ids))
    got = {i: e[None][:2] for i, e in seen.items()}
    assert got == {
        "101": (C, 0),
        "102": (F, 3),
        "103": (JobState.TIMEOUT, 140),
        "104": (JobState.OUT_OF_MEMORY, 137),
        "105": (JobState.CANCELLED, 130),
        "106": (P, None),
        "107": (R, None),
    }  # 108: "Job <108> is not found", an ERROR record: absent, not an error
    assert seen["106"][None][2] == "Job dependency condition not satisfied"


def test_bjobs_json_array_elements() -> None:
    seen = parse.parse_queue(load("documented/bjobs-json-array"), ctx("200", arrays=("200",)))
    assert {i: e[:2] for i, e in seen["200"].items()} == {
        1: (C, 0),
        2: (F, 1),
        3: (R, None),
        4: (P, None),
        5: (P, None),
    }
    assert "slot limit" in (seen["200"][4][2] or "")
    assert "suspended" in (seen["200"][5][2] or "")


def test_bjobs_json_unescapes_slashes_and_reads_recorded_output() -> None:
    records = parse.queue_records(load("recorded/bjobs-json-done-escaped"), text_format=False)
    assert records[0]["EXEC_CWD"] == "/home/otptest"
    seen = parse.parse_queue(load("recorded/bjobs-json-done-escaped"), ctx("22005"))
    assert seen == {"22005": {None: (C, 0, None)}}


def test_bjobs_text_form() -> None:
    seen = parse.parse_queue(
        load("documented/bjobs-text"), ctx("101", "103", "104", "200", arrays=("200",)), True
    )
    assert seen["101"][None][:2] == (C, 0)
    assert seen["103"][None][0] is JobState.TIMEOUT
    assert {i: e[0] for i, e in seen["200"].items()} == {1: C, 2: P}
    assert "104" not in seen  # "Job <104> is not found" with exit 255: an answer


@pytest.mark.parametrize(
    "name",
    [
        "recorded/bjobs-notfound-rc0",
        "recorded/bjobs-no-unfinished",
        "documented/bjobs-json-notfound",
    ],
)
def test_not_found_is_an_answer_whatever_the_exit_code(name: str) -> None:
    assert parse.parse_queue(load(name), ctx("1", "300")) == {}


def test_a_real_failure_of_bjobs_is_an_error() -> None:
    result = CommandResult(("bjobs",), 255, "", "LSF is down. Please wait ...\n")
    with pytest.raises(CommandError):
        parse.parse_queue(result, ctx("1"))
    with pytest.raises(CommandError, match="unreadable JSON"):
        parse.parse_queue(CommandResult(("bjobs",), 0, "{nope", ""), ctx("1"))


def test_a_reused_job_id_under_another_name_is_not_ours() -> None:
    seen = parse.parse_queue(
        load("documented/bjobs-json-mixed"),
        ctx("101", "102", names={"101": "jf3c4080ab-1-ok", "102": "jfother-2-x"}),
    )
    assert "101" in seen and "102" not in seen


# -- bhist -l and bacct -l: wrapped lines ----------------------------------------------------


def test_unwrap_joins_words_split_across_lines() -> None:
    lines = parse.unwrap(load("recorded/bjobs-l-run-wrapped").stdout)
    assert any("Status <RUN>, Queue <research-rh74>" in line for line in lines)
    assert any(
        "Command <_toil_worker CactusBarRecursion file:/hps/nobackup/production" in line
        for line in lines
    )
    exit42 = parse.unwrap(load("recorded/bjobs-l-exit42").stdout)
    assert any(line.endswith("The CPU time used is 0.0 seconds.") for line in exit42)


@pytest.mark.parametrize(
    ("name", "job", "expected"),
    [
        ("recorded/bhist-l-done", "872795", (C, 0, None)),
        ("recorded/bhist-l-exit127-split", "873209", (F, 127, None)),
        ("recorded/bacct-l-done", "3329613", (C, 0, None)),
        (
            "recorded/bacct-l-killed",
            "3224113",
            # bacct names no killer: TERM_OWNER is the owner, the record's User <rmurri>
            (JobState.CANCELLED, None, "cancelled by rmurri"),
        ),
    ],
)
def test_history_records(name: str, job: str, expected: tuple[object, ...]) -> None:
    assert parse.parse_history(load(name), ctx(job)) == {job: {None: expected}}


def test_history_of_array_elements_and_limits() -> None:
    seen = parse.parse_history(
        load("documented/bhist-l-runlimit-array"), ctx("200", arrays=("200",))
    )
    assert seen["200"][2][:2] == (JobState.TIMEOUT, 140)
    assert seen["200"][3][:2] == (JobState.OUT_OF_MEMORY, 137)  # "Exited by signal 9"


def test_history_without_the_job_is_an_empty_answer() -> None:
    assert parse.parse_history(load("documented/bhist-nomatch"), ctx("999")) == {}


# -- usage -----------------------------------------------------------------------------------


def test_usage_from_bjobs_of_ended_jobs_only() -> None:
    used = usage.queue_usage(load("documented/bjobs-json-mixed"), ctx("101", "103", "107"), now=2e9)
    assert set(used) == {"101", "103"}
    ok = used["101"][None]
    assert ok.max_memory_bytes == 2 * 2**20 and ok.hosts == ("hostA",) and ok.wall_time_s == 31.0
    assert used["103"][None].hosts == ("hostB",)  # 4*hostB
    real = usage.queue_usage(load("recorded/bjobs-json-done-escaped"), ctx("22005"), now=2e9)
    assert real["22005"][None].max_memory_bytes == int(5.2 * 2**30)
    assert real["22005"][None].hosts == ("tbi-cn019",)


def test_usage_from_history() -> None:
    used = usage.history_usage(load("recorded/bhist-l-done"), ctx("872795"), now=2e9)
    done = used["872795"][None]
    assert done.hosts == ("hx-noah-05-14",) and done.cpu_time_s == 0.0
    assert done.started_at is not None and done.ended_at is not None
    arr = usage.history_usage(
        load("documented/bhist-l-runlimit-array"), ctx("200", arrays=("200",)), now=2e9
    )
    assert arr["200"][3].max_memory_bytes == int(1.1 * 2**30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.2 Gbytes", int(5.2 * 2**30)),
        ("522 MBytes", 522 * 2**20),
        ("5M", 5 * 2**20),
        ("-", None),
        ("", None),
    ],
)
def test_lsf_memory_texts(text: str, expected: int | None) -> None:
    assert usage.parse_lsf_memory(text) == expected


# -- units and settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "expected"), [("KB", "4194304"), ("MB", "4096"), ("GB", "4"), ("TB", "1")]
)
def test_memory_in_the_sites_unit_rounded_up(unit: str, expected: str) -> None:
    assert format_lsf_memory(4 * 2**30, unit) == expected
    assert format_lsf_memory(4 * 2**30 + 1, "GB") == "5"


def test_unit_for_limits_from_lsf_conf(tmp_path: Path) -> None:
    assert read_unit_for_limits({"LSF_ENVDIR": str(tmp_path)}) == "KB"  # no lsf.conf
    (tmp_path / "lsf.conf").write_text("LSF_LOGDIR=/var/log\nLSF_UNIT_FOR_LIMITS=MB\n")
    assert read_unit_for_limits({"LSF_ENVDIR": str(tmp_path)}) == "MB"
    (tmp_path / "lsf.conf").write_text("LSF_UNIT_FOR_LIMITS = G  # site\n")
    assert read_unit_for_limits({"LSF_ENVDIR": str(tmp_path)}) == "GB"
    assert resolved(LsfSettings(), {"LSF_ENVDIR": str(tmp_path)}).unit_for_limits == "GB"
    assert (
        resolved(LsfSettings(unit_for_limits="KB"), {"LSF_ENVDIR": str(tmp_path)}).unit_for_limits
        == "KB"
    )


def _spec(**res: object) -> JobSpec:
    return JobSpec(command=["true"], resources=Resources.of(**res))


def test_memory_for_both_limit_and_reservation_per_job_or_slot() -> None:
    mb = LsfSettings(unit_for_limits="MB")
    assert lsf_directives(_spec(memory="4G", cores=4), mb) == [
        "-n 4",
        "-M 4096",
        "-R 'rusage[mem=4096] span[hosts=1]'",
    ]
    per_slot = LsfSettings(unit_for_limits="MB", memory_per="slot")
    assert "-M 1024" in lsf_directives(_spec(memory="4G", cores=4), per_slot)
    assert "-M 2048" in lsf_directives(_spec(memory_per_core="512M", cores=4), mb)


@pytest.mark.parametrize(
    ("res", "field"),
    [
        ({"qos": "high"}, "resources.qos"),
        ({"gpus": 2, "nodes": 2, "tasks_per_node": 1}, "resources.gpus"),
        ({"nodes": 2, "tasks": 3}, "resources.nodes"),
        ({"priority": -5}, "resources.priority"),
        ({"mail_to": "a@b.c", "mail_on": ["requeue"]}, "resources.mail_on"),
        ({"constraint": "[a*2]"}, "resources.constraint"),
    ],
)
def test_what_lsf_cannot_honour_is_a_spec_error_naming_the_field(
    res: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        lsf_directives(_spec(**res), LsfSettings(unit_for_limits="KB"))
    assert info.value.field == field


def test_script_options_read_like_bsub() -> None:
    assert script_options("#!/bin/bash\n#BSUB -R 'rusage[mem=1]'\n#BSUB -q q1\nexit\n#BSUB -x") == [
        "-R",
        "rusage[mem=1]",
        "-q",
        "q1",
    ]


# -- argv ------------------------------------------------------------------------------------


def _backend(runner: ScriptedRunner | None = None) -> LsfBackend:
    return LsfBackend(runner, LsfSettings(unit_for_limits="MB"))


def test_submit_argv_array_dependencies_and_directives() -> None:
    spec = JobSpec(
        command=["true"],
        resources=Resources.of(cores=2, walltime="1h30m", extra_directives=["-app big"]),
        array=parse_array("1-9:2,20%3"),
    )
    deps = (
        (DepKind.AFTER_OK, ("11",)),
        (DepKind.AFTER_NOT_OK, ("12",)),
        (DepKind.AFTER_ANY, ("13",)),
    )
    argv = _backend().submit_argv(SubmitRequest("7", "jfab-7-x", spec, "/j/job.sh", "/j", deps))
    assert argv[:5] == ["bsub", "-J", "jfab-7-x[1-9:2,20]%3", "-o", "/j/lsf.%J_%I.out"]
    assert argv[5:8] == ["-w", "done(11) && exit(12) && ended(13)", "-ti"]
    assert argv[8:] == [
        "-n",
        "2",
        "-R",
        "span[hosts=1]",
        "-W",
        "1:30",
        "-app",
        "big",
        "/bin/bash",
        "/j/job.sh",
    ]
    assert dependency_expression(()) == ""


def test_cancel_and_signal_argv_and_answers() -> None:
    backend = _backend()
    assert backend.cancel_argv(["5"], None, None) == ["bkill", "5"]
    assert backend.cancel_argv(["5"], [2, 3, 4, 9], None) == ["bkill", "5[2-4,9]"]
    assert backend.cancel_argv(["5", "6"], None, "SIGUSR1") == ["bkill", "-s", "USR1", "5", "6"]
    for name in ("bkill-running", "bkill-finished", "bkill-unknown", "bkill-signal"):
        assert backend.cancel_ok(load(f"recorded/{name}"))
    assert not backend.cancel_ok(CommandResult(("bkill",), 255, "", "Job <5>: Permission denied\n"))


def test_one_status_call_then_one_history_call_for_what_left_the_queue() -> None:
    def respond(argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == "bjobs":
            return load("documented/bjobs-json-mixed")
        return load("recorded/bhist-l-exit127-split")

    runner = ScriptedRunner(respond)
    targets = [PollTarget("1", i, "/nonexistent", 0.0) for i in ("101", "873209")]
    statuses = _backend(runner).poll(targets)
    assert runner.count("bjobs") == 1 and runner.count("bhist") == 1
    assert runner.calls[1] == ("bhist", "-l", "-n", "2", "873209")
    assert statuses["101"].state is C and statuses["873209"].exit_code == 127
    assert statuses["101"].usage is not None


def test_array_size_limit_is_the_sites() -> None:
    assert (
        LsfBackend(
            None, LsfSettings(unit_for_limits="KB", max_array_size=50)
        ).capabilities.max_array_size
        == 50
    )
    with pytest.raises(SpecError, match="start at 1"):
        _backend().check_request(JobSpec(command=["true"], array=parse_array("0-3")))


# -- formats (jobfleet debug parse) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("recorded/bsub-default-queue", "bsub"),
        ("recorded/bjobs-json-done-escaped", "bjobs-json"),
        ("documented/bjobs-json-array", "bjobs-json"),
        ("documented/bjobs-text", "bjobs-text"),
        ("recorded/bhist-l-done", "bhist-l"),
        ("documented/bhist-l-runlimit-array", "bhist-l"),
        ("recorded/bacct-l-killed", "bacct-l"),
        ("recorded/bjobs-notfound-rc0", "bjobs-not-found"),
        ("recorded/bjobs-no-unfinished", "bjobs-not-found"),
    ],
)
def test_each_output_is_recognised_by_exactly_one_format(name: str, fmt: str) -> None:
    result = load(name)
    matching = [f.name for f in formats() if f.recognises(result.stdout, result.stderr)]
    assert matching == [fmt]
    read_saved(formats(), result.stdout, result.stderr, "lsf")


@pytest.mark.parametrize(
    "name", ["recorded/bjobs-l-done", "recorded/bkill-unknown", "documented/lsid"]
)
def test_other_outputs_are_not_read(name: str) -> None:
    result = load(name)
    with pytest.raises(UnreadableOutputError):
        read_saved(formats(), result.stdout, result.stderr, "lsf")


def test_json_without_job_ids_cannot_be_read() -> None:
    result = load("recorded/bjobs-json-psusp")
    with pytest.raises(UnreadableOutputError, match="JOBID"):
        read_saved(formats(), result.stdout, result.stderr, "lsf")


def test_version_from_lsid() -> None:
    assert parse.parse_version(load("documented/lsid").stdout) == "10.1.0.13"


def test_queue_view_rows() -> None:
    rows = parse.parse_queue_list(load("documented/bjobs-json-array"))
    assert [(r.display_id, r.tasks, r.state, r.native_state) for r in rows][:3] == [
        ("200[1]", "1", C, "DONE"),
        ("200[2]", "2", F, "EXIT"),
        ("200[3]", "3", R, "RUN"),
    ]
    assert rows[0].name == "jf3c4080ab-9-arr" and rows[3].reason is not None


@pytest.mark.parametrize(
    ("stderr", "transient"),
    [
        ("LSF is down. Please wait ...\n", True),
        ("batch system daemon not responding ... still trying\n", True),
        ("Pending job threshold reached. Retrying in 60 seconds...\n", True),
        ("nosuch: No such queue. Job not submitted.\n", False),
        ("Too many processors requested. Job not submitted.\n", False),
        ("-Z: Illegal option. Job not submitted.\n", False),
    ],
)
def test_which_refusals_of_bsub_pass(stderr: str, transient: bool) -> None:
    result = CommandResult(("bsub",), 255, "", stderr)
    assert _backend().submit_is_transient(result) is transient


@pytest.mark.parametrize(
    ("rc", "out", "err", "expected"),
    [
        (0, "1001\n1007\n", "", "1007"),
        (0, "No job found\n", "", None),
        (255, "", "Job <jfab-1-x> is not found\n", None),
        (0, "", "Job <jfab-1-x> is not found\n", None),
    ],
)
def test_find_by_name(rc: int, out: str, err: str, expected: str | None) -> None:
    assert parse.parse_find_by_name(CommandResult(("bjobs",), rc, out, err)) == expected


def test_find_by_name_cannot_tell_when_bjobs_fails() -> None:
    with pytest.raises(CommandError):
        parse.parse_find_by_name(CommandResult(("bjobs",), 255, "", "LSF is down. Please wait\n"))
