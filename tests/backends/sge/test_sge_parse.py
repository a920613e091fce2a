"""The Grid Engine backend's parsers and CommandBackend's polling rule, driven by recorded output.

No cluster is needed. ``tests/backends/sge/fixtures/8.1.9/NAME.out`` is the stdout of a real Son of
Grid Engine 8.1.9 command and ``NAME.meta.json`` its argv, return code and stderr (see the
README there and docs/sge-notes.md). :func:`load` turns one into a
:class:`~jobfleet.runner.CommandResult`; :func:`fake_sge` answers a backend's commands from
such recordings through a :class:`~jobfleet.runner.ScriptedRunner`: the qstat job list only
when the backend runs the very command recorded, ``qstat -j IDS`` and ``qacct -j WHAT`` cut
down to what was asked, as Grid Engine itself prints them (the cutting is checked against
the recordings of those commands in the first tests below).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends.base import NativeStatus, PollTarget, SubmitRequest
from jobfleet.backends.command import PollContext, Seen
from jobfleet.backends.sge import SGE, SgeSettings, sge_directives
from jobfleet.backends.sge import parse as sge_parse
from jobfleet.backends.sge import usage as sge_usage
from jobfleet.backends.sge.backend import SgeBackend
from jobfleet.backends.sge.parse import map_failed, map_state
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.engine.submission import check_capabilities
from jobfleet.errors import BackendError, CommandError, SpecError, SubmitError
from jobfleet.jobdir import exit_code_path, never_met_path
from jobfleet.naming import scheduler_name
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.script import render_script
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.spec import DepKind, JobSpec, Resources, parse_array
from jobfleet.states import JobState
from jobfleet.usage import Usage

FIXTURES = Path(__file__).parent / "fixtures" / "8.1.9"

P, R = JobState.PENDING, JobState.RUNNING

# -- loading recordings --------------------------------------------------------------------


def load(name: str) -> CommandResult:
    """The recorded command ``NAME`` as the runner would have returned it."""
    meta = json.loads((FIXTURES / f"{name}.meta.json").read_text(encoding="utf-8"))
    stdout = (FIXTURES / f"{name}.out").read_text(encoding="utf-8")
    return CommandResult(
        tuple(meta["argv"]), meta["returncode"], stdout, meta["stderr"], meta["elapsed_s"]
    )


def _job_ids() -> dict[str, str]:
    text = (FIXTURES / "jobs.env").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


#: The capture's job ids by key (``ID["exit3"] == "9"``); see the fixture README.
ID = _job_ids()


def recorded_name(key: str) -> str:
    """The name a job of the capture was submitted with (``exit_100`` -> ``jf-exit100``)."""
    return "jf-" + key.replace("_", "-")


def blocks(text: str) -> list[str]:
    """qacct records or ``qstat -j`` jobs: each from its ``=====`` line to the next one.

    The totals table that ``qacct -j`` without an argument prints last is dropped.
    """
    text = text.split("Total System Usage\n", 1)[0]
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("====="):
            out.append(line)
        elif out:
            out[-1] += line
    return out


def field(block: str, key: str) -> str:
    """The first word after ``key`` at the start of a line of ``block``."""
    match = re.search(rf"^{key}:?\s+(\S+)", block, re.MULTILINE)
    assert match is not None, f"no {key} in {block[:200]!r}"
    return match[1]


# -- answering as Grid Engine would -------------------------------------------------------


def replay_listing(recording: CommandResult, argv: Sequence[str]) -> CommandResult:
    """A qstat job list: only for the command that was recorded."""
    argv = tuple(argv)
    if recording.ok:
        assert argv == recording.argv, f"backend runs {argv}, the recording was {recording.argv}"
    return replace(recording, argv=argv)


def replay_qstat_j(recording: CommandResult, argv: Sequence[str]) -> CommandResult:
    """``qstat -j ID,ID`` from a recording holding (at least) those jobs."""
    argv = tuple(argv)
    assert len(argv) == 3 and argv[:2] == ("qstat", "-j"), f"backend runs {argv}"
    if not recording.ok:
        return replace(recording, argv=argv)
    jobs = {field(b, "job_number"): b for b in blocks(recording.stdout)}
    asked = argv[2].split(",")
    unknown = [n for n in asked if n not in jobs]
    assert not unknown, f"the recording has no qstat -j of {unknown}"
    return CommandResult(argv, 0, "".join(jobs[n] for n in asked), "")


def replay_qacct(recording: CommandResult, argv: Sequence[str]) -> CommandResult:
    """``qacct -j WHAT`` from ``recording``: the same command, or ``qacct -j`` (every record).

    As qacct(1) does: a numeric WHAT is a job id, anything else a name pattern (fnmatch);
    nothing found is rc 1 and ``error: job id N not found`` (recorded, [qacct-unknown]) or
    ``error: job name X not found`` (MSG_HISTORY_JOBNAMEXNOTFOUND_S in Grid Engine's
    clients/qacct, same ERROR() path; not recorded).
    """
    argv = tuple(argv)
    assert len(argv) == 3 and argv[:2] == ("qacct", "-j"), f"backend runs {argv}"
    if not recording.ok or recording.argv == argv:
        return replace(recording, argv=argv)
    assert recording.argv == ("qacct", "-j"), f"cannot answer {argv} from {recording.argv}"
    what = argv[2]

    def wanted(record: str) -> bool:
        if what.isdigit():
            return int(field(record, "jobnumber")) == int(what)
        return fnmatch.fnmatchcase(field(record, "jobname"), what)

    kept = [r for r in blocks(recording.stdout) if wanted(r)]
    if kept:
        return CommandResult(argv, 0, "".join(kept), "")
    kind = "job id" if what.isdigit() else "job name"
    return CommandResult(argv, 1, "", f"error: {kind} {what} not found\n")


def replay_as_is(recording: CommandResult, argv: Sequence[str]) -> CommandResult:
    return replace(recording, argv=tuple(argv))


Answer = CommandResult | CommandError
_REPLAY: dict[str, Callable[[CommandResult, Sequence[str]], CommandResult]] = {
    "qstat": replay_listing,
    "qstat_j": replay_qstat_j,
    "qacct": replay_qacct,
}


def kind(argv: Sequence[str]) -> str:
    """``qstat_j`` for ``qstat -j``, else the program's name."""
    return "qstat_j" if argv[0] == "qstat" and "-j" in argv else argv[0]


def kinds(runner: ScriptedRunner) -> list[str]:
    return [kind(argv) for argv in runner.calls]


def fake_sge(**answers: Answer | list[Answer]) -> ScriptedRunner:
    """A runner answering each kind of command (qstat, qstat_j, qacct, qsub, qdel) from
    recordings. A list is answered in order, its last answer repeating; a CommandError is
    raised; any other command fails the test."""
    queues = {k: list(a) if isinstance(a, list) else [a] for k, a in answers.items()}

    def respond(argv: tuple[str, ...]) -> CommandResult | CommandError:
        queue = queues.get(kind(argv))
        assert queue, f"unexpected command {argv}"
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, CommandError):
            return answer
        return _REPLAY.get(kind(argv), replay_as_is)(answer, argv)

    return ScriptedRunner(respond)


def as_queue(name: str) -> CommandResult:
    """A recorded ``qstat -xml`` answer, as the answer to our ``qstat -xml -g d``
    (the same XML when no array task is listed)."""
    recorded = load(name)
    return CommandResult(
        ("qstat", "-xml", "-g", "d"), recorded.returncode, recorded.stdout, recorded.stderr
    )


def backend(runner: ScriptedRunner | None = None, **settings: Any) -> SgeBackend:
    """A backend that runs nothing real, with no pause between submit retries and 3 retries."""
    fast = SgeSettings(retry_backoff_s=0.0, submit_retries=3)
    return SgeBackend(runner or fake_sge(), replace(fast, **settings))


def target(
    native_id: str,
    name: str,
    job_dir: Path | str = "/nonexistent",
    indices: Iterable[int] | None = None,
) -> PollTarget:
    idx = tuple(indices) if indices is not None else None
    return PollTarget(f"j{native_id}", native_id, str(job_dir), 1.795e9, idx, name)


def recorded(
    key: str, job_dir: Path | str = "/nonexistent", indices: Iterable[int] | None = None
) -> PollTarget:
    """A poll target for the capture's job ``key``, under the name it had there."""
    return target(ID[key], recorded_name(key), job_dir, indices)


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


# -- the replay itself, against what Grid Engine printed ----------------------------------


@pytest.mark.parametrize(
    ("what", "name"),
    [
        ("jf-*", "qacct-name-pattern"),
        ("jf-e*", "qacct-name-pattern-e"),
        ("jf-exit3", "qacct-name-exact"),
        (ID["exit3"], "qacct-exit3"),
        (ID["arr"], "qacct-arr"),
        (ID["hrt"], "qacct-hrt"),
        (ID["exit100"], "qacct-exit100-deleted"),
    ],
)
def test_qacct_replay_is_what_qacct_printed(what: str, name: str) -> None:
    answer = replay_qacct(load("qacct-all"), ("qacct", "-j", what))
    assert answer.ok
    assert answer.stdout == load(name).stdout


def test_qacct_replay_unknown_id_is_the_recorded_error() -> None:
    answer = replay_qacct(load("qacct-all"), ("qacct", "-j", "99999"))
    unknown = load("qacct-unknown")
    assert (answer.returncode, answer.stdout, answer.stderr) == (1, "", unknown.stderr)


def test_qstat_j_replay_is_what_qstat_printed() -> None:
    answer = replay_qstat_j(load("qstat-j-two-ids"), ("qstat", "-j", ID["eqw_outdir"]))
    assert answer.stdout == load("qstat-j-eqw-outdir").stdout


def test_job_names_are_jobs_env_keys() -> None:
    names = {field(r, "jobnumber"): field(r, "jobname") for r in blocks(load("qacct-all").stdout)}
    checked = [key for key, native in ID.items() if native in names]
    assert len(checked) >= 15
    for key in checked:
        assert names[ID[key]] == recorded_name(key)


# -- states ----------------------------------------------------------------------------------

#: What each state-letter combination means for jobfleet, written out from qstat(1),
#: sge_status(5) and docs/sge-notes.md section 3, independently of STATE_LETTERS. None:
#: finishing or finished, so accounting must say how it ended.
EXPECTED_STATE: dict[str, JobState | None] = {
    "qw": P,
    "hqw": P,  # -h or a -hold_jid dependency
    "hRwq": P,
    "Eqw": P,  # error: stays until qmod -cj or qdel
    "Ehqw": P,
    "EhRqw": P,
    "r": R,
    "t": R,  # being started on its host
    "Rr": R,  # restarted, running
    "Rt": R,
    "hr": R,
    "s": R,  # suspended: still holds its slots
    "ts": R,
    "Rs": R,
    "S": R,
    "tS": R,
    "T": R,
    "tT": R,
    "dr": JobState.RUNNING,  # qdel of a running job: accounting says how it ended
    "dt": JobState.RUNNING,
    "dRr": JobState.RUNNING,
    "ds": JobState.RUNNING,
    "dS": JobState.RUNNING,
    "dT": JobState.RUNNING,
    "z": None,  # zombie (qstat -s z): finished
}


def recorded_states() -> set[str]:
    """Every <state> in the recorded qstat -xml job lists."""
    states: set[str] = set()
    for meta in sorted(FIXTURES.glob("*.meta.json")):
        name = meta.name.removesuffix(".meta.json")
        result = load(name)
        if result.argv[:2] != ("qstat", "-xml") or "-j" in result.argv or not result.ok:
            continue
        for job in ET.fromstring(result.stdout).iter("job_list"):
            states.add(job.findtext("state") or "")
    return states


def test_every_recorded_state_has_an_expectation() -> None:
    seen = recorded_states()
    assert {"qw", "hqw", "Eqw", "r", "t", "dr", "z"} <= seen
    assert seen <= set(EXPECTED_STATE)


@pytest.mark.parametrize("letters", sorted(EXPECTED_STATE))
def test_map_state(letters: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert map_state(letters) is EXPECTED_STATE[letters]
    assert caplog.records == []


@pytest.mark.parametrize("letters", ["X", "", "Q", "K"])
def test_map_state_unknown_warns_and_never_raises(
    letters: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert map_state(letters) is JobState.UNKNOWN
    assert warnings_about(caplog, "unknown Grid Engine job state")


#: qacct categories as recorded (Grid Engine writes h_rt in seconds).
HRT_10 = "-l h_rt=10"
HRT_VMEM = "-l h_rt=300,h_vmem=100M"
VMEM_ONLY = "-l h_vmem=100M,mem_free=15G -pe smp 2"
VMEM = "memory limit exceeded (h_vmem)"


@pytest.mark.parametrize(
    ("failed", "exit_status", "category", "wallclock", "expected"),
    [
        (0, 0, "NONE", 0.0, (JobState.COMPLETED, 0, None)),
        (0, 3, "NONE", 0.0, (JobState.FAILED, 3, None)),
        (0, 137, "NONE", 4.0, (JobState.FAILED, 137, None)),
        (0, 196, "NONE", 0.0, (JobState.FAILED, 196, None)),
        (0, None, "NONE", 0.0, (JobState.UNKNOWN, None, "no exit status in accounting")),
        # [qacct-hrt]: h_rt=10, killed after 11 s
        # (a SIGKILL of the whole job: 137 is what its command would show a shell too)
        (37, 137, HRT_10, 11.0, (JobState.TIMEOUT, 137, "walltime limit exceeded (00:00:10)")),
        (37, 137, HRT_10, None, (JobState.TIMEOUT, 137, "walltime limit exceeded (00:00:10)")),
        (37, 137, HRT_VMEM, 300.0, (JobState.TIMEOUT, 137, "walltime limit exceeded (00:05:00)")),
        # killed long before its h_rt: the memory limit did it
        (37, 137, HRT_VMEM, 5.0, (JobState.OUT_OF_MEMORY, 137, "memory limit exceeded (h_vmem)")),
        (37, 137, "-l h_rt=0:5:0", 5.0, (JobState.OUT_OF_MEMORY, 137, VMEM)),
        (37, 137, VMEM_ONLY, 5.0, (JobState.OUT_OF_MEMORY, 137, VMEM)),
        (37, 137, "NONE", 11.0, (JobState.TIMEOUT, 137, "walltime limit exceeded")),
        (25, 0, "NONE", 0.0, (JobState.PENDING, None, "rescheduled")),
        # [qacct-exit100-deleted]: exit 100 -> Eqw, then qdel
        (30, 100, "NONE", 0.0, (JobState.FAILED, 100, "Grid Engine failure 30")),
    ],
)
def test_map_failed(
    failed: int,
    exit_status: int | None,
    category: str,
    wallclock: float | None,
    expected: tuple[JobState, int | None, str | None],
) -> None:
    assert map_failed(failed, exit_status, category, wallclock) == expected


def test_map_failed_100_is_cancelled() -> None:
    # qdel: execd's SIGKILL (137), which a SIGKILL to the job script itself resembles;
    # qacct does not record who deleted it (docs/sge-notes.md section 4, docs/states.md)
    state, code, reason = map_failed(100, 137, "NONE", 15.0)
    assert (state, code) == (JobState.CANCELLED, 137)
    assert (
        reason
        == "cancelled (qdel, or a SIGKILL to the job script; Grid Engine does not record by whom)"
    )


@pytest.mark.parametrize("failed", [26, 28])
def test_map_failed_job_that_never_started(failed: int) -> None:
    state, _, reason = map_failed(failed, 0, "NONE", 0.0)
    assert state is JobState.FAILED
    assert reason == f"Grid Engine failure {failed}"


@pytest.mark.parametrize("failed", [26, 28])
def test_map_failed_never_started_has_no_exit_code(failed: int) -> None:
    assert map_failed(failed, 0, "NONE", 0.0)[1] is None


# -- directives, the script, and what a backend accepts -----------------------------------


def full_spec(**changes: Any) -> JobSpec:
    """A spec asking for every resource Grid Engine gets a directive for."""
    resources = Resources(
        cores=4,
        memory_bytes=10**9,  # 953.67 MiB for the job, 238.4 MiB per slot
        walltime_s=86400 + 2 * 3600 + 3 * 60 + 4,
        gpus=4,  # one per slot: Grid Engine multiplies a consumable YES by the slots
        queue="gpu.q",
        account="proj",
    )
    return JobSpec(["true"], resources=replace(resources, **changes), array=parse_array("1-9:2%3"))


def test_sge_directives_every_resource_in_order() -> None:
    assert sge_directives(full_spec()) == [
        "-S /bin/bash",
        "-V",
        "-pe smp 4",
        # per slot: 10**9 / 4 rounded up, 4 GPUs / 4; s_rt a minute before h_rt
        "-l h_rt=26:03:04,h_vmem=239M,gpu=1,s_rt=26:02:04",
        "-q gpu.q",
        "-P proj",
        "-t 1-9:2",
        "-tc 3",
    ]


def test_sge_directives_mem_free_is_for_the_whole_job() -> None:
    settings = SgeSettings(memory_resource="mem_free", parallel_environment="mpi")
    directives = sge_directives(full_spec(), settings)
    assert "-pe mpi 4" in directives
    assert "-l h_rt=26:03:04,mem_free=954M,gpu=1,s_rt=26:02:04" in directives


def test_sge_directives_gpu_resource_name() -> None:
    spec = JobSpec(["true"], resources=Resources(gpus=1))
    assert sge_directives(spec, SgeSettings(gpu_resource="gpus")) == [
        "-S /bin/bash",
        "-V",
        "-l gpus=1",
    ]


def test_sge_directives_one_core_no_pe_whole_memory_per_slot() -> None:
    spec = JobSpec(["true"], resources=Resources(cores=1, memory_bytes=10**9))
    assert sge_directives(spec) == ["-S /bin/bash", "-V", "-l h_vmem=954M"]


@pytest.mark.parametrize(
    ("walltime_s", "requests"),
    [
        (1, "h_rt=0:00:01"),
        (59, "h_rt=0:00:59,s_rt=0:00:54"),  # a tenth of the walltime, whole seconds
        (3600, "h_rt=1:00:00,s_rt=0:59:00"),  # sge.walltime_grace, 60 s
        (90061, "h_rt=25:01:01,s_rt=25:00:01"),
    ],
)
def test_sge_directives_walltime(walltime_s: int, requests: str) -> None:
    spec = JobSpec(["true"], resources=Resources(walltime_s=walltime_s))
    assert f"-l {requests}" in sge_directives(spec)


def test_sge_directives_minimal_spec() -> None:
    assert sge_directives(JobSpec(["true"])) == ["-S /bin/bash", "-V"]


def test_sge_directives_single_index_array_without_limit() -> None:
    directives = sge_directives(JobSpec(["true"], array=parse_array("5")))
    assert directives[-1] == "-t 5-5:1"
    assert not any(d.startswith("-tc") for d in directives)


def test_render_script_sge_directives_before_the_first_command() -> None:
    spec = full_spec(directives_skip=("-V",), extra_directives=("-l scratch=10G",))
    lines = render_script(spec, SGE).splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [line for line in lines if line.startswith("#$")]
    assert directives == [
        "#$ -S /bin/bash",
        "#$ -pe smp 4",
        "#$ -l h_rt=26:03:04,h_vmem=239M,gpu=1,s_rt=26:02:04",
        "#$ -q gpu.q",
        "#$ -P proj",
        "#$ -t 1-9:2",
        "#$ -tc 3",
        "#$ -l scratch=10G",
    ]
    first_command = next(i for i, line in enumerate(lines) if line.startswith("export "))
    assert max(lines.index(d) for d in directives) < first_command
    # the array index comes from Grid Engine's variable
    assert 'export JOBFLEET_ARRAY_INDEX="${SGE_TASK_ID-}"' in lines


def test_configured_sge_settings_reach_the_job_script(tmp_path: Path) -> None:
    overrides = {
        "backend": "sge",
        "sge.parallel_environment": "mpi",
        "sge.memory_resource": "mem_free",
        "sge.gpu_resource": "gpus",
        "sge.gpu_consumable": "JOB",
    }
    config = load_config(env={"HOME": str(tmp_path)}, cwd=tmp_path, overrides=overrides)
    spec = JobSpec(["true"], resources=Resources(cores=4, memory_bytes=10**9, gpus=2))
    with Fleet(config, home=tmp_path / "home", runner=fake_sge()) as fleet:
        be = fleet.backend()
        assert isinstance(be, SgeBackend)
        assert be.sge_settings.parallel_environment == "mpi"  # the backend has them...
        lines = fleet.dry_run(spec).script.splitlines()
    assert "#$ -pe mpi 4" in lines  # ... the script does not
    assert "#$ -l mem_free=954M,gpus=2" in lines


def test_check_request_accepts_one_range() -> None:
    be = backend()
    be.check_request(JobSpec(["true"]))
    be.check_request(JobSpec(["true"], array=parse_array("1-9:2%3")))
    be.check_request(JobSpec(["true"], array=parse_array("1-100")))


@pytest.mark.parametrize("array", ["1-3,7,9", "1,3", "1-5,10-20%2"])
def test_several_ranges_are_refused_by_the_capabilities(array: str) -> None:
    be = backend()
    spec = JobSpec(["true"], array=parse_array(array))
    be.check_request(spec)  # the backend leaves it to its capabilities
    with pytest.raises(SpecError) as info:
        check_capabilities(spec, be.name, be.capabilities)
    assert info.value.field == "array"
    assert "one range" in info.value.message


def test_check_request_refuses_several_nodes() -> None:
    with pytest.raises(SpecError) as info:
        backend().check_request(JobSpec(["true"], resources=Resources(nodes=2)))
    assert info.value.field == "resources.nodes"


def test_check_request_refuses_task_id_zero() -> None:
    with pytest.raises(SpecError):
        backend().check_request(JobSpec(["true"], array=parse_array("0-9")))


# -- the submit command ---------------------------------------------------------------------


def request(
    spec: JobSpec | None = None,
    dependencies: tuple[tuple[DepKind, tuple[str, ...]], ...] = (),
    name: str = "jfabc123-7-train",
) -> SubmitRequest:
    return SubmitRequest(
        job_id="7",
        name=name,
        spec=spec or JobSpec(["true"]),
        script_path="/home/u/jf/jobs/7/job.sh",
        job_dir="/home/u/jf/jobs/7",
        dependencies=dependencies,
    )


def test_submit_argv_every_dependency_kind_in_one_hold_and_extra_args() -> None:
    spec = JobSpec(["true"], resources=Resources(extra_args=("-notify", "-l", "scratch=1G")))
    deps = (
        (DepKind.AFTER_OK, ("1", "2")),
        (DepKind.AFTER_NOT_OK, ("3",)),
        (DepKind.AFTER_ANY, ("2", "5")),
    )
    assert backend().submit_argv(request(spec, deps)) == [
        "qsub",
        "-terse",
        "-w",
        "e",
        "-N",
        "jfabc123-7-train",
        "-o",
        "/home/u/jf/jobs/7/sge.$TASK_ID.out",
        "-j",
        "y",
        "-hold_jid",
        "1,2,3,5",
        "-notify",
        "-l",
        "scratch=1G",
        "/home/u/jf/jobs/7/job.sh",
    ]


def test_submit_argv_hold_as_recorded() -> None:
    # the recorded -hold_jid 12,9 was accepted with both predecessors [qsub-dep2]
    argv = backend().submit_argv(request(dependencies=((DepKind.AFTER_ANY, ("12", "9")),)))
    recorded_argv = load("qsub-dep2").argv
    k = recorded_argv.index("-hold_jid")
    i = argv.index("-hold_jid")
    assert argv[i : i + 2] == list(recorded_argv[k : k + 2])
    # and -o with a literal $TASK_ID, as recorded for arrays [qsub-arr]
    assert "$TASK_ID" in load("qsub-arr").argv[5]
    assert argv[argv.index("-o") + 1].endswith("/sge.$TASK_ID.out")


def test_submit_argv_no_dependencies_no_hold() -> None:
    argv = backend().submit_argv(request())
    assert "-hold_jid" not in argv
    assert argv[:2] == ["qsub", "-terse"]
    assert argv[-1] == "/home/u/jf/jobs/7/job.sh"
    # the array is a directive in the script, not a qsub option
    assert "-t" not in backend().submit_argv(request(full_spec()))


# -- qsub ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "native"),
    [("qsub-ok", "1"), ("qsub-arr", "20"), ("qsub-arrstep", "21"), ("qsub-pe8", "25")],
)
def test_parse_submit_recorded(name: str, native: str) -> None:
    recording = load(name)
    assert recording.stdout.strip() in ("1", "20.1-10:1", "21.1-9:2", "25")
    assert backend().parse_submit(recording) == native


@pytest.mark.parametrize("stdout", ["", "\n", 'Your job 5 ("x") has been submitted\n'])
def test_parse_submit_without_id_raises(stdout: str) -> None:
    with pytest.raises(CommandError):
        backend().parse_submit(CommandResult(("qsub",), 0, stdout, ""))


@pytest.mark.parametrize(
    ("name", "transient"),
    [
        ("qsub-bad-queue", False),
        ("qsub-bad-pe", False),
        ("qsub-too-many-slots-we", False),
        ("qsub-name-with-spaces", False),
        ("qsub-missing-script", False),
        ("qmaster-down-qsub", True),  # commlib error: qmaster not reachable
    ],
)
def test_submit_is_transient_recorded(name: str, transient: bool) -> None:
    result = load(name)
    assert not result.ok
    assert backend().submit_is_transient(result) is transient


#: Not recorded (no max_u_jobs on the test cluster): qsub's answer when the per-user job
#: limit is reached, from Son of Grid Engine's source/daemons/qmaster/msg_qmaster.h
#: (MSG_JOB_ALLOWEDJOBSPERUSER_UU), framed like the recorded rejections [qsub-bad-queue].
MAX_U_JOBS = CommandResult(
    ("qsub", "-terse"),
    1,
    "",
    "Unable to run job: job rejected: Only 2000 jobs are allowed per user "
    "(current job count: 2000)\nExiting.\n",
)


def test_submit_is_transient_job_limit() -> None:
    assert backend().submit_is_transient(MAX_U_JOBS) is True


# -- qstat -xml -g d -----------------------------------------------------------------------


def parse_queue(name: str, ids: Sequence[str], runner: ScriptedRunner | None = None) -> Seen:
    return backend(runner).read_queue(load(name), context(ids))


EQW_4 = (
    "error state (Eqw): exit_status of job start = 100; "
    "fix it and `qmod -cj 4`, or `jobfleet cancel`"
)
EQW_7 = (
    'error state (Eqw): error: can\'t open output file "/nonexistent/jf-sge-fx/eqw.out": '
    "No such file or directory; fix it and `qmod -cj 7`, or `jobfleet cancel`"
)


def test_parse_queue_live_every_kind_of_job() -> None:
    runner = fake_sge(qstat_j=load("qstat-j-two-ids"))
    ids = [ID[k] for k in ("hrt", "held", "dep", "pe8", "too_many_slots", "exit100")]
    seen = parse_queue("qstat-xml-g-d-live", [*ids, ID["eqw_outdir"], ID["arr"], ID["adb"]], runner)
    assert seen["11"] == {None: (R, None, None)}
    assert seen[ID["held"]] == {None: (P, None, "held")}
    assert seen[ID["dep"]] == {None: (P, None, "held")}  # -hold_jid shows as h
    assert seen[ID["pe8"]] == {None: (P, None, None)}
    assert seen[ID["too_many_slots"]] == {None: (P, None, None)}
    # one job_list per task, pending ones too
    assert seen[ID["arr"]] == {1: (R, None, None), 2: (R, None, None)} | {
        i: (P, None, None) for i in range(3, 11)
    }
    assert seen[ID["adb"]] == {i: (P, None, "held") for i in (1, 2, 3)}
    # Eqw: the reason from one qstat -j for both
    assert runner.calls == [("qstat", "-j", "4,7")]
    assert seen["4"] == {None: (P, None, EQW_4)}
    assert seen["7"] == {None: (P, None, EQW_7)}


def test_a_job_in_error_state_is_explained_once_not_at_every_poll() -> None:
    runner = fake_sge(qstat_j=load("qstat-j-two-ids"))
    be = backend(runner)
    ids = [ID["exit100"], ID["eqw_outdir"]]
    for _ in range(3):
        seen = be.read_queue(load("qstat-xml-g-d-live"), context(ids))
        assert seen["4"] == {None: (P, None, EQW_4)}
        assert seen["7"] == {None: (P, None, EQW_7)}
    assert runner.calls == [("qstat", "-j", "4,7")]
    # Out of the error state (qmod -cj), then in it again: asked again.
    be.read_queue(load("qstat-xml-g-d-after-qdel"), context(["12"]))
    be.read_queue(load("qstat-xml-g-d-live"), context(ids))
    assert runner.calls == [("qstat", "-j", "4,7")] * 2


def test_parse_queue_ignores_jobs_not_asked_for() -> None:
    runner = fake_sge()  # no qstat -j: the Eqw jobs 4 and 7 are not asked for
    seen = parse_queue("qstat-xml-g-d-live", ["12", "14", "888"], runner)
    assert set(seen) == {"12", "14"}
    assert runner.calls == []


def test_parse_queue_after_qdel_reports_dr_cancelled_and_keeps_t() -> None:
    runner = fake_sge(qstat_j=load("qstat-j-two-ids"))
    seen = parse_queue("qstat-xml-g-d-after-qdel", ["12", "13", "20"], runner)
    assert seen["13"] == {None: (JobState.RUNNING, None, "being deleted (qdel)")}
    assert seen["12"] == {None: (R, None, None)}
    assert seen["20"][2] == (R, None, None)
    assert seen["20"][4] == (R, None, None)  # t
    assert set(seen["20"]) == {2, 4, 5, 6, 7, 8, 9, 10}  # 1 and 3 were deleted


def test_parse_queue_zombies_are_left_to_accounting() -> None:
    seen = parse_queue("qstat-xml-s-z-live", [ID["ok"], ID["exit3"], ID["arrstep"]])
    assert seen == {}


def test_parse_queue_eqw_reason_when_qstat_j_fails() -> None:
    runner = fake_sge(qstat_j=load("qmaster-down-qstat-j"))
    seen = parse_queue("qstat-xml-dep-on-eqw", [ID["eqw_pred"], ID["dep_on_eqw"]], runner)
    assert seen[ID["eqw_pred"]] == {None: (P, None, "error state (Eqw)")}
    assert seen[ID["dep_on_eqw"]] == {None: (P, None, "held")}


def test_parse_queue_unknown_state_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    recording = load("qstat-xml-g-d-live")
    odd = recording.stdout.replace("<state>hqw</state>", "<state>X</state>")
    with caplog.at_level(logging.WARNING):
        seen = sge_parse.parse_queue(replace(recording, stdout=odd), context([ID["held"]]))[0]
    assert seen == {ID["held"]: {None: (JobState.UNKNOWN, None, None)}}
    assert warnings_about(caplog, "unknown Grid Engine job state")


@pytest.mark.parametrize("name", ["qstat-xml-empty", "qstat-xml-g-d-live"])
def test_parse_queue_nothing_of_ours(name: str) -> None:
    assert parse_queue(name, ["99999"]) == {}


@pytest.mark.parametrize(
    "stdout",
    [
        load("qstat-xml-g-d-live").stdout[:3000],  # cut short
        "",
        "error: commlib error: got select error (Connection refused)\n",
    ],
    ids=["truncated", "empty", "not-xml"],
)
def test_parse_queue_unreadable_xml(stdout: str) -> None:
    result = replace(load("qstat-xml-g-d-live"), stdout=stdout)
    with pytest.raises(CommandError) as info:
        sge_parse.parse_queue(result, context(["12"]))[0]
    assert "unreadable XML" in str(info.value)


def test_parse_queue_failed_qstat() -> None:
    with pytest.raises(CommandError) as info:
        parse_queue("qmaster-down-qstat-xml", ["12"])
    assert info.value.transient
    assert "commlib error" in str(info.value)


# -- qacct ---------------------------------------------------------------------------------


def context(ids: Sequence[str], targets: Sequence[PollTarget] = ()) -> PollContext:
    """A poll's context asking about ``ids``, of these targets."""
    return PollContext({t.native_id: t for t in targets}, ids)


def parse_accounting(name: str, ids: Sequence[str]) -> Seen:
    return sge_parse.parse_accounting(load(name), context(ids))


@pytest.mark.parametrize(
    ("name", "key", "element"),
    [
        ("qacct-completed", "ok", (JobState.COMPLETED, 0, None)),
        ("qacct-exit3", "exit3", (JobState.FAILED, 3, None)),
        ("qacct-hrt", "hrt", (JobState.TIMEOUT, 137, "walltime limit exceeded (00:00:10)")),
        # s_rt's SIGUSR1 ended the command (138); the script exited by itself before h_rt.
        ("qacct-srt", "srt", (JobState.TIMEOUT, 138, "walltime limit exceeded (00:00:30)")),
        ("qacct-pe8", "pe8", (JobState.COMPLETED, 0, None)),
        ("qacct-dep2", "dep2", (JobState.COMPLETED, 0, None)),
        ("qacct-exit100-deleted", "exit100", (JobState.FAILED, 100, "Grid Engine failure 30")),
    ],
)
def test_parse_accounting_single(name: str, key: str, element: tuple[Any, ...]) -> None:
    assert parse_accounting(name, [ID[key]]) == {ID[key]: {None: element}}


@pytest.mark.parametrize(
    ("name", "key"),
    [("qacct-del-running", "del_running"), ("qacct-sigkill", "sigkill")],
)
def test_parse_accounting_killed(name: str, key: str) -> None:
    # qdel, and a SIGKILL of the job script itself, read the same: failed 100, 137
    ((index, (state, code, reason)),) = parse_accounting(name, [ID[key]])[ID[key]].items()
    assert (index, state, code) == (None, JobState.CANCELLED, 137)
    assert reason is not None and reason.startswith("cancelled (qdel")


def test_parse_accounting_eqw_deleted_never_started() -> None:
    seen = parse_accounting("qacct-eqw-outdir-deleted", [ID["eqw_outdir"]])
    state, _, reason = seen[ID["eqw_outdir"]][None]
    assert (state, reason) == (JobState.FAILED, "Grid Engine failure 26")


def test_parse_accounting_array_by_taskid() -> None:
    seen = parse_accounting("qacct-arr", [ID["arr"]])[ID["arr"]]
    assert set(seen) == {1, 2, 4, 5, 6, 7, 8, 9, 10}  # task 3 was deleted while pending
    assert seen[1][0] is JobState.CANCELLED  # qdel'ed while running
    assert all(seen[i] == (JobState.COMPLETED, 0, None) for i in (2, 4, 5, 10))
    fail = parse_accounting("qacct-arrfail", [ID["arrfail"]])[ID["arrfail"]]
    assert fail == {i: (JobState.COMPLETED, 0, None) for i in (1, 2, 4)} | {
        3: (JobState.FAILED, 5, None)
    }
    step = parse_accounting("qacct-arrstep", [ID["arrstep"]])[ID["arrstep"]]
    assert set(step) == {1, 3, 5, 7, 9}


def test_parse_accounting_keeps_only_jobs_asked_for() -> None:
    seen = parse_accounting("qacct-name-pattern", [ID["exit3"], ID["arrstep"], "888"])
    assert set(seen) == {ID["exit3"], ID["arrstep"]}


@pytest.mark.parametrize(
    "name",
    [
        "qacct-unknown",
        "qacct-running",
        "qacct-del-held",
        "qacct-arr-t-3-deleted",
        "qacct-no-accounting-file",
        "qmaster-down-qacct-unknown",
    ],
)
def test_parse_accounting_no_record_is_empty(name: str) -> None:
    assert not load(name).ok
    assert parse_accounting(name, ["99999", "12", "15", "20", "1"]) == {}


def test_parse_accounting_other_failure_raises() -> None:
    with pytest.raises(CommandError):
        parse_accounting("qacct-two-ids-positional", ["9"])  # usage on stderr, rc 1


def test_accounting_argv_one_pattern_from_scheduler_names() -> None:
    token = "3c4080ab"
    targets = [
        target(str(100 + i), scheduler_name(token, str(i), "train model")) for i in range(1, 6)
    ]
    assert targets[0].name == "jf3c4080ab-1-train_model"
    assert backend().accounting_argv(targets) == ["qacct", "-j", "jf3c4080ab-*"]
    # A name_prefix is part of the pattern; jobs of two prefixes are asked about by user.
    prefixed = [target("200", scheduler_name(token, "7", "x", prefix="lab42-"))]
    assert backend().accounting_argv([*prefixed, prefixed[0]]) == [
        "qacct",
        "-j",
        "lab42-jf3c4080ab-*",
    ]
    mixed = backend().accounting_argv([*prefixed, *targets])
    assert mixed is not None and mixed[-1] == "-j" and "-d" in mixed


# -- the poll chain --------------------------------------------------------------------------


def test_poll_everything_in_qstat_asks_no_accounting() -> None:
    runner = fake_sge(
        qstat=load("qstat-xml-g-d-live"), qstat_j=load("qstat-j-two-ids"), qacct=load("qacct-all")
    )
    keys = ("hrt", "running", "held", "dep", "exit100", "eqw_outdir", "pe8")
    targets = [recorded(k) for k in keys] + [
        recorded("arr", indices=range(1, 11)),
        recorded("adb", indices=(1, 2, 3)),
    ]
    result = backend(runner).poll(targets)
    assert kinds(runner) == ["qstat", "qstat_j"]
    assert runner.calls[0] == ("qstat", "-xml", "-g", "d")
    assert result[ID["running"]] == NativeStatus(R)
    assert result[ID["held"]] == NativeStatus(P, None, "held")
    # in Eqw they already have accounting records [qacct-exit100-while-eqw]: not finished
    assert result["4"] == NativeStatus(P, None, EQW_4)
    assert result["7"] == NativeStatus(P, None, EQW_7)
    arr = result[ID["arr"]]
    assert arr.state is R
    assert {i: e[0] for i, e in arr.elements.items()} == {1: R, 2: R} | {i: P for i in range(3, 11)}
    assert result[ID["adb"]].state is P
    assert len(result) == len(targets)


def states_only(result: dict[str, NativeStatus]) -> dict[str, NativeStatus]:
    """A poll's statuses without what the jobs used (compared on its own)."""
    return {n: replace(s, usage=None, element_usage={}) for n, s in result.items()}


def test_poll_jobs_gone_from_qstat_one_accounting_call() -> None:
    runner = fake_sge(
        qstat=load("qstat-xml-g-d-after-qdel"),
        qstat_j=load("qstat-j-two-ids"),
        qacct=load("qacct-all"),
    )
    keys = ("ok", "exit3", "sigkill", "hrt", "running", "del_running", "exit100", "held")
    targets = [recorded(k) for k in keys] + [
        recorded("arr", indices=range(1, 11)),
        recorded("arrfail", indices=range(1, 5)),
        recorded("arrstep", indices=(1, 3, 5, 7, 9)),
    ]
    polled = backend(runner).poll(targets)
    result = states_only(polled)  # usage: test_usage_* below
    ended = polled[ID["ok"]].usage
    assert ended is not None and ended.hosts == ("vm",) and ended.ended_at is not None
    assert polled[ID["running"]].usage is None  # still in qstat: accounting not asked
    assert kinds(runner) == ["qstat", "qstat_j", "qacct"]
    assert runner.calls[-1] == ("qacct", "-j", "jf-*")  # the names' common prefix
    assert result[ID["ok"]] == NativeStatus(JobState.COMPLETED, 0)
    assert result[ID["exit3"]] == NativeStatus(JobState.FAILED, 3)
    assert result[ID["hrt"]] == NativeStatus(
        JobState.TIMEOUT, 137, "walltime limit exceeded (00:00:10)"
    )
    assert result[ID["sigkill"]].state is JobState.CANCELLED
    # dr in qstat: being deleted; accounting (failed 100) will say how it ended
    assert result[ID["del_running"]].state is JobState.RUNNING
    # still in qstat: qstat wins over the accounting record written later
    assert result[ID["running"]] == NativeStatus(R)
    assert result[ID["exit100"]] == NativeStatus(P, None, EQW_4)
    assert result[ID["held"]] == NativeStatus(P, None, "held")
    arr = result[ID["arr"]]
    assert arr.state is R
    assert arr.elements[1][0] is JobState.CANCELLED  # from accounting
    assert arr.elements[2] == (R, None, None)  # from qstat, though qacct has it completed
    assert arr.elements[4] == (R, None, None)
    assert 3 not in arr.elements  # deleted while pending: no record, no exit-code file
    assert result[ID["arrfail"]].state is JobState.FAILED
    assert result[ID["arrfail"]].elements[3] == (JobState.FAILED, 5, None)
    assert result[ID["arrstep"]] == NativeStatus(
        JobState.COMPLETED, None, None, {i: (JobState.COMPLETED, 0, None) for i in (1, 3, 5, 7, 9)}
    )


@pytest.mark.parametrize(
    "failure",
    [
        load("qmaster-down-qstat-xml"),
        CommandError(("qstat",), "qstat did not answer within 60s", transient=True),
    ],
    ids=["qmaster-down", "timeout"],
)
def test_poll_qstat_failure_raises_and_reports_nothing(failure: Answer) -> None:
    runner = fake_sge(qstat=failure, qacct=load("qacct-all"))
    with pytest.raises(CommandError) as info:
        backend(runner).poll([recorded("ok"), recorded("running")])
    assert info.value.transient
    assert kinds(runner) == ["qstat"]


def test_poll_accounting_failure_raises() -> None:
    timeout = CommandError(("qacct",), "qacct did not answer within 60s", transient=True)
    runner = fake_sge(qstat=load("qstat-xml-g-d-live"), qacct=timeout)
    with pytest.raises(CommandError):
        backend(runner).poll([recorded("ok")])


def test_poll_accounting_program_missing_uses_exit_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "exit_code", "0\n")
    os.utime(tmp_path / "exit_code", (200.0, 200.0))  # its end: the exit code's time
    missing = CommandError(("qacct",), "qacct: command not found on PATH")
    runner = fake_sge(qstat=load("qstat-xml-g-d-live"), qacct=missing)
    be = backend(runner)
    with caplog.at_level(logging.WARNING):
        first = be.poll([recorded("ok", tmp_path)])
        be.poll([recorded("ok", tmp_path)])
    assert first == {
        ID["ok"]: NativeStatus(
            JobState.COMPLETED, 0, "from the job's exit-code file", usage=Usage(ended_at=200.0)
        )
    }
    assert len(warnings_about(caplog, "no accounting available")) == 1


def _running_row(number: str, name: str) -> str:
    """The recorded qstat -xml job_list of running job 12, renumbered and renamed."""
    text = load("qstat-xml-g-d-live").stdout
    match = re.search(
        r"<job_list state=\"running\">\s*<JB_job_number>12<.*?</job_list>", text, re.S
    )
    assert match is not None
    return match[0].replace(">12<", f">{number}<", 1).replace(">jf-running<", f">{name}<")


def qstat_listing(rows: Sequence[str]) -> CommandResult:
    """``qstat -xml -g d`` listing these job_list rows (the recorded empty document)."""
    text = load("qstat-xml-empty").stdout.replace(
        "<queue_info>\n", "<queue_info>\n" + "".join(rows), 1
    )
    return replace(load("qstat-xml-g-d-live"), stdout=text)


def qacct_record(number: str, name: str) -> str:
    """The recorded qacct record of job 1 (completed), renumbered and renamed."""
    (record,) = blocks(load("qacct-completed").stdout)
    record = re.sub(r"^jobnumber\s+\S+", f"jobnumber    {number}", record, flags=re.M)
    return re.sub(r"^jobname\s+\S+", f"jobname      {name}", record, flags=re.M)


def test_poll_thousand_jobs_one_qstat_one_qacct() -> None:
    token = "0123abcd"
    ids = [str(n) for n in range(3000, 4000)]
    names = {n: scheduler_name(token, str(i), "sim") for i, n in enumerate(ids, 1)}
    running, done = ids[::2], ids[1::2]
    runner = fake_sge(
        qstat=qstat_listing([_running_row(n, names[n]) for n in running]),
        qacct=CommandResult(
            ("qacct", "-j"), 0, "".join(qacct_record(n, names[n]) for n in done), ""
        ),
    )
    polled = backend(runner).poll([target(n, names[n]) for n in ids])
    result = states_only(polled)  # usage: test_usage_* below
    assert kinds(runner) == ["qstat", "qacct"]
    token = names[ids[0]].split("-", 1)[0]
    assert runner.calls[1] == ("qacct", "-j", f"{token}-*")
    assert len(result) == 1000
    assert all(result[n] == NativeStatus(R) for n in running)
    assert all(result[n] == NativeStatus(JobState.COMPLETED, 0) for n in done)


def test_poll_twenty_thousand_jobs_one_qstat() -> None:
    runner = fake_sge(qstat=qstat_listing([]), qacct=CommandResult(("qacct", "-j"), 0, "", ""))
    ids = [str(n) for n in range(100000, 120000)]
    backend(runner).poll([target(n, f"jfabcdef-{n}-x") for n in ids])
    assert kinds(runner).count("qstat") == 1


def test_poll_never_met_dependency_is_cancelled(tmp_path: Path) -> None:
    # jobs of a real jobfleet registry (token 8db998) that shared the capture's cluster:
    # 43 and 46 exited 196, 42 exited 3 [qacct-all]
    reason = "after_ok dependency on job 3 can never be met"
    write(Path(never_met_path(str(tmp_path / "43"), None)), reason + "\n")
    targets = [
        target("42", "jf8db998-3-bash", tmp_path / "42"),
        target("43", "jf8db998-4-touch", tmp_path / "43"),
        target("46", "jf8db998-7-true", tmp_path / "46"),  # 196 by itself: no marker
    ]
    runner = fake_sge(qstat=load("qstat-xml-g-d-live"), qacct=load("qacct-all"))
    polled = backend(runner).poll(targets)
    result = states_only(polled)  # usage: test_usage_* below
    assert kinds(runner) == ["qstat", "qacct"]
    assert runner.calls[1] == ("qacct", "-j", "jf8db998-*")
    assert result["43"] == NativeStatus(JobState.CANCELLED, None, "cancelled: " + reason)
    assert result["46"] == NativeStatus(JobState.FAILED, EXIT_DEPENDENCY_NEVER_MET)
    assert result["42"] == NativeStatus(JobState.FAILED, 3)


@pytest.mark.parametrize(
    "qacct", ["qacct-all", "qacct-no-accounting-file"], ids=["no-record", "no-accounting-file"]
)
def test_poll_exit_code_files_when_accounting_has_no_record(tmp_path: Path, qacct: str) -> None:
    done, array, partial = tmp_path / "done", tmp_path / "array", tmp_path / "partial"
    write(Path(exit_code_path(str(done), None)), "3\n")
    write(Path(exit_code_path(str(array), 1)), "0\n")
    write(Path(exit_code_path(str(array), 2)), "3\n")
    write(Path(exit_code_path(str(partial), None)), "0")  # still being written
    write(done / "started", "1\n")  # when it ran: the times of the job script's files
    for path, at in [(done / "started", 100.0), (done / "exit_code", 200.0)]:
        os.utime(path, (at, at))
    # a later listing: only jobs 68 and 69 are left
    runner = fake_sge(qstat=load("qstat-xml-dep-on-eqw"), qacct=load(qacct))
    targets = [
        target("900001", "jf-done", done),
        target("900002", "jf-array", array, (1, 2, 3)),
        target("900003", "jf-partial", partial),
        recorded("del_held"),  # deleted while held: never any record [qacct-del-held]
    ]
    result = backend(runner).poll(targets)
    assert kinds(runner) == ["qstat", "qacct"]
    from_file = "from the job's exit-code file"
    assert result["900001"] == NativeStatus(
        JobState.FAILED, 3, from_file, usage=Usage(started_at=100.0, ended_at=200.0)
    )
    assert result["900002"].elements == {
        1: (JobState.COMPLETED, 0, from_file),
        2: (JobState.FAILED, 3, from_file),
    }
    assert "900003" not in result  # unknown: the caller keeps its last state
    assert ID["del_held"] not in result


def test_poll_nothing_to_poll_runs_nothing() -> None:
    runner = fake_sge()
    assert backend(runner).poll([]) == {}
    assert runner.calls == []


# -- finding a job by its name -------------------------------------------------------------


def test_find_submitted_in_qstat() -> None:
    runner = fake_sge(qstat=load("qstat-xml-live"), qacct=load("qacct-all"))
    assert backend(runner).find_submitted("jf-held", "x") == ID["held"]
    assert runner.calls == [("qstat", "-xml")]


def test_find_submitted_only_in_accounting() -> None:
    runner = fake_sge(qstat=load("qstat-xml-live"), qacct=load("qacct-name-exact"))
    assert backend(runner).find_submitted("jf-exit3", "x") == ID["exit3"]
    assert runner.calls == [("qstat", "-xml"), ("qacct", "-j", "jf-exit3")]


@pytest.mark.parametrize("qacct", ["qacct-all", "qacct-no-accounting-file"])
def test_find_submitted_nowhere_is_none(qacct: str) -> None:
    runner = fake_sge(qstat=load("qstat-xml-empty"), qacct=load(qacct))
    assert backend(runner).find_submitted("jfabc123-7-train", "7") is None
    assert kinds(runner) == ["qstat", "qacct"]


@pytest.mark.parametrize("failure", ["qmaster-down-qstat", "qmaster-down-qstat-xml"])
def test_find_submitted_qstat_failure_raises(failure: str) -> None:
    runner = fake_sge(qstat=load(failure), qacct=load("qacct-all"))
    with pytest.raises(CommandError):
        backend(runner).find_submitted("jf-held", "x")
    assert kinds(runner) == ["qstat"]


def test_find_submitted_accounting_failure_raises() -> None:
    runner = fake_sge(qstat=load("qstat-xml-empty"), qacct=load("qacct-two-ids-positional"))
    with pytest.raises(CommandError):
        backend(runner).find_submitted("jf-held", "x")


# -- submit retries ------------------------------------------------------------------------


def test_submit_ok() -> None:
    runner = fake_sge(qsub=load("qsub-ok"))
    assert backend(runner).submit(request()) == "1"
    assert kinds(runner) == ["qsub"]


def test_submit_array_id() -> None:
    runner = fake_sge(qsub=load("qsub-arr"))
    assert backend(runner).submit(request(full_spec())) == "20"


def test_submit_transient_then_found_does_not_resubmit() -> None:
    runner = fake_sge(
        qsub=[load("qmaster-down-qsub"), load("qsub-ok")],
        qstat=load("qstat-xml-live"),
        qacct=load("qacct-all"),
    )
    assert backend(runner).submit(request(name="jf-running")) == ID["running"]
    assert kinds(runner) == ["qsub", "qstat"]


def test_submit_transient_then_found_in_accounting_does_not_resubmit() -> None:
    runner = fake_sge(
        qsub=[load("qmaster-down-qsub"), load("qsub-ok")],
        qstat=load("qstat-xml-empty"),
        qacct=load("qacct-all"),
    )
    assert backend(runner).submit(request(name="jf-exit3")) == ID["exit3"]
    assert kinds(runner) == ["qsub", "qstat", "qacct"]


def test_submit_transient_then_not_found_resubmits() -> None:
    runner = fake_sge(
        qsub=[load("qmaster-down-qsub"), load("qsub-ok")],
        qstat=load("qstat-xml-empty"),
        qacct=load("qacct-all"),
    )
    assert backend(runner).submit(request()) == "1"
    assert kinds(runner) == ["qsub", "qstat", "qacct", "qsub"]
    assert runner.calls[2] == ("qacct", "-j", "jfabc123-7-train")


def test_submit_transient_then_lookup_fails_never_resubmits() -> None:
    runner = fake_sge(
        qsub=[load("qmaster-down-qsub"), load("qsub-ok")],
        qstat=load("qmaster-down-qstat"),
        qacct=load("qacct-all"),
    )
    with pytest.raises(SubmitError) as info:
        backend(runner).submit(request())
    assert info.value.maybe_submitted is True
    assert kinds(runner) == ["qsub", "qstat", "qstat", "qstat"]
    assert "cannot tell whether it was submitted" in str(info.value)


def test_submit_permanent_failure_at_once() -> None:
    runner = fake_sge(qsub=load("qsub-bad-queue"), qstat=load("qstat-xml-empty"))
    with pytest.raises(SubmitError) as info:
        backend(runner).submit(request())
    assert info.value.maybe_submitted is False
    assert kinds(runner) == ["qsub"]
    assert 'unknown queue "nope"' in str(info.value)


# -- qdel ------------------------------------------------------------------------------------


def qdels(runner: ScriptedRunner) -> list[tuple[str, ...]]:
    return [argv for argv in runner.calls if argv[0] == "qdel"]


def test_cancel_argv_as_recorded() -> None:
    be = backend()
    assert be.cancel_argv([ID["del_running"]], None, None) == list(load("qdel-running").argv)
    assert be.cancel_argv([ID["arr"]], [3], None) == list(load("qdel-task-pending").argv)
    assert be.cancel_argv(["12", "13"], None, None) == ["qdel", "12", "13"]


def test_cancel_tasks_one_qdel_per_job() -> None:
    runner = fake_sge(qdel=load("qdel-task-pending"), qstat=as_queue("qstat-xml-empty"))
    backend(runner).cancel(["20", "21"], indices=[3])
    assert qdels(runner) == [("qdel", "20", "-t", "3"), ("qdel", "21", "-t", "3")]


def test_cancel_jobs_one_qdel() -> None:
    runner = fake_sge(qdel=load("qdel-running"), qstat=as_queue("qstat-xml-empty"))
    backend(runner).cancel(["12", "13"])
    assert qdels(runner) == [("qdel", "12", "13")]
    # one qstat for what waits, one to see them gone: the next poll reads accounting
    assert kinds(runner) == ["qstat", "qdel", "qstat"]


def test_cancel_nothing_runs_nothing() -> None:
    runner = fake_sge()
    backend(runner).cancel([])
    assert runner.calls == []


def test_cancel_with_a_signal_is_refused() -> None:
    runner = fake_sge(qdel=load("qdel-running"))
    with pytest.raises(BackendError) as info:
        backend(runner).cancel(["12"], signal="TERM")
    assert not isinstance(info.value, CommandError)
    assert runner.calls == []


def _single_sge_range(arg: str) -> bool:
    """Whether qdel takes ``-t arg``: one range once sorted and merged (clients/qdel/qdel.c
    rejects more with "ERROR! -t option only allows one range specification")."""
    parts = arg.split(",")
    if len(parts) == 1:
        return re.fullmatch(r"\d+(-\d+(:\d+)?)?", arg) is not None
    if not all(p.isdigit() for p in parts):
        return False
    ids = sorted(int(p) for p in parts)
    return ids == list(range(ids[0], ids[-1] + 1))


def _expand(arg: str) -> set[int]:
    out: set[int] = set()
    for part in arg.split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        out.update(range(int(first), int(last or first) + 1, int(step or 1)))
    return out


def test_cancel_non_contiguous_tasks_one_range_per_qdel() -> None:
    runner = fake_sge(qdel=load("qdel-task-pending"), qstat=as_queue("qstat-xml-empty"))
    backend(runner).cancel(["20"], indices=[1, 3, 7])
    asked: set[int] = set()
    for argv in qdels(runner):
        assert argv[:3] == ("qdel", "20", "-t")
        assert _single_sge_range(argv[3]), f"qdel refuses {argv}"
        asked |= _expand(argv[3])
    assert asked == {1, 3, 7}


def test_single_sge_range_rule() -> None:
    assert _single_sge_range("3")
    assert _single_sge_range("5-10")
    assert _single_sge_range("1-9:2")
    assert _single_sge_range("1,2,3")  # merged into 1-3
    assert not _single_sge_range("1,3")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("qdel-running", True),
        ("qdel-task-running", True),
        ("qdel-pending-held", True),
        ("qdel-unknown", True),  # "denied: job ... does not exist" on stdout, rc 1
        ("qdel-finished", True),
        ("qdel-two-ids", True),  # deletes 26, denies 99999
        ("qmaster-down-qdel", False),
    ],
)
def test_cancel_ok_recorded(name: str, ok: bool) -> None:
    assert backend().cancel_ok(load(name)) is ok


def test_cancel_already_finished_is_no_error() -> None:
    runner = fake_sge(qdel=load("qdel-finished"), qstat=as_queue("qstat-xml-empty"))
    backend(runner).cancel(["1"])
    assert qdels(runner) == [("qdel", "1")]


def test_cancel_qmaster_down_raises() -> None:
    runner = fake_sge(qdel=load("qmaster-down-qdel"), qstat=as_queue("qmaster-down-qstat-xml"))
    with pytest.raises(CommandError) as info:
        backend(runner).cancel(["55"])
    assert info.value.transient


@pytest.mark.parametrize(
    ("fixture", "removed"),
    [
        ("qdel-pending-held", {"15": [None]}),  # gone at once, no accounting record ever
        ("qdel-task-pending", {"20": [3]}),
        ("qdel-running", {}),  # registered for deletion: accounting will tell
        ("qdel-task-running", {}),
        ("qdel-two-ids", {"26": [None]}),
    ],
)
def test_parse_cancel_reports_what_was_removed_before_it_started(
    fixture: str, removed: dict[str, list[int | None]]
) -> None:
    assert sge_parse.parse_cancel(load(fixture)) == removed


def test_verify_requests_can_be_turned_off() -> None:
    argv = SgeBackend(settings=SgeSettings(verify_requests=False)).submit_argv(request())
    assert "-w" not in argv


def test_cancelling_an_array_records_its_waiting_tasks() -> None:
    # qdel says "has deleted job N" for an array's waiting tasks: which ones, the
    # qstat taken just before tells (here array 20 runs tasks 1-2; 3-10 wait).
    waiting = load("qstat-xml-g-d-live")
    deleted = CommandResult(("qdel", "20"), 0, "root has deleted job 20\n", "")
    runner = fake_sge(qstat=[waiting, as_queue("qstat-xml-empty")], qdel=deleted)
    removed = backend(runner).cancel(["20"])
    assert removed == {"20": [3, 4, 5, 6, 7, 8, 9, 10]}


# -- memory: what Grid Engine records when a job outgrows its h_vmem (oom-* fixtures) ------

OOM_ID = dict(
    line.split("=", 1)
    for line in (FIXTURES / "oom-jobs.env").read_text(encoding="utf-8").splitlines()
)


@pytest.mark.parametrize(
    ("key", "element"),
    [
        # execd killed them: failed 37 and maxvmem above h_vmem x slots
        (
            "multi",
            (JobState.OUT_OF_MEMORY, 137, f"{VMEM}: maxvmem 275.1 MiB > 100 MiB"),
        ),
        (
            "pe2",
            (JobState.OUT_OF_MEMORY, 137, f"{VMEM}: maxvmem 195.2 MiB > 100 MiB"),
        ),
        # failed 37 too, with h_vmem requested, but maxvmem far below: its h_rt
        ("hrt", (JobState.TIMEOUT, 137, "walltime limit exceeded (00:00:05)")),
        # refused the memory (RLIMIT_AS), the program failed by itself: nothing says why
        ("alloc400", (JobState.FAILED, 1, None)),
        ("grow", (JobState.FAILED, 1, None)),  # maxvmem 91.1 MiB of 100
        # NOT memory kills, whatever maxvmem says (91.9 MiB of 100, then SIGSEGV)
        ("crash", (JobState.FAILED, 139, None)),
        ("ulimit", (JobState.COMPLETED, 0, None)),
    ],
)
def test_parse_accounting_memory(key: str, element: tuple[Any, ...]) -> None:
    job = OOM_ID[key]
    assert parse_accounting(f"oom-qacct-{key}", [job]) == {job: {None: element}}


def test_parse_accounting_memory_kill_by_name_pattern() -> None:
    ids = list(OOM_ID.values())
    seen = parse_accounting("oom-qacct-name-pattern", ids)
    states = {key: seen[job][None][0] for key, job in OOM_ID.items()}
    assert [k for k, s in states.items() if s is JobState.OUT_OF_MEMORY] == ["multi", "pe2"]
    assert states["sigkill"] is JobState.CANCELLED  # failed 100: kill -9 $$


def test_an_accounting_record_of_another_job_with_the_same_number_is_ignored() -> None:
    """Job numbers wrap (and restart with a new spool): a qacct record is ours only
    under our job's name."""
    mine = target("23", "jf3c4080ab-7-train")
    assert sge_parse.parse_accounting(load("qacct-ada"), context(["23"], [mine])) == {}
    # it was "jf-ada"
    ours = context(["23"], [target("23", "jf-ada")])
    assert sge_parse.parse_accounting(load("qacct-ada"), ours)["23"]


# -- the same event, the same report (docs/states.md) --------------------------------------


@pytest.mark.parametrize(
    ("name", "native", "element"),
    [
        # jobfleet's own job scripts: qdel's and h_rt's SIGKILL leave no exit-code file;
        # exit_status 137 is what the command would show a shell (killed by SIGKILL)
        (
            "same-event-qacct-cancel-running",
            "847",
            (
                JobState.CANCELLED,
                137,
                "cancelled (qdel, or a SIGKILL to the job script; Grid Engine does not"
                " record by whom)",
            ),
        ),
        (
            "same-event-qacct-walltime",
            "849",
            (JobState.TIMEOUT, 137, "walltime limit exceeded (00:01:00)"),
        ),
    ],
)
def test_same_event_accounting(name: str, native: str, element: tuple[Any, ...]) -> None:
    assert parse_accounting(name, [native]) == {native: {None: element}}


def test_same_event_exit_code_file_wins_over_the_sigkill(tmp_path: Path) -> None:
    # A script that recorded its command's status before the kill (it had just ended,
    # 3) is believed; a recorded 0 never turns the cancel into a success's code.
    for recorded, expected in (("3\n", 3), ("0\n", 137)):
        (tmp_path / "exit_code").write_text(recorded)
        be = backend(
            fake_sge(
                qstat=as_queue("qstat-xml-empty"), qacct=load("same-event-qacct-cancel-running")
            )
        )
        status = be.poll([target("847", "jf9e99f2b1-5-cancel_running", tmp_path)])["847"]
        assert (status.state, status.exit_code) == (JobState.CANCELLED, expected)


# -- what a job used (issue 11) ------------------------------------------------------------

#: capture-8.1.9-usage.sh: a job and a 2-task array allocating ~200 MB for 3 s.
USAGE_JOBS = dict(
    line.split("=", 1) for line in (FIXTURES / "usage-jobs.env").read_text().split() if "=" in line
)


def _ctime(text: str) -> float:
    return time.mktime(time.strptime(text, "%a %b %d %H:%M:%S %Y"))


def test_usage_from_qacct_records() -> None:
    one, arr = USAGE_JOBS["usage_one"], USAGE_JOBS["usage_arr"]
    targets = [target(one, "jfusage-one"), target(arr, "jfusage-arr", indices=(1, 2))]
    used = sge_usage.parse_usage(load("usage-qacct"), context([one, arr], targets))
    assert used[one] == {
        None: Usage(
            submitted_at=_ctime("Sun Dec  6 12:16:08 2026"),
            started_at=_ctime("Sun Dec  6 12:16:08 2026"),
            ended_at=_ctime("Sun Dec  6 12:16:12 2026"),
            hosts=("vm",),
            max_memory_bytes=int(211.105 * 2**20),  # maxvmem
            cpu_time_s=0.133,  # ru_utime + ru_stime
            wall_time_s=4.0,
        )
    }
    assert sorted(used[arr]) == [1, 2]
    for usage in (used[one][None], *used[arr].values()):
        # ~200 MB allocated: the peak is in that range; start and end bracket 3 s of sleep.
        assert 200 * 2**20 <= (usage.max_memory_bytes or 0) <= 260 * 2**20
        assert usage.started_at is not None and usage.ended_at is not None
        assert usage.ended_at - usage.started_at >= 3


def test_usage_of_a_job_too_short_for_maxvmem_takes_ru_maxrss() -> None:
    # oom-qacct-alloc400: maxvmem 0.000B, ru_maxrss 7.805KB (qacct prints KiB as bytes).
    (record,) = sge_parse._qacct_records(load("oom-qacct-alloc400").stdout)
    usage = sge_usage.record_usage(record)
    assert usage.max_memory_bytes == int(7.805 * 1024 * 1024)
    assert usage.cpu_time_s == 0.015 and usage.hosts == ("vm",)


def test_usage_of_a_job_that_never_started_is_unknown_but_its_submission() -> None:
    record = {
        "qsub_time": "Sun Dec  6 12:16:08 2026",
        "start_time": "-/-",
        "end_time": "-/-",
        "hostname": "vm",
        "maxvmem": "0.000B",
        "ru_wallclock": "0s",
    }
    usage = sge_usage.record_usage(record)
    assert usage == Usage(submitted_at=_ctime("Sun Dec  6 12:16:08 2026"))
