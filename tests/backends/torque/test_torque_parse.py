"""The Torque backend's parsers, directives and polling, driven by the fixtures of
``tests/backends/torque/fixtures/6.1`` (built to Torque 6.1.3's printing code: see SOURCES
there and docs/torque-notes.md). No cluster is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends import formats
from jobfleet.backends.base import PollTarget, SubmitRequest
from jobfleet.backends.command import PollContext
from jobfleet.backends.pbs import parse as pbs_parse
from jobfleet.backends.pbs import probe as pbs_probe
from jobfleet.backends.torque import BACKEND, TorqueSettings, parse, torque_directives
from jobfleet.backends.torque.backend import TorqueBackend
from jobfleet.backends.torque.probe import torque_formats
from jobfleet.errors import CommandError, SpecError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.spec import DepKind, JobSpec, Resources, parse_array
from jobfleet.states import JobState

FIXTURES = Path(__file__).parent / "fixtures" / "6.1"
FAKE_BIN = Path(__file__).parents[2] / "shims" / "pbsbin"
SERVER = "torque-head.cluster.example.org"
C, F, X = JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED
NOT_BY_WHOM = "cancelled (Torque does not record by whom)"
TERM_143 = (
    "cancelled (qdel, or a SIGTERM to the job's command; Torque does not record by whom: "
    "the server's exit_code_canceled_job tells, torque.exit_code_canceled_job)"
)


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def jid(number: str) -> str:
    return f"{number}.{SERVER}"


EXPECTED = {
    "2001": (C, 0, None),
    "2002": (F, 3, None),
    "2003": (JobState.TIMEOUT, None, "walltime limit exceeded (00:10:00)"),
    "2004": (
        JobState.OUT_OF_MEMORY,
        None,
        "memory limit exceeded (vmem): used 4199.2 MiB > 4096 MiB",
    ),
    "2005": (X, 143, NOT_BY_WHOM),
    "2006": (X, None, f"cancelled: a dependency can never be met (job {jid('2002')})"),
    "2007": (JobState.PENDING, None, "held: by its owner (Hold_Types u; qrls releases it)"),
    "2008": (JobState.RUNNING, None, None),
    "2009": (JobState.PENDING, None, None),
}
ARRAY = {1: (C, 0, None), 2: (JobState.RUNNING, None, None), 3: (JobState.PENDING, None, None)}


def test_the_xml_with_an_ampersand_and_a_raw_newline_is_mended() -> None:
    records = dict(parse.read_xml(text("qstat-x-t.xml")))
    env = records[jid("2009")]["Variable_List"]
    assert "QUERY=a=1&b=2" in env and "HTML=<b>bold</b>" in env and env.endswith("$*`\n}")
    assert len(records) == 13


def test_xml_that_cannot_be_mended_is_said_so() -> None:
    with pytest.raises(parse.UnreadableXml):
        parse.read_xml('<?xml version="1.0"?>\n<Data><Job><Job_Id>1.s</Job_Id><a>]]></a>')


def test_one_document_per_job_id_operand_is_read_too() -> None:
    job = "<Job><Job_Id>1.s</Job_Id><job_state>Q</job_state></Job>"
    one = f'<?xml version="1.0"?>\n<Data>{job}</Data>\n'
    assert [j for j, _ in parse.read_xml(one + one.replace("1.s", "2.s"))] == ["1.s", "2.s"]
    assert parse.read_xml(text("qstat-x-empty.xml")) == []


@pytest.mark.parametrize("form", ["qstat-x-t.xml", "qstat-f-t.txt"])
def test_every_job_of_the_fixture_maps(form: str) -> None:
    xml = form.endswith("xml")
    records = parse.read_xml(text(form)) if xml else pbs_parse.read_text(text(form))
    ids = [jid(n) for n in EXPECTED] + [f"2010[].{SERVER}"]
    ctx = PollContext({}, ids)
    times = parse.epoch_text if xml else pbs_parse.ctime_text
    seen = pbs_parse.records_seen(records, ctx, parse.map_record, times)
    for number, element in EXPECTED.items():
        assert seen[jid(number)] == {None: element}, number
    assert seen[f"2010[].{SERVER}"] == {**ARRAY, 4: (F, 1, None)}
    used = ctx.usage[jid("2001")][None]
    assert used.hosts == ("node01",) and used.wall_time_s == 90.0 and used.cpu_time_s == 100.0
    assert used.ended_at is not None and used.started_at is not None
    assert used.ended_at - used.started_at == 90.0
    assert jid("2008") not in ctx.usage  # running: nothing final to say


#: A job's limits and what it used: under them, at the walltime, over its memory.
WALL = {"Resource_List.walltime": "01:00:00", "resources_used.walltime": "00:20:00"}
AT_WALL = {**WALL, "resources_used.walltime": "01:00:01"}
OVER_MEM = {**WALL, "Resource_List.mem": "2gb", "resources_used.mem": "2097152kb"}
MEM_REASON = "memory limit exceeded (mem): used 2048 MiB >= 2048 MiB"
WALL_REASON = "walltime limit exceeded (01:00:00)"


NEVER = {"comment": "Job deleted as result of dependency on job 7.s"}


@pytest.mark.parametrize(
    ("status", "attrs", "expected"),
    [
        (None, {}, (X, None, f"{NOT_BY_WHOM} before it started, or aborted by the server")),
        (0, WALL, (C, 0, None)),
        (2, WALL, (F, 2, None)),
        # qdel's SIGTERM (or a SIGKILL kill_delay later) ended the job's shell
        (271, WALL, (X, 143, NOT_BY_WHOM)),
        (265, WALL, (X, 137, NOT_BY_WHOM)),
        # the same signals when the job had used its walltime: a scheduler (Moab) or a
        # MOM told to leave the walltime alone ended it, not a user
        (271, AT_WALL, (JobState.TIMEOUT, 143, "walltime limit exceeded (01:00:00)")),
        (265, AT_WALL, (JobState.TIMEOUT, 137, "walltime limit exceeded (01:00:00)")),
        (143, AT_WALL, (JobState.TIMEOUT, 143, "walltime limit exceeded (01:00:00)")),
        # a job-wide mem limit over several nodes: SIGTERM, no code (job_over_limit)
        (271, OVER_MEM, (JobState.OUT_OF_MEMORY, 143, MEM_REASON)),
        (143, OVER_MEM, (JobState.OUT_OF_MEMORY, 143, MEM_REASON)),
        # the command died of a SIGTERM while the shell lived: qdel, or anybody's
        (143, WALL, (X, 143, TERM_143)),
        (137, WALL, (F, 137, None)),  # the command killed (the OOM killer), not the shell
        (266, WALL, (F, 138, "killed by signal 10")),
        (-11, {"Resource_List.walltime": "01:00:00"}, (JobState.TIMEOUT, None, WALL_REASON)),
        (-10, {}, (JobState.OUT_OF_MEMORY, None, "memory limit exceeded (JOB_EXEC_OVERLIMIT_MEM)")),
        (
            -10,
            {"resources_used.mem": "1048576kb", "resources_used.vmem": "3145728kb"},
            (
                JobState.OUT_OF_MEMORY,
                None,
                "memory limit exceeded (JOB_EXEC_OVERLIMIT_MEM): used mem 1024 MiB, "
                "used vmem 3072 MiB",
            ),
        ),
        (-12, {}, (F, None, "CPU time limit exceeded (JOB_EXEC_OVERLIMIT_CPUT)")),
        (-3, {}, (F, None, "Torque could not start the job; no retry followed (JOB_EXEC_RETRY)")),
        (-13, {}, (F, None, "the job's cgroups could not be made (JOB_EXEC_RETRY_CGROUP)")),
        (-14, {}, (F, None, "the prologue failed; no retry followed (JOB_EXEC_RETRY_PROLOGUE)")),
        (-9, {}, (F, None, "the output files could not be opened (JOB_EXEC_STDOUTFAIL)")),
        (-42, {}, (F, None, "Torque could not run the job (exit_status -42)")),
        (271, NEVER, (X, None, "cancelled: a dependency can never be met (job 7.s)")),
    ],
)
def test_exit_status_never_lies(status: int | None, attrs: dict[str, str], expected: Any) -> None:
    assert parse.map_exit(status, attrs) == expected
    state, code, _ = expected
    if state in (X, JobState.TIMEOUT):  # docs/states.md: never a success's code
        assert code != 0


@pytest.mark.parametrize(
    ("canceled", "status", "expected"),
    [
        (0, 0, (C, 0, None)),
        (-20, -20, (X, None, f"{NOT_BY_WHOM}: exit_code_canceled_job -20")),
        (77, 77, (X, None, f"{NOT_BY_WHOM}: exit_code_canceled_job 77")),
        (77, 78, (F, 78, None)),
    ],
)
def test_the_servers_exit_code_for_deleted_jobs_reads_cancelled(
    canceled: int, status: int, expected: Any
) -> None:
    assert parse.map_exit(status, {}, canceled) == expected
    settings = TorqueSettings(exit_code_canceled_job=canceled)
    record = {"job_state": "C", "exit_status": str(status)}
    xml = f'<?xml version="1.0"?>\n<Data><Job><Job_Id>1.s</Job_Id>{_tags(record)}</Job></Data>'
    backend = TorqueBackend(ScriptedRunner(lambda a: CommandResult(a, 0, xml, "")), settings)
    got = backend.poll([PollTarget("j", "1.s", "/nonexistent", 0.0)])["1.s"]
    assert (got.state, got.exit_code, got.reason) == expected


def _tags(record: dict[str, str]) -> str:
    return "".join(f"<{k}>{v}</{k}>" for k, v in record.items())


@pytest.mark.parametrize("status", ["-3", "-13", "-14"])
def test_a_completed_job_never_stays_pending(status: str) -> None:
    state, code, why = parse.map_record({"job_state": "C", "exit_status": status})
    assert (state, code) == (F, None) and why is not None and "JOB_EXEC_RETRY" in why


@pytest.mark.parametrize(
    ("attrs", "state", "reason"),
    [
        ({"job_state": "Q"}, "pending", None),
        ({"job_state": "W"}, "pending", "waiting for its execution time (qsub -a)"),
        ({"job_state": "T"}, "pending", "in transit to another queue or server"),
        # req_register.c: a job waiting on a dependency gets the system hold
        (
            {"job_state": "H", "Hold_Types": "s", "depend": "afterok:1.s"},
            "pending",
            "held: waiting for a dependency",
        ),
        (
            {"job_state": "H", "Hold_Types": "s"},
            "pending",
            "held: by the system (Hold_Types s; qrls releases it)",
        ),
        (
            {"job_state": "H", "Hold_Types": "uo"},
            "pending",
            "held: by its owner and an operator (Hold_Types uo; qrls releases it)",
        ),
        ({"job_state": "R"}, "running", None),
        ({"job_state": "E"}, "running", "exiting"),
        ({"job_state": "S"}, "running", "suspended"),
        ({"job_state": "C", "exit_status": "0"}, "completed", None),
    ],
)
def test_every_state_letter_maps(attrs: dict[str, str], state: str, reason: str | None) -> None:
    assert parse.map_record(attrs)[0].value == state
    assert parse.map_record(attrs)[2] == reason


def test_an_unknown_letter_warns_and_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    assert parse.map_record({"job_state": "?"})[0] is JobState.UNKNOWN
    assert "unknown Torque job state" in caplog.text
    assert JobState.UNKNOWN not in parse.STATE_MAP.values()


# -- directives ---------------------------------------------------------------------------------


def spec(array: str | None = None, **res: Any) -> JobSpec:
    return JobSpec(
        command=["true"], resources=Resources.of(**res), array=parse_array(array) if array else None
    )


def test_nodes_ppn_memory_and_arrays() -> None:
    out = torque_directives(spec(nodes=2, tasks_per_node=4, cores=2, memory="4G", gpus_per_node=1))
    assert "-l nodes=2:ppn=8:gpus=1" in out and "-l mem=8192mb" in out  # the whole job's
    assert "-l nodes=1:ppn=3+2:ppn=2" in torque_directives(spec(nodes=3, tasks=7))
    assert "-l mem=4096mb" in torque_directives(spec(tasks=4, memory_per_core="1G"))
    assert "-n" in torque_directives(spec(exclusive=True, constraint="ib"))
    assert "-l nodes=1:ppn=1:ib" in torque_directives(spec(constraint="ib"))
    assert "-t 1-3,7,9%2" in torque_directives(spec("1-3,7,9%2"))
    assert "-t 0,4,8" in torque_directives(spec("0-8:4"))
    assert "-t 5" in torque_directives(spec("5"))  # single task arrays are allowed


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"qos": "high"}, "resources.qos"),
        ({"reservation": "r1"}, "resources.reservation"),
        ({"licenses": ["matlab"]}, "resources.licenses"),
        ({"priority": 1024}, "resources.priority"),
        ({"queue": "batch queue"}, "resources.queue"),
    ],
)
def test_what_torque_cannot_express_is_refused(values: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        torque_directives(spec(**values))
    assert info.value.field == field


def test_gpus_need_a_gpu_server() -> None:
    with pytest.raises(SpecError, match=r"torque\.gpus"):
        torque_directives(spec(gpus=1), TorqueSettings(gpus=False))


# -- the backend ---------------------------------------------------------------------------------


def test_a_long_stepped_array_goes_on_qsubs_command_line(tmp_path: Path) -> None:
    long = spec("100000-111000:2")  # 5501 indices listed one by one: about 38 KB
    directives = torque_directives(long)
    assert not any(d.startswith("-t") for d in directives)  # no #PBS line that long
    script = tmp_path / "job.sh"
    lines = ["#!/bin/bash", *(f"#PBS {d}" for d in directives), "true"]
    script.write_text("\n".join(lines) + "\n")
    request = SubmitRequest("17", "jfab12cd34-17-x", long, str(script), str(tmp_path))
    env = {
        **os.environ,
        "FAKEPBS_STATE": str(tmp_path / "state.json"),
        "FAKEPBS_PYTHON": sys.executable,
        "FAKEPBS_DIALECT": "torque",
        "PATH": f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    argv = TorqueBackend().submit_argv(request)
    assert subprocess.run(argv, env=env, capture_output=True, check=True).stdout == b"1[].fakepbs\n"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["jobs"]["1[].fakepbs"]["indices"] == list(range(100000, 111001, 2))
    short = spec("1-9:2")
    assert "-t 1,3,5,7,9" in torque_directives(short)
    assert "-t" not in TorqueBackend().submit_argv(SubmitRequest("1", "n", short, "/j.sh", "/j"))
    with pytest.raises(SpecError, match="no array steps"):
        TorqueBackend().check_request(spec("1-100000:2"))  # 50000 indices: over 120 KB


def test_submit_argv_cuts_names_and_names_array_dependencies() -> None:
    backend = TorqueBackend(settings=TorqueSettings(name_limit=15))
    request = SubmitRequest(
        "17",
        "jfab12cd34-17-train",
        spec(),
        "/j/job.sh",
        "/j",
        dependencies=((DepKind.AFTER_OK, (jid("1"), f"2[].{SERVER}")),),
    )
    argv = backend.submit_argv(request)
    assert argv[:3] == ["qsub", "-N", "jfab12cd34-17-t"]
    assert argv[-3:-1] == ["-W", f"depend=afterok:{jid('1')},afterokarray:2[].{SERVER}"]
    assert backend.find_by_name_argv("jfab12cd34-17-train") == ["qselect", "-N", "jfab12cd34-17-t"]


def target(native: str, tmp: Path, indices: tuple[int, ...] | None = None) -> PollTarget:
    return PollTarget("1", native, str(tmp), 0.0, indices)


def test_one_call_for_every_job_and_text_when_the_xml_is_beyond_mending(tmp_path: Path) -> None:
    broken = text("qstat-x-t.xml").replace("</Data>", "]]></Data>")

    def respond(argv: tuple[str, ...]) -> CommandResult:
        out = broken if "-x" in argv else text("qstat-f-t.txt")
        return CommandResult(argv, 0, out, "")

    runner = ScriptedRunner(respond)
    backend = TorqueBackend(runner)
    targets = [target(jid("2001"), tmp_path), target(f"2010[].{SERVER}", tmp_path, (1, 2, 3, 4))]
    statuses = backend.poll(targets)
    assert runner.calls == [("qstat", "-x", "-t"), ("qstat", "-f", "-t")]
    assert statuses[jid("2001")].state is C and statuses[f"2010[].{SERVER}"].elements[4][0] is F
    backend.poll(targets)
    assert runner.calls[-1] == ("qstat", "-f", "-t") and len(runner.calls) == 3


def test_a_failed_qstat_is_never_an_answer(tmp_path: Path) -> None:
    runner = ScriptedRunner(lambda a: CommandResult(a, 1, "", "Cannot connect to default server"))
    with pytest.raises(CommandError):
        TorqueBackend(runner).poll([target(jid("2001"), tmp_path)])


def test_detect_and_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pbs_probe, "which", lambda program: "/usr/bin/qstat")
    runner = ScriptedRunner(lambda a: CommandResult(a, 0, text("qstat-version.out"), ""))
    found = BACKEND.detect(runner) if BACKEND.detect else None
    assert found is not None and found.backend == "torque" and found.version == "6.1.3"
    fmts = torque_formats()
    assert formats.read_saved(fmts, text("qstat-x-t.xml")).format.name == "qstat-xml"
    assert formats.read_saved(fmts, text("qstat-f-t.txt")).format.name == "qstat-text"
    assert formats.read_saved(fmts, text("qsub-array.out")).format.name == "qsub"
    pbs_text = (FIXTURES.parents[2] / "pbs" / "fixtures" / "22.05" / "qstat-fxt.txt").read_text()
    with pytest.raises(formats.UnreadableOutputError):
        formats.read_saved(fmts, pbs_text)


def test_torque_2_5s_one_limit_code_is_read_by_the_time_used() -> None:
    # Torque 2.5: -10 (JOB_EXEC_OVERLIMIT) for any limit; 4.0 and later: -10 memory only.
    record = {"job_state": "C", "exit_status": "-10", "Resource_List.walltime": "00:10:00"}
    ran_out = {**record, "resources_used.walltime": "00:10:01"}
    assert parse.map_record(ran_out)[0] is JobState.TIMEOUT
    assert parse.map_record({**record, "resources_used.walltime": "00:00:09"})[0] is (
        JobState.OUT_OF_MEMORY
    )
