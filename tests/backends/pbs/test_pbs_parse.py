"""The PBS backend's parsers, directives and polling, driven by the fixtures of
``tests/backends/pbs/fixtures/22.05`` (built to OpenPBS 22.05's printing code: see SOURCES
there and docs/pbs-notes.md). No cluster is needed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends import formats
from jobfleet.backends.base import PollTarget, SubmitRequest
from jobfleet.backends.command import PollContext
from jobfleet.backends.pbs import BACKEND, PbsSettings, outcome, parse, pbs_directives
from jobfleet.backends.pbs import probe as pbs_probe
from jobfleet.backends.pbs.backend import PbsBackend, cut_name
from jobfleet.errors import CommandError, SpecError, SubmitError
from jobfleet.jobdir import exit_code_path
from jobfleet.naming import scheduler_head, scheduler_name
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.spec import DepKind, JobSpec, Resources, parse_array
from jobfleet.states import JobState

FIXTURES = Path(__file__).parent / "fixtures" / "22.05"
SERVER = "pbs-head.cluster.example.org"
C, F, X, T, M = (
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
    JobState.TIMEOUT,
    JobState.OUT_OF_MEMORY,
)


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def result(
    stdout: str, rc: int = 0, stderr: str = "", argv: tuple[str, ...] = ("qsub",)
) -> CommandResult:
    return CommandResult(argv, rc, stdout, stderr)


def jid(number: str) -> str:
    return f"{number}.{SERVER}"


# -- qsub ----------------------------------------------------------------------------------


def test_qsub_prints_the_id_with_the_server_name_dots_and_all() -> None:
    assert parse.parse_submit(result(text("qsub.out"))) == jid("1001")
    assert parse.parse_submit(result(text("qsub-array.out"))) == "1010[]." + SERVER


def test_lines_before_the_id_are_not_the_id() -> None:
    assert parse.parse_submit(result(text("qsub-site-message.out"))) == jid("1013")


def test_no_id_is_an_error_not_a_guess() -> None:
    with pytest.raises(CommandError, match="no job id"):
        parse.parse_submit(result("Job submitted.\n"))


def test_an_element_id_belongs_to_its_array() -> None:
    assert parse.job_key(f"1010[3].{SERVER}") == (f"1010[].{SERVER}", 3)
    assert parse.job_key(f"1010[].{SERVER}") == (f"1010[].{SERVER}", None)
    assert parse.job_key(jid("1001")) == (jid("1001"), None)


# -- the two forms of qstat -f -------------------------------------------------------------


def test_the_text_and_the_json_form_say_the_same() -> None:
    by_text = parse.read_text(text("qstat-fxt.txt"))
    by_json = parse.read_json(text("qstat-fxt.json"))
    assert [j for j, _ in by_text] == [j for j, _ in by_json]
    assert len(by_text) == 15
    for (_, a), (_, b) in zip(by_text, by_json, strict=True):
        a.pop("Variable_List")
        assert a == b


def test_wrapped_values_join_exactly() -> None:
    first = dict(parse.read_text(text("qstat-fxt.txt")))[jid("1001")]
    # Cut mid-word at column 78 ("pbs" / ".out"), and after commas.
    assert (
        first["Error_Path"] == "login1.cluster.example.org:/home/alice/.jobfleet/jobs/1001/pbs.out"
    )
    assert first["comment"].endswith("(node01:ncpus=2:mem=4194304kb) and finished")
    assert first["Variable_List"].count(",") == 9
    assert (
        "PBS_O_PATH=/home/alice/.local/bin:/opt/pbs/bin:/usr/local/sbin:/usr/local/bin:"
        in (first["Variable_List"])
    )
    assert first["Submit_arguments"].endswith("-j oe /home/alice/.jobfleet/jobs/1001/job.sh")


def test_a_raw_newline_in_a_value_stays_in_that_value() -> None:
    ((_, attrs),) = parse.read_text(text("qstat-fxt-invalid-escape.txt"))
    assert attrs["Variable_List"].endswith("modulecmd bash $*`\n}")
    assert attrs["job_state"] == "Q"  # nothing after it went astray
    assert attrs["etime"] == "Sun Dec  6 12:17:01 2026"


@pytest.mark.parametrize("name", ["qstat-fxt-invalid-number.json", "qstat-fxt-invalid-escape.json"])
def test_invalid_json_is_said_so_and_the_text_form_reads(name: str) -> None:
    with pytest.raises(parse.UnreadableJson):
        parse.read_json(text(name))
    ((job_id, attrs),) = parse.read_text(text(name.replace(".json", ".txt")))
    assert attrs["job_state"] == "Q" and job_id.endswith(SERVER)


# -- states and exit codes -------------------------------------------------------------------

EXPECTED = {
    "1001": (C, 0, None),
    "1002": (F, 3, None),
    "1003": (T, None, "walltime limit exceeded (00:10:00)"),
    "1004": (M, None, "memory limit exceeded (mem): used 4096.1 MiB > 4096 MiB"),
    "1005": (X, 143, "cancelled by alice"),
    "1006": (X, None, "cancelled before it started (PBS records by whom only for a running job)"),
    "1007": (JobState.PENDING, None, "held: by its owner (Hold_Types u; qrls releases it)"),
    "1008": (JobState.PENDING, None, "held: waiting for a dependency"),
    "1009": (JobState.RUNNING, None, None),
    "1011": (F, 137, "killed by signal 9"),
}


@pytest.mark.parametrize("form", ["qstat-fxt.txt", "qstat-fxt.json"])
def test_every_job_of_the_fixture_maps(form: str) -> None:
    records = parse.read_text(text(form)) if form.endswith("txt") else parse.read_json(text(form))
    ids = [jid(n) for n in EXPECTED] + [f"1010[].{SERVER}"]
    ctx = PollContext({}, ids)
    seen = parse.records_seen(records, ctx, outcome.map_record, parse.ctime_text)
    for number, element in EXPECTED.items():
        assert seen[jid(number)] == {None: element}, number
    assert seen[f"1010[].{SERVER}"] == {
        1: (C, 0, None),
        2: (JobState.RUNNING, None, None),
        3: (JobState.PENDING, None, None),
        4: (F, 1, None),
    }
    used = ctx.usage[jid("1001")][None]
    assert used.hosts == ("node01",) and used.wall_time_s == 180.0 and used.cpu_time_s == 118.0
    assert used.max_memory_bytes == 2**30
    assert used.ended_at is not None and used.started_at is not None
    assert used.ended_at - used.started_at == 180.0
    assert jid("1009") not in ctx.usage  # running: nothing final to say
    assert ctx.usage[f"1010[].{SERVER}"][1].hosts == ("node01",)


#: A record of a finished job that ran, and one that qdel ended while it ran.
RAN = {"job_state": "F", "substate": "92", "stime": "Sun Dec  6 12:16:51 2026"}
BY_ALICE = "Job run at Sun Dec 06 at 12:16 on (node01:ncpus=1) and terminated by alice@login1"
QDEL = {**RAN, "substate": "91", "comment": BY_ALICE}
HOUR = {"Resource_List.walltime": "01:00:00"}
MEM = {"Resource_List.mem": "4gb", "resources_used.mem": "4198400kb"}
NOT_SAID = "cancelled (PBS did not record by whom)"
QUEUED_DELETED = "cancelled before it started (PBS records by whom only for a running job)"
VMEM = {"Resource_List.vmem": "1gb", "resources_used.vmem": "2097152kb"}


@pytest.mark.parametrize(
    ("status", "attrs", "expected"),
    [
        (0, RAN, (C, 0, None)),
        (1, RAN, (F, 1, None)),
        (255, RAN, (F, 255, None)),
        (271, RAN, (F, 143, "killed by signal 15")),
        (265, RAN, (F, 137, "killed by signal 9")),
        # qdel of a running job: who, from the comment (update_job_finish_comment)
        (271, QDEL, (X, 143, "cancelled by alice")),
        (143, QDEL, (X, 143, "cancelled by alice")),  # jobfleet's script outlived it
        (265, QDEL, (X, 137, "cancelled by alice")),  # qdel -Wforce, or kill_delay's SIGKILL
        (2, QDEL, (X, 2, "cancelled by alice")),  # the command's own graceful exit
        # never 0 from the bookkeeping: a cancelled job has no success's code
        (0, QDEL, (X, None, "cancelled by alice")),
        (None, QDEL, (X, None, "cancelled by alice")),
        (-29, QDEL, (X, None, "cancelled by alice")),
        (271, {**QDEL, "comment": "Job run at ... and terminated"}, (X, 143, NOT_SAID)),
        (None, {"substate": "91"}, (X, None, QUEUED_DELETED)),
        (
            None,
            {"substate": "91", "comment": "Not Running: x and terminated"},
            (X, None, QUEUED_DELETED),
        ),
        (
            None,
            {"substate": "92"},
            (X, None, "cancelled before it started (deleted or aborted by PBS)"),
        ),
        (-29, HOUR, (T, None, "walltime limit exceeded (01:00:00)")),
        (-29, {}, (T, None, "walltime limit exceeded")),
        (-27, MEM, (M, None, "memory limit exceeded (mem): used 4100 MiB > 4096 MiB")),
        (-27, {}, (M, None, "memory limit exceeded (mem)")),
        (-26, VMEM, (M, None, "memory limit exceeded (vmem): used 2048 MiB > 1024 MiB")),
        (-28, {}, (F, None, "CPU time limit exceeded (cput)")),
        (-3, {}, (F, None, "PBS could not start the job; no retry followed (JOB_EXEC_RETRY)")),
        (-11, {}, (F, None, "ended for a rerun that did not follow (JOB_EXEC_RERUN)")),
        (-1, {}, (F, None, "PBS could not start the job (JOB_EXEC_FAIL1)")),
        (-19, {}, (X, None, "cancelled: a hook deleted the job (JOB_EXEC_HOOK_DELETE)")),
        (-99, {}, (F, None, "PBS could not run the job (Exit_status -99)")),
    ],
)
def test_exit_status_never_lies(status: int | None, attrs: dict[str, str], expected: Any) -> None:
    assert outcome.map_exit(status, attrs) == expected
    state, code, _ = expected
    if state in (X, T):  # docs/states.md: never a success's code
        assert code != 0


@pytest.mark.parametrize("status", ["-3", "-11"])
@pytest.mark.parametrize("letter", ["F", "X"])
def test_a_finished_job_never_stays_pending(status: str, letter: str) -> None:
    # A retry or a rerun queues the job again (Q): a finished record ran no more.
    record = {"job_state": letter, "substate": "92", "Exit_status": status}
    state, code, why = outcome.map_record(record)
    assert (state, code) == (F, None) and why is not None and "JOB_EXEC_" in why


#: An element deleted before it started, as qstat prints it: its array's attributes
#: (stat_job.c status_subjob), the array's Exit_status and substate, no array_index.
MADE_UP = f"""Job Id: 1020[2].{SERVER}
    Job_Name = jfab12cd34-7-sweep
    job_state = X
    Exit_status = 0
    substate = 70
    comment = Subjob finished
    resources_used.walltime = 00:00:05
    stime = Sun Dec  6 12:16:51 2026
Job Id: 1020[1].{SERVER}
    job_state = X
    Exit_status = 0
    substate = 92
    array_index = 1
"""


@pytest.mark.parametrize(
    ("recorded", "expected"), [(None, (X, None, parse.REMOVED)), ("3", (F, 3))]
)
def test_an_element_pbs_keeps_no_record_of_is_not_its_arrays(
    tmp_path: Path, recorded: str | None, expected: tuple[Any, ...]
) -> None:
    if recorded is not None:  # it ran, and its job is gone: what its script recorded
        recorded_file = Path(exit_code_path(str(tmp_path), 2))
        recorded_file.parent.mkdir(exist_ok=True)  # <job dir>/<index // 1000>/
        recorded_file.write_text(recorded + "\n")
    runner = ScriptedRunner(lambda a: CommandResult(a, 0, MADE_UP, ""))
    backend = PbsBackend(runner, PbsSettings(status_format="text"))
    native = f"1020[].{SERVER}"
    elements = backend.poll([target(native, tmp_path, (1, 2))])[native].elements
    assert elements[1] == (C, 0, None)
    assert elements[2][: len(expected)] == expected


def test_a_dependent_aborted_by_the_server_never_ran() -> None:
    # job_abt (req_register.c): an ordinary finished job, no Exit_status, never started
    aborted = {"job_state": "F", "substate": "92", "depend": "afterok:7.s@s"}
    state, code, why = outcome.map_record(aborted)
    assert (state, code) == (X, None)
    assert why == "cancelled: a dependency can never be met (afterok:7.s@s)"


@pytest.mark.parametrize("depend", ["", "afterok:7.s@s"])
def test_a_job_whose_host_went_down_failed(depend: str) -> None:
    # node_manager.c: a job on a MOM that went down ends F, substate 93, no Exit_status
    down = {"job_state": "F", "substate": "93", "depend": depend}
    assert outcome.map_record(down) == (F, None, "its execution host went down (PBS ended the job)")
    started = {"job_state": "F", "substate": "92", "stime": "Sun Dec  6 12:16:51 2026"}
    assert outcome.map_record({**started, "depend": depend})[:2] == (F, None)
    deleted = {**started, "substate": "91"}  # qdel'ed: cancelled, started or not
    assert outcome.map_record(deleted)[0] is X


@pytest.mark.parametrize(
    ("attrs", "state", "reason"),
    [
        ({"job_state": "Q"}, "pending", None),
        (
            {"job_state": "W"},
            "pending",
            "waiting for its execution time (qsub -a), or for its files to be staged in",
        ),
        ({"job_state": "T"}, "pending", "in transit to its queue"),
        ({"job_state": "H", "substate": "22"}, "pending", "held: waiting for a dependency"),
        (
            {"job_state": "H", "Hold_Types": "o"},
            "pending",
            "held: by an operator (Hold_Types o; qrls releases it)",
        ),
        (
            {"job_state": "H", "Hold_Types": "us"},
            "pending",
            "held: by its owner and the system (Hold_Types us; qrls releases it)",
        ),
        ({"job_state": "H"}, "pending", "held: Hold_Types not shown"),
        ({"job_state": "R"}, "running", None),
        ({"job_state": "E"}, "running", "exiting"),
        ({"job_state": "B"}, "running", None),
        ({"job_state": "S"}, "running", "suspended"),
        ({"job_state": "U"}, "running", "suspended while its workstation is busy"),
        # peer scheduling or a qmove to another server: this server says no more, ever
        (
            {"job_state": "M", "comment": 'Job has been moved to "workq@peer"'},
            "lost",
            "moved to another PBS server (workq@peer); jobfleet does not follow it",
        ),
        ({"job_state": "X", "substate": "92", "Exit_status": "0"}, "completed", None),
        ({"job_state": "F", "substate": "92", "Exit_status": "0"}, "completed", None),
    ],
)
def test_every_state_letter_maps(attrs: dict[str, str], state: str, reason: str | None) -> None:
    assert outcome.map_record(attrs)[0].value == state
    assert outcome.map_record(attrs)[2] == reason


def test_no_letter_reads_unknown_forever() -> None:
    assert all(s is not JobState.UNKNOWN for s in outcome.STATE_MAP.values())


def test_an_unknown_letter_warns_and_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    assert outcome.map_record({"job_state": "Z"})[0] is JobState.UNKNOWN
    assert "unknown PBS job state 'Z'" in caplog.text


def test_sizes_and_durations() -> None:
    assert parse.parse_size("4194400kb") == 4194400 * 1024
    assert parse.parse_size("8b") == 8 and parse.parse_size("1w") == 8
    assert parse.parse_size("nonsense") is None
    assert parse.parse_seconds("1:2:3:4") is None


# -- directives --------------------------------------------------------------------------------


def spec(array: str | None = None, **res: Any) -> JobSpec:
    return JobSpec(
        command=["true"],
        resources=Resources.of(**res),
        array=parse_array(array) if array else None,
    )


def test_one_chunk_per_node_with_tasks_cores_memory_and_gpus() -> None:
    out = pbs_directives(
        spec(nodes=2, tasks_per_node=4, cores=2, memory="16G", gpus=4, walltime="90m")
    )
    assert "-l select=2:ncpus=8:mpiprocs=4:mem=16384mb:ngpus=2" in out
    assert "-l place=scatter" in out and "-l walltime=01:30:00" in out
    one = pbs_directives(spec(tasks=3, cores=2, memory_per_core="1G", exclusive=True))
    assert "-l select=1:ncpus=6:mpiprocs=3:mem=6144mb" in one
    assert "-l place=pack:excl" in one


def test_uneven_tasks_become_two_chunk_kinds() -> None:
    out = pbs_directives(spec(nodes=3, tasks=7))
    assert "-l select=1:ncpus=3:mpiprocs=3+2:ncpus=2:mpiprocs=2" in out


def test_site_options() -> None:
    out = pbs_directives(
        spec(
            account="chem42",
            mail_to="a@example.org",
            mail_on=["begin", "fail"],
            priority=-5,
            licenses=["matlab:2"],
            constraint="haswell&ib",
            begin="2030-01-31T14:00",
        ),
        PbsSettings(account_option="P"),
        now=lambda: datetime(2030, 1, 1),
    )
    assert "-P chem42" in out and "-M a@example.org" in out and "-m ba" in out
    assert "-p -5" in out and "-l matlab=2" in out and "-a 203001311400.00" in out
    assert "-l select=1:ncpus=1:mpiprocs=1:haswell=True:ib=True" in out
    assert "-q R123" in pbs_directives(spec(reservation="R123"))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"qos": "high"}, "resources.qos"),
        ({"priority": 1024}, "resources.priority"),
        ({"queue": "workq", "reservation": "R1"}, "resources.reservation"),
        ({"constraint": "a|b"}, "resources.constraint"),
        ({"nodes": 2, "tasks_per_node": 1, "gpus": 3}, "resources.gpus"),
        ({"array": "5"}, "array"),
        ({"array": "1,2,5"}, "array"),
    ],
)
def test_what_pbs_cannot_express_is_refused_naming_the_field(
    values: dict[str, Any], field: str
) -> None:
    array = values.pop("array", None)
    with pytest.raises(SpecError) as info:
        pbs_directives(spec(array, **values))
    assert info.value.field == field


def test_arrays_and_their_throttle() -> None:
    assert "-J 1-10%2" in pbs_directives(spec("1-10%2"))
    assert "-J 0-8:2" in pbs_directives(spec("0-8:2"))
    assert "-J 3-5:2" in pbs_directives(spec("3,5"))
    with pytest.raises(SpecError) as info:
        pbs_directives(spec("1-10%2"), PbsSettings(max_run_subjobs=False))
    assert info.value.field == "array.max_concurrent"


# -- the backend: argv, names, polling -----------------------------------------------------------


def request(name: str = "jfab12cd34-17-train_model", **kwargs: Any) -> SubmitRequest:
    return SubmitRequest("17", name, kwargs.pop("spec", spec()), "/j/17/job.sh", "/j/17", **kwargs)


def test_submit_argv_names_dependencies_and_output() -> None:
    backend = PbsBackend(settings=PbsSettings(name_limit=15))
    argv = backend.submit_argv(
        request(
            dependencies=(
                (DepKind.AFTER_OK, (jid("1"), f"2[].{SERVER}")),
                (DepKind.AFTER_ANY, (jid("3"),)),
            )
        )
    )
    assert argv[:3] == ["qsub", "-N", "jfab12cd34-17-t"]
    assert argv[3:7] == ["-o", "/j/17/pbs.out", "-j", "oe"]
    assert argv[7:9] == ["-W", f"depend=afterok:{jid('1')}:2[].{SERVER},afterany:{jid('3')}"]
    arr = backend.submit_argv(request(spec=spec("1-4")))
    assert "/j/17/pbs.^array_index^.out" in arr


def test_names_keep_their_unique_head() -> None:
    assert cut_name("jfab12cd34-17.2-train", 16) == "jfab12cd34-17.2"
    assert cut_name("short", 15) == "short"
    with pytest.raises(SpecError, match="name_limit"):
        cut_name("jfab12cd34-123456-x", 15)


def test_cancel_and_signal_argv() -> None:
    backend = PbsBackend()
    assert backend.cancel_argv([f"5[].{SERVER}"], [2, 3], None) == [
        "qdel",
        f"5[2].{SERVER}",
        f"5[3].{SERVER}",
    ]
    assert backend.cancel_argv([jid("6")], None, "term") == ["qsig", "-s", "SIGTERM", jid("6")]
    assert backend.cancel_ok(result("", 35, text("qdel-finished.err")))
    assert backend.cancel_ok(result("", 153, text("qdel-unknown.err")))
    assert not backend.cancel_ok(result("", 1, "qdel: Unauthorized Request"))
    # OpenPBS's PBSE_NOHISTARRAYSUBJOB (pbs_messages.c): the element ended already
    finished = f"qdel: Request invalid for finished array subjob 5[2].{SERVER}\n"
    assert backend.cancel_ok(CommandResult(("qdel", f"5[2].{SERVER}"), 55, "", finished))


def test_a_signal_to_a_job_that_is_not_running_is_an_error() -> None:
    # PBSE_BADSTATE: qsig of a queued job sends nothing (req_signal.c) ...
    bad = f"qsig: Request invalid for state of job {jid('6')}\n"
    with pytest.raises(CommandError, match="only a running job can take a signal"):
        PbsBackend().cancel_ok(CommandResult(("qsig", "-s", "SIGTERM", jid("6")), 168, "", bad))
    # ... while qdel of a job already exiting ends it all the same (req_delete.c)
    exiting = bad.replace("qsig", "qdel")
    assert PbsBackend().cancel_ok(CommandResult(("qdel", jid("6")), 168, "", exiting))


def target(native: str, job_dir: Path, indices: tuple[int, ...] | None = None) -> PollTarget:
    return PollTarget("1", native, str(job_dir), 0.0, indices)


def runner_for(answers: dict[str, Callable[[tuple[str, ...]], CommandResult]]) -> ScriptedRunner:
    def respond(argv: tuple[str, ...]) -> CommandResult:
        key = "json" if "-F" in argv else "text"
        return answers[key](argv)

    return ScriptedRunner(respond)


def test_one_qstat_call_answers_for_running_and_finished_jobs(tmp_path: Path) -> None:
    runner = runner_for({"json": lambda a: CommandResult(a, 0, text("qstat-fxt.json"), "")})
    backend = PbsBackend(runner)
    statuses = backend.poll(
        [
            target(jid("1001"), tmp_path),
            target(jid("1009"), tmp_path),
            target(f"1010[].{SERVER}", tmp_path, (1, 2, 3, 4)),
        ]
    )
    assert runner.count("qstat") == 1 and len(runner.calls) == 1
    assert runner.calls[0][:7] == ("qstat", "-f", "-x", "-t", "-F", "json", jid("1001"))
    assert statuses[jid("1001")].state is C and statuses[jid("1001")].usage is not None
    assert statuses[jid("1009")].state is JobState.RUNNING
    assert statuses[f"1010[].{SERVER}"].elements[4] == (F, 1, None)


def test_unreadable_json_falls_back_to_text_and_stays_there(tmp_path: Path) -> None:
    runner = runner_for(
        {
            "json": lambda a: CommandResult(a, 0, text("qstat-fxt-invalid-escape.json"), ""),
            "text": lambda a: CommandResult(a, 0, text("qstat-fxt-invalid-escape.txt"), ""),
        }
    )
    backend = PbsBackend(runner)
    first = backend.poll([target(jid("1021"), tmp_path)])
    assert first[jid("1021")].state is JobState.PENDING
    assert ["-F" in call for call in runner.calls] == [True, False]
    backend.poll([target(jid("1021"), tmp_path)])
    assert len(runner.calls) == 3 and "-F" not in runner.calls[2]  # one call, the text form


def test_json_that_leaves_jobs_out_is_not_believed(tmp_path: Path) -> None:
    # openpbs issue #2672: master prints only the first of several jobs.
    only_first = (
        text("qstat-fxt.json").split(f'        "{jid("1002")}"')[0].rstrip(",\n") + "\n    }\n}\n"
    )
    runner = runner_for(
        {
            "json": lambda a: CommandResult(a, 0, only_first, ""),
            "text": lambda a: CommandResult(a, 0, text("qstat-fxt.txt"), ""),
        }
    )
    statuses = PbsBackend(runner).poll(
        [target(jid("1001"), tmp_path), target(jid("1002"), tmp_path)]
    )
    assert statuses[jid("1002")].state is F and len(runner.calls) == 2


def test_unknown_ids_fall_to_the_exit_code_file(tmp_path: Path) -> None:
    Path(exit_code_path(str(tmp_path), None)).write_text("0\n")
    unknown = f"qstat: Unknown Job Id {jid('999')}\n"
    runner = runner_for({"json": lambda a: CommandResult(a, 153, "", unknown)})
    statuses = PbsBackend(runner).poll([target(jid("999"), tmp_path)])
    assert statuses[jid("999")].state is C


def test_a_job_finished_without_its_history_is_not_lost(tmp_path: Path) -> None:
    told = text("qstat-finished-without-x.err")
    runner = runner_for({"json": lambda a: CommandResult(a, 35, "", told)})
    statuses = PbsBackend(runner).poll([target(jid("1001"), tmp_path)])
    assert statuses[jid("1001")].state is JobState.UNKNOWN
    assert "finished" in (statuses[jid("1001")].reason or "")


def test_a_failed_qstat_is_never_an_answer(tmp_path: Path) -> None:
    runner = runner_for(
        {"json": lambda a: CommandResult(a, 1, "", "qstat: cannot connect to server")}
    )
    with pytest.raises(CommandError):
        PbsBackend(runner).poll([target(jid("1001"), tmp_path)])


# -- detection and saved output -------------------------------------------------------------


def test_detect_tells_pbs_from_torque_and_grid_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pbs_probe, "which", lambda program: "/opt/pbs/bin/qstat")
    for output, expected in [
        (text("qstat-version.out"), "22.05.11"),
        ("Version: 6.1.3\nCommit: abc\n", None),
        ("", None),
    ]:
        runner = ScriptedRunner(
            lambda a, out=output: CommandResult(a, 0 if out else 2, out, "usage: qstat")
        )
        found = BACKEND.detect(runner) if BACKEND.detect else None
        assert (found.version if found else None) == expected
    monkeypatch.setattr(pbs_probe, "which", lambda program: None)
    assert pbs_probe.detect_pbs(ScriptedRunner(lambda a: CommandResult(a, 0, "", ""))) is None


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("qsub.out", "qsub"),
        ("qsub-site-message.out", "qsub"),
        ("qstat-fxt.json", "qstat-json"),
        ("qstat-fxt.txt", "qstat-text"),
        ("qstat-fxt-invalid-number.txt", "qstat-text"),
    ],
)
def test_saved_outputs_are_read_as_a_poll_reads_them(name: str, fmt: str) -> None:
    saved = formats.read_saved(pbs_probe.pbs_formats(), text(name), backend="pbs")
    assert saved.format.name == fmt and saved.jobs()


def test_invalid_saved_json_says_what_it_looks_like() -> None:
    with pytest.raises(formats.UnreadableOutputError, match="qstat-json"):
        formats.read_saved(pbs_probe.pbs_formats(), text("qstat-fxt-invalid-number.json"))
    torque = (FIXTURES.parents[2] / "torque" / "fixtures" / "6.1" / "qstat-f-t.txt").read_text()
    with pytest.raises(formats.UnreadableOutputError):
        formats.read_saved(pbs_probe.pbs_formats(), torque)


def test_a_name_the_limit_cannot_hold_is_a_submit_error_before_qsub_runs() -> None:
    runner = ScriptedRunner(lambda a: CommandResult(a, 0, "1.s\n", ""))
    backend = PbsBackend(runner, PbsSettings(name_limit=15))
    with pytest.raises(SubmitError, match="name_limit"):
        backend.submit(request(name="jfab12cd34-123456-x"))
    assert runner.calls == []


@pytest.mark.parametrize("limit", [15, 18])
@pytest.mark.parametrize("prefix", ["a-b-", "x-", "l-1-2-", "lab.-"])
def test_cut_names_never_cut_into_a_prefixed_head(prefix: str, limit: int) -> None:
    names = [
        scheduler_name("ab12cd34", job, "train model", attempt, prefix)
        for job in ("7", "17", "170")
        for attempt in (1, 2)
    ]
    cut: dict[str, str] = {}
    for name in names:
        head = scheduler_head(name)
        assert head is not None and head.startswith(prefix)
        if len(head) > limit:
            runner = ScriptedRunner(lambda a: CommandResult(a, 0, "1.s\n", ""))
            with pytest.raises(SubmitError, match="name_limit"):
                PbsBackend(runner, PbsSettings(name_limit=limit)).submit(request(name=name))
            assert runner.calls == []  # refused before qsub
            continue
        short = cut_name(name, limit)
        assert len(short) <= limit and short.startswith(head), (name, short)
        cut[short] = name
    assert len(cut) == len({n for n in names if len(scheduler_head(n) or "") <= limit})


def test_a_refused_submission_says_what_qsub_said() -> None:
    refused = text("qsub-J-single.err")
    runner = ScriptedRunner(lambda a: CommandResult(a, 2, "", refused))
    with pytest.raises(SubmitError, match="illegal -J value") as info:
        PbsBackend(runner).submit(request())
    assert not info.value.maybe_submitted and len(runner.calls) == 1


def test_a_full_queue_is_tried_again_after_looking_the_job_up(tmp_path: Path) -> None:
    answers = iter(
        [
            CommandResult(("qsub",), 1, "", text("qsub-max-queued.err")),
            CommandResult(("qselect",), 0, "", ""),  # not submitted: try again
            CommandResult(("qsub",), 0, text("qsub.out"), ""),
        ]
    )
    runner = ScriptedRunner(lambda a: next(answers))
    backend = PbsBackend(runner, PbsSettings(retry_backoff_s=0.01))
    assert backend.submit(request()) == jid("1001")
    assert [c[0] for c in runner.calls] == ["qsub", "qselect", "qsub"]


def test_a_qstat_without_json_is_read_in_the_text_form(tmp_path: Path) -> None:
    runner = runner_for(
        {
            "json": lambda a: CommandResult(a, 2, "", "qstat: invalid option -- 'F'\nusage: ..."),
            "text": lambda a: CommandResult(a, 0, text("qstat-fxt.txt"), ""),
        }
    )
    backend = PbsBackend(runner)
    assert backend.poll([target(jid("1002"), tmp_path)])[jid("1002")].state is F
    backend.poll([target(jid("1002"), tmp_path)])
    assert ["-F" in call for call in runner.calls] == [True, False, False]


def test_older_pbs_limits_are_read_from_its_own_numbers() -> None:
    # Before OpenPBS 22.05 a MOM's kill at a limit is only "killed by signal".
    base = {"job_state": "F", "substate": "92", "Exit_status": "265"}
    wall = {"Resource_List.walltime": "00:10:00", "resources_used.walltime": "00:10:00"}
    assert outcome.map_record({**base, **wall})[:2] == (T, 137)
    mem = {"Resource_List.mem": "1gb", "resources_used.mem": "1048600kb"}
    assert outcome.map_record({**base, **mem})[0] is M
    within = {"Resource_List.mem": "1gb", "resources_used.mem": "1000kb"}
    assert outcome.map_record({**base, **within})[:2] == (F, 137)
    assert outcome.map_record({**base, **wall, "substate": "91"})[0] is X  # qdel'ed


@pytest.mark.parametrize("status", ["143", "137", "138"])
def test_older_pbs_limits_read_with_the_scripts_own_status(status: str) -> None:
    # jobfleet's script outlives the MOM's SIGTERM and exits 128 + N with its command.
    base = {"job_state": "F", "substate": "92", "Exit_status": status}
    wall = {"Resource_List.walltime": "00:10:00", "resources_used.walltime": "00:10:01"}
    assert outcome.map_record({**base, **wall}) == (
        T,
        int(status),
        "walltime limit exceeded (00:10:00)",
    )
    mem = {"Resource_List.mem": "1gb", "resources_used.mem": "1048600kb"}
    assert outcome.map_record({**base, **mem})[:2] == (M, int(status))
    within = {"Resource_List.walltime": "00:10:00", "resources_used.walltime": "00:02:00"}
    assert outcome.map_record({**base, **within}) == (F, int(status), None)
    assert outcome.map_record({**base, **wall, "Exit_status": "1"})[0] is F  # no signal
    assert outcome.map_record({**base, **wall, "Exit_status": "128"})[0] is F


def test_doctests() -> None:
    import doctest

    for module in (parse, outcome, pbs_probe):
        assert doctest.testmod(module).failed == 0, module.__name__
