"""The SLURM backend's parsers and CommandBackend's logic, driven by recorded SLURM output.

No cluster is needed. ``tests/backends/slurm/fixtures/22.05/NAME.out`` is the stdout of a real
SLURM 22.05.8 command and ``NAME.meta.json`` its argv, return code and stderr (see the
README there and docs/slurm-notes.md). :func:`load` turns one into a
:class:`~jobfleet.runner.CommandResult`; :func:`fake_slurm` answers a backend's commands
from such recordings through a :class:`~jobfleet.runner.ScriptedRunner`, keeping only
the rows of the jobs asked for and the columns asked for (the sacct captures have more
columns than the backend asks for), and checking that every other option of the
backend's command is the one recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends.base import NativeStatus, PollTarget, SubmitRequest
from jobfleet.backends.command import PollContext, Seen
from jobfleet.backends.slurm import SLURM, SlurmSettings, slurm_directives
from jobfleet.backends.slurm import accounting as slurm_accounting
from jobfleet.backends.slurm import parse as slurm_parse
from jobfleet.backends.slurm import queue as slurm_queue
from jobfleet.backends.slurm.backend import SlurmBackend
from jobfleet.backends.slurm.parse import STATE_MAP, exit_code, map_state, parse_job_id
from jobfleet.backends.slurm.usage import USAGE_COLUMNS
from jobfleet.errors import CommandError, SpecError, SubmitError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.script import render_script
from jobfleet.spec import DepKind, JobSpec, Resources, parse_array
from jobfleet.states import JobState
from jobfleet.usage import Usage

FIXTURES = Path(__file__).parent / "fixtures"
# -- loading recordings ------------------------------------------------------------------


def load(name: str, version: str = "22.05") -> CommandResult:
    """The recorded command ``NAME`` as the runner would have returned it."""
    base = FIXTURES / version / name
    meta = json.loads(base.with_suffix(".meta.json").read_text(encoding="utf-8"))
    stdout = base.with_suffix(".out").read_text(encoding="utf-8")
    return CommandResult(
        tuple(meta["argv"]), meta["returncode"], stdout, meta["stderr"], meta["elapsed_s"]
    )


def option(argv: Sequence[str], name: str) -> str | None:
    """The value of ``--name=value`` in ``argv``."""
    prefix = f"--{name}="
    values = [a[len(prefix) :] for a in argv if a.startswith(prefix)]
    return values[0] if values else None


#: Columns the backend asks for that older recordings lack: read as empty (unknown),
#: as SLURM prints a value it does not have. sacct's Timelimit (the limit a time-out's
#: reason shows) is in the same-event-* recordings; what a job used (issue 11) in the
#: usage-* ones.
_ASKED_LATER = {"Timelimit", *USAGE_COLUMNS}
#: Options of older recordings the backend no longer passes. ``--allocations``: since
#: issue 11 the poll's sacct lists steps too (MaxRSS is only there); a recording made
#: with it has no step rows, read as a job whose steps have not been recorded (no
#: peak memory known), as SLURM itself shows a job right after it ended.
_DROPPED_LATER = {"--allocations"}
#: How each program's --format lists columns, and which column is the job name
#: (the only one that may contain the separator "|").
_LAYOUT = {"squeue": ("|", "%j"), "sacct": (",", "JobName")}


def columns(argv: Sequence[str]) -> list[str]:
    sep, _ = _LAYOUT[argv[0]]
    fmt = option(argv, "format")
    assert fmt is not None, f"no --format in {argv}"
    return fmt.split(sep)


def rows(text: str, cols: Sequence[str], name_column: str) -> list[dict[str, str]]:
    """Split ``|``-separated rows; extra separators belong to the job name."""
    out = []
    for line in text.splitlines():
        fields = line.split("|")
        extra = len(fields) - len(cols)
        assert extra >= 0, f"row {line!r} has fewer fields than {cols}"
        if extra:
            k = cols.index(name_column)
            fields = [*fields[:k], "|".join(fields[k : k + extra + 1]), *fields[k + extra + 1 :]]
        out.append(dict(zip(cols, fields, strict=True)))
    return out


def replay(recording: CommandResult, argv: Sequence[str]) -> CommandResult:
    """``recording`` as the answer to ``argv``.

    For squeue and sacct with ``--jobs``: only the rows of those jobs, in the columns
    ``argv`` asks for, as SLURM itself would print them (and, like squeue, rc 1 and
    "Invalid job id specified" when a single id matches nothing). Every other option
    must be the recorded one, so the backend is tested with the commands it really runs.
    """
    argv = tuple(argv)
    program = argv[0]
    if program not in _LAYOUT or option(argv, "jobs") is None or not recording.ok:
        return replace(recording, argv=argv)
    variable = ("--jobs=", "--format=", "--starttime=")
    mine = [a for a in argv if not a.startswith(variable)]
    recorded = [a for a in recording.argv if not a.startswith(variable) and a not in _DROPPED_LATER]
    assert mine == recorded, f"backend runs {argv}, the recording was {recording.argv}"
    wanted = set((option(argv, "jobs") or "").split(","))
    _, name_column = _LAYOUT[program]
    out_cols = columns(argv)
    kept = []
    for row in rows(recording.stdout, columns(recording.argv), name_column):
        if program == "squeue":
            ids = {row["%F"], row["%A"]}
        else:
            job = row["JobID"].split(".", 1)[0]  # a step's rows go with its job's
            raw = row["JobIDRaw"]
            ids = {row["JobID"], job, job.split("_", 1)[0], raw, raw.split(".", 1)[0]}
        if ids & wanted:
            missing = [c for c in out_cols if c not in row and c not in _ASKED_LATER]
            assert not missing, f"the recording has no column {missing} the backend asks for"
            kept.append("|".join(row.get(c, "") for c in out_cols))
    if program == "squeue" and len(wanted) == 1 and not kept:
        unknown = load("squeue-unknown-single")
        return replace(unknown, argv=argv)
    return replace(recording, argv=argv, stdout="".join(f"{line}\n" for line in kept))


Answer = CommandResult | CommandError

#: The columns of the poll's squeue and sacct, as the latest recordings list them.
QUEUE_COLS = columns(load("cancel-lag-squeue").argv)
SACCT_COLS = columns(load("cancel-lag-sacct").argv)
#: The ids of the main capture run, as its squeue and sacct commands listed them.
MAIN_IDS = (option(load("sacct-final").argv, "jobs") or "").split(",")


class FakeSlurm(ScriptedRunner):
    """A ScriptedRunner that also keeps the environment each command was given."""

    def __init__(self, respond: Callable[[tuple[str, ...]], CommandResult | CommandError]):
        super().__init__(respond)
        self.envs: list[tuple[str, Mapping[str, str] | None]] = []
        self.cwds: list[tuple[str, str | None]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        self.envs.append((argv[0], env))
        self.cwds.append((argv[0], cwd))
        return super().run(argv, timeout_s=timeout_s, env=env, cwd=cwd)


def targets_for(ids: Sequence[str], submitted: float) -> list[PollTarget]:
    """Poll targets for these native ids, submitted at ``submitted``."""
    return [
        PollTarget(f"jf-{i}", native, "/nonexistent", submitted) for i, native in enumerate(ids)
    ]


def fake_slurm(**answers: Answer | list[Answer]) -> FakeSlurm:
    """A runner answering each program (by name) from recordings.

    A list is answered in order, its last answer repeating. A CommandError is raised.
    """
    queues = {p: list(a) if isinstance(a, list) else [a] for p, a in answers.items()}

    def respond(argv: tuple[str, ...]) -> CommandResult | CommandError:
        # The poll's sacct lists the steps: a job's batch step is never asked for again.
        assert not (option(argv, "jobs") or "").endswith(".batch"), argv
        queue = queues.get(argv[0])
        assert queue, f"unexpected command {argv}"
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, CommandError):
            return answer
        return replay(answer, argv)

    return FakeSlurm(respond)


def backend(runner: ScriptedRunner | None = None, **settings: Any) -> SlurmBackend:
    """A backend with no pause between submit retries and 3 retries, unless told otherwise."""
    fast = SlurmSettings(retry_backoff_s=0.0, submit_retries=3)
    # Never the real programs: a backend that asks SLURM more than a test answers fails.
    return SlurmBackend(runner or fake_slurm(), replace(fast, **settings))


#: The user database of these tests: uid 1000 is alice, any other uid has no name.
USERS = {0: "root", 1000: "alice"}


def user_name(uid: int) -> str:
    return USERS.get(uid, f"uid {uid}")


def context(ids: Sequence[str], accounting: bool | None = None) -> PollContext:
    """A poll's context asking about ``ids`` (nothing found by earlier steps)."""
    return PollContext({}, ids, accounting, user_name=user_name)


def squeue(result: CommandResult, ids: Sequence[str]) -> Seen:
    """The pure squeue parser's states (no backend involved)."""
    return slurm_queue.parse_queue(result, context(ids))[0]


def parse_queue(name: str, ids: Sequence[str] = MAIN_IDS) -> Seen:
    return squeue(load(name), ids)


def parse_accounting(
    name: str, ids: Sequence[str] = MAIN_IDS, be: SlurmBackend | None = None, version: str = "22.05"
) -> Seen:
    """parse_accounting on a sacct capture, in the columns the backend asks for."""
    be = be or backend()
    argv = be.accounting_argv(targets_for(ids, 1.8e9))
    assert argv is not None
    recording = load(name, version) if version == "22.05" else _sacct_2311(name)
    return be.read_accounting(replay(recording, argv), context(ids))


def _sacct_2311(name: str) -> CommandResult:
    # The 23.11 text files have no meta file: they use the layout of the 22.05 captures.
    layout = load("sacct-final").argv
    stdout = (FIXTURES / "23.11" / name).with_suffix(".out").read_text(encoding="utf-8")
    return CommandResult(layout, 0, stdout, "")


def target(
    native_id: str, job_dir: Path | str = "/nonexistent", indices: Iterable[int] | None = None
) -> PollTarget:
    """A tracked job (an array when ``indices`` is given) submitted in 2027."""
    idx = tuple(indices) if indices is not None else None
    return PollTarget(f"jf{native_id}", native_id, str(job_dir), 1.8e9, idx)


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


# -- states, exit codes, job ids ---------------------------------------------------------

#: What each SLURM state code means for jobfleet, written out from the JOB STATE CODES of
#: squeue(1)/sacct(1) and docs/slurm-notes.md section 4, independently of STATE_MAP.
EXPECTED_STATE = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "POWER_UP_NODE": JobState.PENDING,
    "REQUEUED": JobState.PENDING,  # will run again: must not be terminal
    "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "SPECIAL_EXIT": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "UPDATE_DB": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "LAUNCH_FAILED": JobState.FAILED,
    "RECONFIG_FAIL": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
}


def test_every_mapped_state_has_an_expectation() -> None:
    assert set(STATE_MAP) == set(EXPECTED_STATE)


@pytest.mark.parametrize("code", sorted(STATE_MAP))
def test_map_state_every_code(code: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert map_state(code) == (EXPECTED_STATE[code], None)
        assert map_state(f"{code}+") == (EXPECTED_STATE[code], None)
    assert caplog.records == []


def test_map_state_cancelled_by_uid() -> None:
    assert map_state("CANCELLED by 0") == (JobState.CANCELLED, "by 0")
    assert map_state("CANCELLED by 1000") == (JobState.CANCELLED, "by 1000")
    # fixed-width sacct output marks a cut column with "+" [sacct-fixed-width-truncation]
    assert map_state("CANCELLED+") == (JobState.CANCELLED, None)


@pytest.mark.parametrize("native", ["EXPLODED", "", "running", "+"])
def test_map_state_unknown_warns_and_never_raises(
    native: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        state, detail = map_state(native)
    assert state is JobState.UNKNOWN
    assert detail == native
    assert warnings_about(caplog, "unknown SLURM job state")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3:0", 3),
        ("0:0", 0),
        ("0:9", 137),
        ("0:15", 143),
        ("1:15", 143),  # a signal wins over the code
        ("", None),
        ("garbage", None),
        ("3", None),
        ("a:b", None),
    ],
)
def test_exit_code(text: str, expected: int | None) -> None:
    assert exit_code(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123", ("123", None)),
        ("123_4", ("123", [4])),
        ("123_[1-10%2]", ("123", list(range(1, 11)))),
        ("123_[1,3-5]", ("123", [1, 3, 4, 5])),
        ("123.batch", ("123", None)),
        ("123+0", ("123", None)),
        ("123_4.batch", ("123", [4])),
        ("358_[1-199:2]", ("358", list(range(1, 200, 2)))),  # recorded step syntax
    ],
)
def test_parse_job_id(text: str, expected: tuple[str, list[int] | None]) -> None:
    assert parse_job_id(text) == expected


# -- directives and the submit command -----------------------------------------------------


def full_spec(**changes: Any) -> JobSpec:
    """A spec asking for every resource SLURM gets a directive for."""
    resources = Resources(
        cores=4,
        nodes=2,
        memory_bytes=10**9,  # 953.67 MiB
        walltime_s=86400 + 2 * 3600 + 3 * 60 + 4,
        gpus=2,
        queue="gpu",
        account="proj",
    )
    return JobSpec(["true"], resources=replace(resources, **changes), array=parse_array("1-10%2"))


def test_slurm_directives_every_resource_in_order() -> None:
    assert slurm_directives(full_spec()) == [
        "--cpus-per-task=4",
        "--nodes=2",
        "--mem=954M",
        "--time=1-02:03:04",
        "--gpus=2",  # for the whole job: --gres counts per node
        "--partition=gpu",
        "--account=proj",
        "--array=1-10%2",
    ]


@pytest.mark.parametrize(
    ("memory_bytes", "mem"),
    [(1, "1M"), (2**20, "1M"), (2**20 + 1, "2M"), (4 * 2**30, "4096M"), (10**9, "954M")],
)
def test_slurm_directives_memory_rounds_up_to_mib(memory_bytes: int, mem: str) -> None:
    spec = JobSpec(["true"], resources=Resources(memory_bytes=memory_bytes))
    assert f"--mem={mem}" in slurm_directives(spec)


@pytest.mark.parametrize(
    ("walltime_s", "time"),
    [(59, "0-00:00:59"), (3600, "0-01:00:00"), (3 * 86400, "3-00:00:00"), (90061, "1-01:01:01")],
)
def test_slurm_directives_walltime(walltime_s: int, time: str) -> None:
    spec = JobSpec(["true"], resources=Resources(walltime_s=walltime_s))
    assert f"--time={time}" in slurm_directives(spec)


def test_slurm_directives_minimal_spec() -> None:
    assert slurm_directives(JobSpec(["true"])) == ["--cpus-per-task=1"]


def test_render_script_skips_and_adds_directives() -> None:
    spec = full_spec(
        directives_skip=("--mem", "--gpus"), extra_directives=("--constraint=haswell",)
    )
    lines = render_script(spec, SLURM).splitlines()
    sbatch = [line for line in lines if line.startswith("#SBATCH")]
    assert sbatch == [
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --nodes=2",
        "#SBATCH --time=1-02:03:04",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj",
        "#SBATCH --array=1-10%2",
        "#SBATCH --constraint=haswell",
    ]
    assert lines[0] == "#!/bin/bash"
    # directives must come before the first command, or sbatch ignores them
    first_command = next(i for i, line in enumerate(lines) if line.startswith("export "))
    assert lines.index("#SBATCH --constraint=haswell") < first_command


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


DEPS = ((DepKind.AFTER_OK, ("1", "2")), (DepKind.AFTER_NOT_OK, ("3",)))


def test_submit_argv_single_job_with_dependencies_and_extra_args() -> None:
    spec = JobSpec(["true"], resources=Resources(extra_args=("--qos=high", "--exclusive")))
    assert backend().submit_argv(request(spec, DEPS)) == [
        "sbatch",
        "--parsable",
        "--job-name=jfabc123-7-train",
        "--output=/home/u/jf/jobs/7/slurm-%j.out",
        "--dependency=afterok:1:2,afternotok:3",
        "--kill-on-invalid-dep=yes",
        "--qos=high",
        "--exclusive",
        "/home/u/jf/jobs/7/job.sh",
    ]


def test_submit_argv_without_kill_invalid_dependents() -> None:
    argv = backend(kill_invalid_dependents=False).submit_argv(
        request(dependencies=((DepKind.AFTER_ANY, ("5",)),))
    )
    assert "--dependency=afterany:5" in argv
    assert not any(a.startswith("--kill-on-invalid-dep") for a in argv)


def test_submit_argv_no_dependencies_no_dependency_options() -> None:
    argv = backend().submit_argv(request())
    assert not any(a.startswith(("--dependency", "--kill-on-invalid-dep")) for a in argv)
    assert argv[-1] == "/home/u/jf/jobs/7/job.sh"


def test_submit_argv_array_output_pattern() -> None:
    spec = JobSpec(["true"], array=parse_array("1-6%2"))
    argv = backend().submit_argv(request(spec))
    assert "--output=/home/u/jf/jobs/7/slurm-%A_%a.out" in argv
    # the array itself is a directive in the script, not an sbatch option
    assert not any(a.startswith("--array") for a in argv)


# -- sbatch --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "native"),
    [("sbatch-ok", "235"), ("sbatch-array", "251"), ("sbatch-name-with-pipe", "239")],
)
def test_parse_submit_recorded(name: str, native: str) -> None:
    assert backend().parse_submit(load(name)) == native


@pytest.mark.parametrize(
    ("stdout", "native"), [("123\n", "123"), ("123;cluster\n", "123"), ("123", "123")]
)
def test_parse_submit_parsable_forms(stdout: str, native: str) -> None:
    assert backend().parse_submit(CommandResult(("sbatch",), 0, stdout, "")) == native


@pytest.mark.parametrize("stdout", ["", "\n", "Submitted batch job 5\n"])
def test_parse_submit_without_id_raises(stdout: str) -> None:
    with pytest.raises(CommandError):
        backend().parse_submit(CommandResult(("sbatch",), 0, stdout, ""))


#: Not recorded (no QOS limits on the test cluster): the text SLURM prints when a
#: per-user submit limit is reached (src/common/slurm_errno.c, ESLURM_..._SUBMIT_LIMIT).
QOS_LIMIT = CommandResult(
    ("sbatch", "--parsable"),
    1,
    "",
    "sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
    "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
    "(job submit limit, user's size and/or time limits)\n",
)


@pytest.mark.parametrize(
    ("result", "transient"),
    [
        (load("sbatch-fail-partition"), False),
        (load("ctld-frozen-sbatch"), True),  # Socket timed out (and the job WAS created)
        (load("ctld-down-sbatch"), True),  # Unable to contact slurm controller
        (QOS_LIMIT, True),
    ],
    ids=["bad-partition", "socket-timed-out", "controller-down", "qos-submit-limit"],
)
def test_submit_is_transient(result: CommandResult, transient: bool) -> None:
    assert not result.ok
    assert backend().submit_is_transient(result) is transient


# -- squeue --------------------------------------------------------------------------------


def test_parse_queue_live_folded_pending_remainder() -> None:
    seen = parse_queue("squeue-live")
    # 251_[3-6%2] (one folded row) is expanded into its elements
    assert seen["251"] == {
        1: (JobState.RUNNING, None, None),
        2: (JobState.RUNNING, None, None),
        **{i: (JobState.PENDING, None, "JobArrayTaskLimit") for i in (3, 4, 5, 6)},
    }
    assert seen["246"] == {None: (JobState.RUNNING, None, None)}
    assert seen["252"] == {None: (JobState.PENDING, None, "Dependency")}


def test_parse_queue_array_live() -> None:
    seen = parse_queue("squeue-array-live")
    assert set(seen["251"]) == {1, 2, 3, 4, 5, 6}
    assert seen["251"][5] == (JobState.PENDING, None, "JobArrayTaskLimit")
    assert seen["256"] == {1: (JobState.RUNNING, None, None), 2: (JobState.RUNNING, None, None)}
    assert seen["250"] == {None: (JobState.RUNNING, None, None)}
    state, code, reason = seen["249"][None]
    assert (state, code) == (JobState.PENDING, None)
    assert reason is not None and reason.startswith("JobHeldUser: ")


@pytest.mark.parametrize(
    "name", ["squeue-live", "squeue-array-live", "squeue-final", "squeue-array-final"]
)
def test_parse_queue_drops_terminal_rows(name: str) -> None:
    """Finished rows carry no exit code: accounting must be asked for them."""
    recording = load(name)
    seen = parse_queue(name)
    terminal_rows = [
        line.split("|")[1]
        for line in recording.stdout.splitlines()
        if EXPECTED_STATE[line.split("|")[4]].is_terminal and line.split("|")[3] == "N/A"
    ]
    assert terminal_rows  # each capture has finished single jobs (235, 236, ...)
    for native in terminal_rows:
        assert not seen.get(native), f"{native} is finished, yet reported from squeue"
    for elements in seen.values():
        assert all(not element[0].is_terminal for element in elements.values())


def test_parse_queue_final() -> None:
    seen = parse_queue("squeue-array-final")
    assert not seen.get("251")  # every element ended: nothing left from squeue
    assert not seen.get("250")  # TIMEOUT
    assert seen["256"] == {1: (JobState.RUNNING, None, None), 2: (JobState.RUNNING, None, None)}
    never = seen["237"][None]
    assert never[0] is JobState.PENDING
    assert never[2] is not None and never[2].startswith("DependencyNeverSatisfied: ")
    assert "jobfleet cancel" in never[2]


def test_parse_queue_pipe_in_job_name(caplog: pytest.LogCaptureFixture) -> None:
    recorded = next(
        line for line in load("squeue-array-live").stdout.splitlines() if line.startswith("239|")
    )
    assert recorded.endswith("|my job | pipe")
    with caplog.at_level(logging.WARNING):
        parse_queue("squeue-array-live")  # must not choke on the extra separators
    assert caplog.records == []
    # The recorded row is COMPLETED (dropped as terminal); the same row while running
    # (derived from the recording, state changed) shows the columns are read right.
    running = recorded.replace("|COMPLETED|", "|RUNNING|")
    seen = squeue(CommandResult(load("squeue-array-live").argv, 0, running + "\n", ""), ["239"])
    assert seen == {"239": {None: (JobState.RUNNING, None, None)}}


def test_parse_queue_odd_array_ids() -> None:
    seen = squeue(load("squeue-array-held-odd-long"), ["357", "358"])
    assert set(seen["357"]) == {1, 3, 4, 5, 9}
    assert set(seen["358"]) == set(range(1, 200, 2))
    assert all(e[0] is JobState.PENDING for e in seen["358"].values())


def test_parse_queue_element_by_raw_id_is_keyed_by_array() -> None:
    seen = squeue(load("squeue-array-element-by-raw-id"), ["407"])
    assert seen == {"406": {1: (JobState.RUNNING, None, None)}}


#: The indices array 359 was submitted with (its recorded sbatch command).
IRREGULAR = [
    int(i) for i in (option(load("sbatch-array-irregular-held").argv, "array") or "").split(",")
]


def test_parse_queue_truncated_index_list_is_skipped_with_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        seen = squeue(load("squeue-array-irregular-held"), ["359"])
    assert seen == {}
    assert warnings_about(caplog, "cannot read array task list")
    full = squeue(load("squeue-array-irregular-held-bitstr0"), ["359"])
    assert sorted(i for i in full["359"] if i is not None) == IRREGULAR


def test_squeue_and_sacct_run_with_full_index_lists() -> None:
    """SLURM_BITSTR_LEN=0: squeue and sacct print whole index lists [*-bitstr0]."""
    runner = fake_slurm(squeue=load("squeue-array-final"), sacct=load("sacct-final"))
    backend(runner).poll([target("235"), target("251", indices=range(1, 7))])
    envs = dict(runner.envs)
    assert set(envs) == {"squeue", "sacct"}
    for program in ("squeue", "sacct"):
        env = envs[program]
        assert env is not None, program
        assert env["SLURM_BITSTR_LEN"] == "0"
        assert env.get("PATH") == os.environ.get("PATH")  # the rest is kept


@pytest.mark.parametrize(
    "name",
    ["squeue-unknown-single", "squeue-purged-single", "squeue-unknown-two", "squeue-purged-two"],
)
def test_parse_queue_unknown_ids_are_empty_not_an_error(name: str) -> None:
    recording = load(name)
    ids = (option(recording.argv, "jobs") or "").split(",")
    assert squeue(recording, ids) == {}


def test_parse_queue_unknown_single_is_rc_1() -> None:
    # the trap the test above covers: rc 1 that is not a failure
    recording = load("squeue-unknown-single")
    assert recording.returncode == 1
    assert "Invalid job id specified" in recording.stderr


@pytest.mark.parametrize(
    "name", ["ctld-down-squeue", "ctld-down-squeue-two", "ctld-frozen-squeue", "squeue-bad-id"]
)
def test_parse_queue_failure_raises(name: str) -> None:
    recording = load(name)
    ids = (option(recording.argv, "jobs") or "2").split(",")
    with pytest.raises(CommandError) as info:
        squeue(recording, ids)
    assert info.value.returncode == recording.returncode
    assert info.value.transient is True
    assert recording.stderr.strip()[:40] in str(info.value)


def test_queue_argv_matches_recorded_command() -> None:
    argv = backend().queue_argv(MAIN_IDS)
    assert argv == list(load("squeue-array-final").argv)


# -- sacct ---------------------------------------------------------------------------------


def test_parse_accounting_final() -> None:
    seen = parse_accounting("sacct-final")
    assert seen["235"] == {None: (JobState.COMPLETED, 0, None)}
    assert seen["236"] == {None: (JobState.FAILED, 3, None)}
    assert seen["238"] == {None: (JobState.FAILED, 137, None)}  # kill -9: 0:9
    assert seen["253"] == {None: (JobState.FAILED, 143, None)}  # scancel --full --signal=TERM
    assert seen["239"] == {None: (JobState.COMPLETED, 0, None)}  # "my job | pipe"
    assert seen["247"] == {None: (JobState.CANCELLED, None, "cancelled by root")}  # 0:0 -> None
    assert seen["248"] == {None: (JobState.CANCELLED, None, "cancelled by root")}
    assert seen["250"][None][0] is JobState.TIMEOUT
    assert seen["246"] == {None: (JobState.RUNNING, 0, None)}
    assert seen["240"] == {
        1: (JobState.COMPLETED, 0, None),
        3: (JobState.COMPLETED, 0, None),
        4: (JobState.FAILED, 2, None),
        5: (JobState.COMPLETED, 0, None),
        9: (JobState.COMPLETED, 0, None),  # 240_9 has the array's own raw id
    }
    assert seen["251"] == {
        **{i: (JobState.COMPLETED, 0, None) for i in (1, 2, 3, 4, 6)},
        5: (JobState.FAILED, 1, None),
    }
    assert seen["256"][3] == (JobState.CANCELLED, None, "cancelled by root")


def test_parse_accounting_live_pending_remainder() -> None:
    seen = parse_accounting("sacct-live")
    assert seen["251"][1][0] is JobState.RUNNING
    assert seen["251"][2][0] is JobState.RUNNING
    for index in (3, 4, 5, 6):  # 251_[3-6%2]
        assert seen["251"][index][0] is JobState.PENDING
    assert seen["250"][None][0] is JobState.RUNNING


#: The reason of a job SLURM shows cancelled without saying by whom (scontrol, squeue,
#: sacct after a controller restart).
NOT_SAID = "cancelled (SLURM did not say by whom)"


def test_parse_accounting_after_restart_signal_codes() -> None:
    # after a slurmctld restart the same jobs show CANCELLED|0:15 and TIMEOUT|0:15
    # (plain CANCELLED: who cancelled it is gone; this recording has no Timelimit)
    seen = parse_accounting("sacct-after-purge")
    assert seen["247"] == {None: (JobState.CANCELLED, 143, NOT_SAID)}
    assert seen["250"] == {None: (JobState.TIMEOUT, 143, "walltime limit exceeded")}
    assert seen["256"][3] == (JobState.CANCELLED, 143, NOT_SAID)


def test_parse_accounting_timeout_never_reports_exit_code_0() -> None:
    code = parse_accounting("sacct-final")["250"][None][1]
    assert code is None or code >= 128


def test_parse_accounting_keeps_only_the_jobs_asked_for() -> None:
    be = backend()
    argv = be.accounting_argv(targets_for(MAIN_IDS, 1.8e9))
    assert argv is not None
    # every recorded job in the output: the parser itself keeps only those asked for
    seen = be.read_accounting(replay(load("sacct-final"), argv), context(["236", "251"]))
    assert set(seen) == {"236", "251"}


def test_parse_accounting_held_arrays() -> None:
    seen = parse_accounting("sacct-array-held-cancelled", ["357", "358"])
    # a cancelled never-started array is ONE record: every element gets it
    assert seen["357"] == {
        i: (JobState.CANCELLED, None, "cancelled by root") for i in (1, 3, 4, 5, 9)
    }
    assert set(seen["358"]) == set(range(1, 200, 2))
    pending = parse_accounting("sacct-array-held-odd-long", ["357", "358"])
    assert all(e[0] is JobState.PENDING for e in pending["357"].values())


def test_parse_accounting_truncated_index_list_is_skipped_with_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        seen = parse_accounting("sacct-array-irregular-cancelled", ["359"])
    assert warnings_about(caplog, "cannot read job id")
    assert seen == {}


def test_parse_job_id_truncated_list_is_refused() -> None:
    with pytest.raises(SpecError):
        parse_job_id("359_[1-2,4,7,11,16,22,29,37,46,56,67,79,92,106,121,137,154,172,19...]")


def test_parse_job_id_truncated_list_without_dots_is_refused() -> None:
    # fixed-width sacct output cuts with "+" [sacct-fixed-width-truncation]: refused
    with pytest.raises(SpecError):
        parse_job_id("357_[1,3-5,+")


def test_parse_accounting_full_index_list() -> None:
    full = parse_accounting("sacct-array-irregular-cancelled-bitstr0", ["359"])
    assert sorted(i for i in full["359"] if i is not None) == IRREGULAR
    assert all(e == (JobState.CANCELLED, None, "cancelled by root") for e in full["359"].values())


def test_parse_accounting_unknown_id_is_empty() -> None:
    assert parse_accounting("sacct-unknown", ["999999"]) == {}


def test_parse_accounting_sets_accounting_true() -> None:
    be = backend()
    assert be.accounting is None
    parse_accounting("sacct-final", be=be)
    assert be.accounting is True


def test_parse_accounting_disabled(caplog: pytest.LogCaptureFixture) -> None:
    be = backend()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert (
                be.read_accounting(load("sacct-accounting-disabled"), context(["1", "2", "3"]))
                == {}
            )
    assert be.accounting is False
    assert be.accounting_argv(targets_for(["1"], 1.8e9)) is None  # later polls do not ask
    assert len(warnings_about(caplog, "accounting is not available")) == 1


def test_parse_accounting_dbd_down_is_an_error_not_missing_accounting() -> None:
    be = backend()
    with pytest.raises(CommandError) as info:
        be.read_accounting(load("sacct-dbd-down"), context(["1", "2", "3"]))
    assert info.value.transient is True
    assert be.accounting is None  # nothing concluded: the next poll asks again


def test_accounting_argv_matches_recorded_command() -> None:
    submitted = dt.datetime(2026, 11, 21, 9, 6, 54).timestamp()
    argv = backend().accounting_argv(targets_for(MAIN_IDS, submitted))
    assert argv is not None
    recorded = load("sacct-final").argv
    assert argv[:3] == list(recorded[:3])
    assert "--allocations" not in argv  # steps too: MaxRSS is on them
    assert option(argv, "jobs") == option(recorded, "jobs")
    start = dt.datetime.fromisoformat(option(argv, "starttime") or "")
    assert start <= dt.datetime.fromtimestamp(submitted)  # never after the first submission
    # sacct with --parsable2: every column asked for exists in the recorded capture (and
    # those asked for since, in the latest one)
    assert set(columns(argv)) <= set(columns(recorded)) | _ASKED_LATER
    assert set(columns(argv)) <= set(columns(load("same-event-sacct").argv)) | set(USAGE_COLUMNS)
    # The latest recording has every column, and the options, the backend asks for.
    latest = load("usage-sacct-ended").argv
    assert columns(argv) == columns(latest)
    assert [a for a in argv if not a.startswith(("--jobs=", "--starttime="))] == [
        a for a in latest if not a.startswith(("--jobs=", "--starttime="))
    ]


# -- scontrol ------------------------------------------------------------------------------


def test_parse_memory_finished_array() -> None:
    seen = slurm_parse.parse_memory(load("scontrol-one-finished-array"), context(["251"]))
    assert seen == {
        "251": {
            **{i: (JobState.COMPLETED, 0, None) for i in (1, 2, 3, 4, 6)},
            5: (JobState.FAILED, 1, "NonZeroExitCode"),
        }
    }


def test_parse_memory_failed_and_timeout() -> None:
    failed = slurm_parse.parse_memory(load("scontrol-one-finished-failed"), context(["236"]))
    assert failed == {"236": {None: (JobState.FAILED, 3, "NonZeroExitCode")}}
    timeout = slurm_parse.parse_memory(load("scontrol-one-finished-timeout"), context(["250"]))
    # TimeLimit=00:01:00 in the same words as on every backend
    assert timeout == {"250": {None: (JobState.TIMEOUT, 143, "walltime limit exceeded (00:01:00)")}}


@pytest.mark.parametrize(
    ("name", "ids"),
    [("scontrol-one-pending-dependency-never", ["237"]), ("scontrol-one-array", ["251"])],
)
def test_parse_memory_ignores_unfinished(name: str, ids: list[str]) -> None:
    # pending (DependencyNeverSatisfied), running elements and the pending meta record
    assert slurm_parse.parse_memory(load(name), context(ids)) == {}


def test_parse_memory_all_jobs_only_the_ones_asked_for() -> None:
    seen = slurm_parse.parse_memory(
        load("scontrol-all-final"), context(["236", "247", "248", "240", "256", "246"])
    )
    assert set(seen) == {"236", "247", "248", "240", "256"}  # 246 still runs
    assert seen["247"] == {None: (JobState.CANCELLED, 143, NOT_SAID)}  # ExitCode=0:15
    held = "cancelled while waiting (JobHeldUser) (SLURM did not say by whom)"
    assert seen["248"] == {None: (JobState.CANCELLED, None, held)}  # 0:0
    assert seen["240"][4] == (JobState.FAILED, 2, "NonZeroExitCode")
    assert seen["240"][9] == (JobState.COMPLETED, 0, None)  # JobId=240 is element 9
    assert seen["256"] == {3: (JobState.CANCELLED, 143, NOT_SAID)}  # 1 and 2 still run


def test_parse_memory_controller_down_raises() -> None:
    with pytest.raises(CommandError):
        slurm_parse.parse_memory(load("ctld-down-scontrol"), context(["2"]))


def test_memory_argv_matches_recorded_command() -> None:
    assert backend().memory_argv() == list(load("scontrol-all-final").argv)


# -- the poll chain ------------------------------------------------------------------------


def test_poll_jobs_in_squeue_no_accounting_call() -> None:
    runner = fake_slurm(squeue=load("squeue-array-live"))
    be = backend(runner)
    result = be.poll(
        [target("246"), target("249"), target("237"), target("251", indices=range(1, 7))]
    )
    assert runner.count("squeue") == 1
    assert runner.count("sacct") == 0
    assert runner.count("scontrol") == 0
    assert result["246"] == NativeStatus(JobState.RUNNING)
    assert result["249"].state is JobState.PENDING
    assert (result["237"].reason or "").startswith("DependencyNeverSatisfied")
    arr = result["251"]
    assert arr.state is JobState.RUNNING
    assert {i: e[0] for i, e in arr.elements.items()} == {
        1: JobState.RUNNING,
        2: JobState.RUNNING,
        3: JobState.PENDING,
        4: JobState.PENDING,
        5: JobState.PENDING,
        6: JobState.PENDING,
    }


FINISHED = ["235", "236", "238", "239", "247", "253"]


@pytest.mark.parametrize(
    ("squeue", "sacct"),
    [("squeue-array-final", "sacct-final"), ("squeue-array-purged", "sacct-after-purge")],
    ids=["finished-in-squeue", "purged-from-squeue"],
)
def test_poll_jobs_gone_from_squeue_one_accounting_call(squeue: str, sacct: str) -> None:
    runner = fake_slurm(squeue=load(squeue), sacct=load(sacct))
    be = backend(runner)
    targets = [target(n) for n in FINISHED] + [
        target("240", indices=(1, 3, 4, 5, 9)),
        target("251", indices=range(1, 7)),
        target("246"),
    ]
    result = be.poll(targets)
    assert runner.count("squeue") == 1
    # the jobs' records and their steps, 238's too (killed by SIGKILL: kill -9 $$)
    assert runner.count("sacct") == 1
    assert runner.count("scontrol") == 0
    (sacct_argv,) = (a for a in runner.calls if a[0] == "sacct")
    assert sorted((option(sacct_argv, "jobs") or "").split(",")) == sorted(
        [*FINISHED, "240", "251"]
    )
    assert result["235"] == NativeStatus(JobState.COMPLETED, 0)
    assert result["236"] == NativeStatus(JobState.FAILED, 3)
    assert result["238"] == NativeStatus(JobState.FAILED, 137)
    assert result["253"] == NativeStatus(JobState.FAILED, 143)
    assert result["239"] == NativeStatus(JobState.COMPLETED, 0)
    assert result["247"].state is JobState.CANCELLED
    assert result["246"] == NativeStatus(JobState.RUNNING)  # from squeue
    assert result["240"].state is JobState.FAILED
    assert result["240"].elements[4] == (JobState.FAILED, 2, None)
    assert result["251"].state is JobState.FAILED
    assert result["251"].elements[5] == (JobState.FAILED, 1, None)
    assert result["251"].elements[6] == (JobState.COMPLETED, 0, None)


def test_poll_single_purged_job_rc_1_then_accounting() -> None:
    runner = fake_slurm(squeue=load("squeue-purged-single"), sacct=load("sacct-after-purge"))
    result = backend(runner).poll([target("235")])
    assert result == {"235": NativeStatus(JobState.COMPLETED, 0)}
    assert runner.count("sacct") == 1


def test_poll_array_merges_squeue_and_accounting_per_element() -> None:
    # after the purge: 256_1 and 256_2 still run (squeue), 256_3 was cancelled (sacct only)
    runner = fake_slurm(squeue=load("squeue-array-purged"), sacct=load("sacct-after-purge"))
    result = backend(runner).poll([target("256", indices=(1, 2, 3))])
    assert runner.count("sacct") == 1
    status = result["256"]
    assert status.state is JobState.RUNNING
    assert status.elements == {
        1: (JobState.RUNNING, None, None),
        2: (JobState.RUNNING, None, None),
        3: (JobState.CANCELLED, 143, NOT_SAID),
    }


def test_poll_accounting_does_not_override_squeue() -> None:
    # squeue (live) says pending for 251_3..6; sacct (final) would say completed.
    # squeue lists every element, so accounting is not even asked.
    runner = fake_slurm(squeue=load("squeue-array-live"), sacct=load("sacct-final"))
    result = backend(runner).poll([target("251", indices=range(1, 7))])
    assert runner.count("sacct") == 0
    assert result["251"].elements[3][0] is JobState.PENDING


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


def test_poll_without_accounting_uses_scontrol_then_exit_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = fake_slurm(
        squeue=load("squeue-array-final"),
        sacct=load("sacct-accounting-disabled"),
        scontrol=load("scontrol-all-final"),
    )
    be = backend(runner)
    done, partial, array, forgotten = (tmp_path / d for d in ("done", "partial", "array", "arr251"))
    write(done / "exit_code", "3\n")
    write(partial / "exit_code", "0")  # still being written: no newline yet
    write(array / "exit_code.1", "0\n")
    write(array / "exit_code.2", "3\n")
    write(forgotten / "exit_code.5", "0\n")  # scontrol's FAILED 1 wins over it
    # When they ran: the times of the job script's files (accounting would tell otherwise).
    write(done / "started", "1\n")
    for path, at in [(done / "started", 100.0), (done / "exit_code", 200.0)]:
        os.utime(path, (at, at))
    os.utime(array / "exit_code.1", (300.0, 300.0))  # its start not known
    targets = [
        target("236"),
        target("250"),
        target("251", forgotten, range(1, 7)),
        target("900001", done),
        target("900002", partial),
        target("900003", array, (1, 2, 3)),
    ]
    with caplog.at_level(logging.WARNING):
        first = be.poll(targets)
        second = be.poll(targets)
    assert first == second
    assert runner.count("squeue") == 2
    assert runner.count("sacct") == 1  # asked once, then known to be missing
    assert runner.count("scontrol") == 2
    assert be.accounting is False
    assert len(warnings_about(caplog, "accounting is not available")) == 1
    assert first["236"] == NativeStatus(JobState.FAILED, 3, "NonZeroExitCode")
    assert first["250"] == NativeStatus(JobState.TIMEOUT, 143, "walltime limit exceeded (00:01:00)")
    assert first["251"].elements[5] == (JobState.FAILED, 1, "NonZeroExitCode")
    assert first["900001"] == NativeStatus(
        JobState.FAILED, 3, "from the job's exit-code file", usage=Usage(None, 100.0, 200.0)
    )
    assert "900002" not in first  # unknown: the caller keeps its last state
    assert first["900003"].elements == {
        1: (JobState.COMPLETED, 0, "from the job's exit-code file"),
        2: (JobState.FAILED, 3, "from the job's exit-code file"),
    }
    assert first["900003"].state is JobState.FAILED
    assert first["900003"].element_usage[1] == Usage(ended_at=300.0)


def test_poll_accounting_program_missing_is_missing_accounting() -> None:
    missing = CommandError(("sacct",), "sacct: command not found on PATH")
    runner = fake_slurm(
        squeue=load("squeue-array-final"), sacct=missing, scontrol=load("scontrol-all-final")
    )
    be = backend(runner)
    assert be.poll([target("236")]) == {"236": NativeStatus(JobState.FAILED, 3, "NonZeroExitCode")}
    assert be.accounting is False


@pytest.mark.parametrize(
    "failure",
    [
        CommandError(("squeue",), "squeue did not answer within 60s", transient=True),
        load("ctld-down-squeue-two"),
        load("ctld-frozen-squeue"),
    ],
    ids=["timeout", "controller-down", "controller-frozen"],
)
def test_poll_squeue_failure_raises_and_reports_nothing(failure: Answer) -> None:
    runner = fake_slurm(
        squeue=failure, sacct=load("sacct-final"), scontrol=load("scontrol-all-final")
    )
    with pytest.raises(CommandError):
        backend(runner).poll([target("235"), target("246")])
    assert [a[0] for a in runner.calls] == ["squeue"]


@pytest.mark.parametrize(
    "failure",
    [
        CommandError(("sacct",), "sacct did not answer within 60s", transient=True),
        load("sacct-dbd-down"),
    ],
    ids=["timeout", "dbd-down"],
)
def test_poll_accounting_failure_raises(failure: Answer) -> None:
    runner = fake_slurm(
        squeue=load("squeue-array-final"), sacct=failure, scontrol=load("scontrol-all-final")
    )
    be = backend(runner)
    with pytest.raises(CommandError):
        be.poll([target("235")])
    assert runner.count("scontrol") == 0
    assert be.accounting is None


def test_poll_thousand_jobs_one_squeue_one_sacct() -> None:
    running_row = next(
        r for r in load("squeue-array-live").stdout.splitlines() if r.startswith("246|")
    )
    done_row = next(r for r in load("sacct-final").stdout.splitlines() if r.startswith("235|"))
    ids = [str(n) for n in range(300000, 301000)]
    running, done = ids[::2], ids[1::2]
    squeue = replace(
        load("squeue-array-live"),
        stdout="".join(running_row.replace("246", n) + "\n" for n in running),
    )
    sacct = replace(
        load("sacct-final"), stdout="".join(done_row.replace("235", n) + "\n" for n in done)
    )
    runner = fake_slurm(squeue=squeue, sacct=sacct)
    result = backend(runner).poll([target(n) for n in ids])
    assert runner.count("squeue") == 1
    assert runner.count("sacct") == 1
    assert runner.count("scontrol") == 0
    sacct_argv = next(a for a in runner.calls if a[0] == "sacct")
    assert (option(sacct_argv, "jobs") or "").split(",") == done
    assert len(result) == 1000
    assert {result[n].state for n in running} == {JobState.RUNNING}
    assert all(result[n] == NativeStatus(JobState.COMPLETED, 0) for n in done)


def test_poll_nothing_to_poll_runs_nothing() -> None:
    runner = fake_slurm()
    assert backend(runner).poll([]) == {}
    assert runner.calls == []


# -- submit retries ------------------------------------------------------------------------

#: ``squeue --name=...`` matching nothing: rc 0 and empty, as a filter that matches no
#: job answers (same as squeue-finished-nostates; not captured with --name).
NONE_FOUND = CommandResult(("squeue",), 0, "", "")
#: sacct --name answering that it has no such job either.
NONE_IN_ACCOUNTING = CommandResult(("sacct",), 0, "", "")


def found_by_name() -> CommandResult:
    """``squeue --format=%F`` for job 5, which the timed-out sbatch created anyway."""
    recording = load("ctld-frozen-after-resume-squeue")
    row = next(
        r for r in rows(recording.stdout, columns(recording.argv), "%j") if r["%j"] == "ctld-frozen"
    )
    return CommandResult(("squeue",), 0, row["%F"] + "\n", "")


def test_submit_ok() -> None:
    runner = fake_slurm(sbatch=load("sbatch-ok"))
    assert backend(runner).submit(request()) == "235"
    assert runner.count("sbatch") == 1
    assert runner.count("squeue") == 0


def test_submit_transient_then_not_found_resubmits() -> None:
    runner = fake_slurm(
        sbatch=[load("ctld-frozen-sbatch"), load("sbatch-ok")],
        squeue=NONE_FOUND,
        sacct=NONE_IN_ACCOUNTING,
    )
    assert backend(runner).submit(request()) == "235"
    # Not in the queue, nor in accounting (a job that ended and was purged): resubmit.
    assert [a[0] for a in runner.calls] == ["sbatch", "squeue", "sacct", "sbatch"]
    assert "--name=jfabc123-7-train" in runner.calls[2]
    lookup = runner.calls[1]
    assert "--name=jfabc123-7-train" in lookup
    assert "--states=all" in lookup  # a job that already ended counts as found


def test_submit_transient_then_found_does_not_resubmit() -> None:
    runner = fake_slurm(
        sbatch=[load("ctld-frozen-sbatch"), load("sbatch-ok")], squeue=found_by_name()
    )
    assert backend(runner).submit(request()) == "5"
    assert runner.count("sbatch") == 1


@pytest.mark.parametrize(
    "lookup_failure",
    [load("ctld-down-squeue"), CommandError(("squeue",), "squeue did not answer", transient=True)],
    ids=["controller-down", "timeout"],
)
def test_submit_transient_then_lookup_fails_never_resubmits(lookup_failure: Answer) -> None:
    runner = fake_slurm(
        sbatch=[load("ctld-frozen-sbatch"), load("sbatch-ok")], squeue=lookup_failure
    )
    with pytest.raises(SubmitError) as info:
        backend(runner, submit_retries=3).submit(request())
    assert info.value.maybe_submitted is True
    assert runner.count("sbatch") == 1
    assert runner.count("squeue") == 3
    assert "cannot tell whether it was submitted" in str(info.value)


def test_submit_transient_every_time_gives_up_maybe_submitted() -> None:
    runner = fake_slurm(
        sbatch=load("ctld-down-sbatch"), squeue=NONE_FOUND, sacct=NONE_IN_ACCOUNTING
    )
    with pytest.raises(SubmitError) as info:
        backend(runner, submit_retries=3).submit(request())
    assert info.value.maybe_submitted is True
    assert runner.count("sbatch") == 4
    assert runner.count("squeue") == 3
    assert "gave up after 4 attempts" in str(info.value)


def test_submit_permanent_failure_at_once() -> None:
    runner = fake_slurm(sbatch=load("sbatch-fail-partition"), squeue=NONE_FOUND)
    with pytest.raises(SubmitError) as info:
        backend(runner).submit(request())
    assert info.value.maybe_submitted is False
    assert runner.count("sbatch") == 1
    assert runner.count("squeue") == 0
    assert "Invalid partition name specified" in str(info.value)


def test_submit_program_missing_is_permanent() -> None:
    runner = fake_slurm(sbatch=CommandError(("sbatch",), "sbatch: command not found on PATH"))
    with pytest.raises(SubmitError) as info:
        backend(runner).submit(request())
    assert info.value.maybe_submitted is False
    assert runner.count("sbatch") == 1


def test_submit_qos_limit_retries() -> None:
    runner = fake_slurm(
        sbatch=[QOS_LIMIT, load("sbatch-ok")], squeue=NONE_FOUND, sacct=NONE_IN_ACCOUNTING
    )
    assert backend(runner).submit(request()) == "235"
    assert runner.count("sbatch") == 2


def test_submit_unreadable_success_is_a_submit_error() -> None:
    runner = fake_slurm(sbatch=CommandResult(("sbatch",), 0, "", ""))
    with pytest.raises(SubmitError) as info:
        backend(runner).submit(request())
    assert info.value.maybe_submitted is True


# -- 23.11: reconstructed from documentation ----------------------------------------------


def test_23_11_squeue_state_codes_text() -> None:
    text = (FIXTURES / "23.11" / "squeue-states.out").read_text(encoding="utf-8")
    recorded = rows(text, columns(load("squeue-live").argv), "%j")
    ids = [row["%A"] for row in recorded]
    result = CommandResult(load("squeue-array-live").argv, 0, text, "")
    seen = squeue(result, ids)
    assert {row["%T"] for row in recorded} <= set(STATE_MAP)
    for row in recorded:
        expected = EXPECTED_STATE[row["%T"]]
        # COMPLETING is ending (e.g. just after scancel): accounting tells how it ended.
        if expected.is_terminal or row["%T"] == "COMPLETING":
            assert not seen.get(row["%A"]), row
        else:
            assert seen[row["%A"]][None][0] is expected, row


def test_23_11_sacct_state_codes_text(caplog: pytest.LogCaptureFixture) -> None:
    text = (FIXTURES / "23.11" / "sacct-states.out").read_text(encoding="utf-8")
    recorded = rows(text, columns(load("sacct-final").argv), "JobName")
    ids = [row["JobID"] for row in recorded]
    with caplog.at_level(logging.WARNING):
        seen = parse_accounting("sacct-states", ids, version="23.11")
    assert caplog.records == []
    for row in recorded:
        word = row["State"].split(" ", 1)[0]
        assert seen[row["JobID"]][None][0] is EXPECTED_STATE[word], row
    # only what is documented: the uid detail (exit codes there are not verified)
    assert seen["71"][None][2] == "cancelled by alice"


def test_the_backend_never_asks_for_json() -> None:
    # 22.05's --json output is wrong about exit codes (and squeue --json ignores -j):
    # the 23.11 JSON fixtures document the format, and no command of ours asks for it.
    for name in ("squeue-json.json", "sacct-json.json"):
        assert json.loads((FIXTURES / "23.11" / name).read_text(encoding="utf-8"))["jobs"]
    be = backend()
    for argv in (
        be.queue_argv(["1"]),
        be.accounting_argv(targets_for(["1"], 1.8e9)),
        be.memory_argv(),
    ):
        assert argv is not None and "--json" not in argv


@pytest.mark.parametrize("lagging", ["RUNNING", "PENDING"])
def test_accounting_lagging_behind_a_cancel_never_moves_a_job_backwards(lagging: str) -> None:
    """Just after scancel, squeue shows COMPLETING while sacct may still say RUNNING, or
    even PENDING (seen on 22.05): the job is reported still ending, and stays so while
    squeue shows it COMPLETING even once sacct has its final row; then how it ended."""
    answers = {
        "squeue": "77|77|N/A|N/A|COMPLETING|None|jfx-1-sleep\n",
        "sacct": f"77|77|{lagging}|0:0\n",
    }

    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, answers[argv[0]], "")

    be = backend(ScriptedRunner(respond))
    (status,) = be.poll(targets_for(["77"], 1.8e9)).values()
    assert (status.state, status.exit_code) == (JobState.RUNNING, None)
    answers["sacct"] = "77|77|CANCELLED by 0|0:15\n"
    (status,) = be.poll(targets_for(["77"], 1.8e9)).values()
    assert (status.state, status.exit_code) == (JobState.RUNNING, None)
    answers["squeue"] = "77|77|N/A|N/A|CANCELLED|None|jfx-1-sleep\n"
    (status,) = be.poll(targets_for(["77"], 1.8e9)).values()
    assert status.state is JobState.CANCELLED


#: The jobs of capture-22.05-cancel.sh: 2 running and 60 held, cancelled in one scancel.
CANCEL_LAG = dict(
    line.split("=", 1)
    for line in (FIXTURES / "22.05" / "cancel-lag-jobs.env").read_text().split()
    if "=" in line
)


def test_a_cancel_squeue_shows_is_cancelled_at_once_while_sacct_lags() -> None:
    """22.05/cancel-lag-*: right after one scancel, squeue shows every job CANCELLED (one
    COMPLETING) while sacct still shows most held ones PENDING. They read cancelled at
    once (who cancelled them is sacct's to say, later); none reads pending or running,
    nothing else is asked."""
    running, held = CANCEL_LAG["running"].split(","), CANCEL_LAG["held"].split(",")
    ids = CANCEL_LAG["IDS"].split(",")
    # What the recordings show, or this test would not test the lag.
    queue = {r["%A"]: r for r in rows(load("cancel-lag-squeue").stdout, QUEUE_COLS, "%j")}
    acct = {r["JobID"]: r for r in rows(load("cancel-lag-sacct").stdout, SACCT_COLS, "JobName")}
    lagging = [n for n in held if acct[n]["State"] == "PENDING"]
    assert len(lagging) > 40 and all(queue[n]["%T"] == "CANCELLED" for n in held)
    assert {queue[n]["%T"] for n in running} == {"CANCELLED", "COMPLETING"}

    runner = fake_slurm(squeue=load("cancel-lag-squeue"), sacct=load("cancel-lag-sacct"))
    result = backend(runner).poll(targets_for(ids, _local("2026-12-06T14:36:15")))
    assert [c[0] for c in runner.calls] == ["squeue", "sacct"]  # no scontrol
    # The one squeue still shows COMPLETING is still being stopped: sacct's final row
    # comes first, before its job script has recorded the code its command ended with
    # (seen live: the exit-code file appears as squeue drops COMPLETING).
    completing = [n for n in running if queue[n]["%T"] == "COMPLETING"]
    assert acct[completing[0]]["State"].startswith("CANCELLED")
    assert {(result[n].state, result[n].reason) for n in completing} == {
        (JobState.RUNNING, "ending; SLURM is still stopping its processes (COMPLETING)")
    }
    stopped = [n for n in ids if n not in completing]
    assert {result[n].state for n in stopped} == {JobState.CANCELLED}
    assert {result[n].reason for n in lagging} == {
        "cancelled while waiting (JobHeldUser) (SLURM did not say by whom)"
    }
    assert {result[n].reason for n in stopped if n not in lagging} == {"cancelled by root"}
    assert all(result[n].exit_code is None for n in stopped)  # "0:0": no exit code

    # Once sacct caught up: who cancelled every one of them.
    runner = fake_slurm(
        squeue=load("cancel-lag-squeue-settled"), sacct=load("cancel-lag-sacct-settled")
    )
    result = backend(runner).poll(targets_for(ids, _local("2026-12-06T14:36:15")))
    assert {(s.state, s.reason) for s in result.values()} == {
        (JobState.CANCELLED, "cancelled by root")
    }


def test_a_held_array_squeue_shows_cancelled_is_cancelled_while_sacct_has_it_pending() -> None:
    # squeue --array after the cancel (every element CANCELLED), and sacct's one folded
    # row of the held array from before it (357_[1,3-5,9] PENDING), as a lagging sacct.
    runner = fake_slurm(
        squeue=load("squeue-array-held-cancelled-expanded"), sacct=load("sacct-array-held-odd-long")
    )
    result = backend(runner).poll([target("357", indices=(1, 3, 4, 5, 9))])
    assert runner.count("scontrol") == 0
    assert result["357"].state is JobState.CANCELLED
    assert {e[0] for e in result["357"].elements.values()} == {JobState.CANCELLED}


def test_a_cancel_squeue_shows_is_cancelled_while_sacct_does_not_list_it_yet() -> None:
    # Right after sbatch a job is not in sacct yet (sacct-array-irregular-held): a cancel
    # squeue shows is a cancel, for an element scontrol does not list one by one too.
    answers = {
        "squeue": "7_2|7|7|2|CANCELLED|JobHeldUser|x\n7_1|8|7|1|RUNNING|None|x\n",
        "sacct": "",
    }

    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, answers[argv[0]], "")

    runner = ScriptedRunner(respond)
    result = backend(runner).poll([target("7", indices=(1, 2))])
    assert runner.count("scontrol") == 0
    assert result["7"].elements == {
        1: (JobState.RUNNING, None, None),
        2: (
            JobState.CANCELLED,
            None,
            "cancelled while waiting (JobHeldUser) (SLURM did not say by whom)",
        ),
    }


@pytest.mark.parametrize(
    ("ended", "scontrol", "expected"),
    [
        ("COMPLETED", "JobState=COMPLETED Reason=None ExitCode=0:0", (JobState.COMPLETED, 0)),
        ("FAILED", "JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0", (JobState.FAILED, 3)),
        ("TIMEOUT", "JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15", (JobState.TIMEOUT, 143)),
    ],
)
@pytest.mark.parametrize("lagging", ["RUNNING", "PENDING"])
def test_an_end_squeue_shows_is_never_walked_back_nor_read_without_its_exit_code(
    ended: str, scontrol: str, expected: tuple[JobState, int], lagging: str
) -> None:
    """squeue shows a final state, without an exit code; sacct still lags. The end is
    not walked back to running, nor taken without its exit code: the controller's
    memory (scontrol, which squeue reads too) has both, as for a job sacct lacks."""
    answers = {
        "squeue": f"77|77|77|N/A|{ended}|None|jfx-1-x\n",
        "sacct": f"77|77|{lagging}|0:0\n",
        "scontrol": f"JobId=77 JobName=jfx-1-x {scontrol}\n",
    }

    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, answers[argv[0]], "")

    runner = ScriptedRunner(respond)
    (status,) = backend(runner).poll(targets_for(["77"], 1.8e9)).values()
    assert (status.state, status.exit_code) == expected
    assert [c[0] for c in runner.calls] == ["squeue", "sacct", "scontrol"]


def test_a_completed_squeue_shows_takes_its_exit_code_file_when_nothing_else_knows(
    tmp_path: Path,
) -> None:
    # squeue COMPLETED, sacct still RUNNING, scontrol purged it already: the job's
    # exit-code file, never "completed" without a code, never "running" again.
    from jobfleet.jobdir import exit_code_path

    answers = {
        "squeue": "77|77|77|N/A|COMPLETED|None|jfx-1-x\n",
        "sacct": "77|77|RUNNING|0:0\n",
        "scontrol": "",
    }

    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, answers[argv[0]], "")

    job = target("77", tmp_path)
    be = backend(ScriptedRunner(respond))
    assert be.poll([job]) == {}  # nobody can tell yet: the last known state stays
    write(Path(exit_code_path(str(tmp_path), None)), "0\n")
    (status,) = be.poll([job]).values()
    assert (status.state, status.exit_code) == (JobState.COMPLETED, 0)


def test_a_failed_command_keeps_the_exit_code_its_script_recorded(tmp_path: Path) -> None:
    """sacct shows a job that exited 137 (command killed by SIGKILL) as 9:0; the job
    script's exit-code file says 137, and that is what is reported."""
    from jobfleet.jobdir import exit_code_path

    answers = {"squeue": "", "sacct": "78|78|FAILED|9:0\n79|79|FAILED|3:0\n"}

    def respond(argv: tuple[str, ...]) -> CommandResult:
        return CommandResult(argv, 0, answers[argv[0]], "")

    targets = [
        PollTarget("1", "78", str(tmp_path / "a"), 1.8e9),
        PollTarget("2", "79", str(tmp_path / "b"), 1.8e9),
    ]
    for target, code in zip(targets, ("137", "3"), strict=True):
        Path(target.job_dir).mkdir()
        Path(exit_code_path(target.job_dir, None)).write_text(f"{code}\n")
    statuses = backend(ScriptedRunner(respond)).poll(targets)
    assert (statuses["78"].state, statuses["78"].exit_code) == (JobState.FAILED, 137)
    assert (statuses["79"].state, statuses["79"].exit_code) == (JobState.FAILED, 3)


# -- jobs killed for their memory (JobAcctGatherParams=OverMemoryKill, oom-* fixtures) -----

OOM_ID = {
    key: value.replace("\\,", ",")  # saved with printf %q
    for key, value in (
        line.split("=", 1)
        for line in (FIXTURES / "22.05" / "oom-jobs.env").read_text(encoding="utf-8").splitlines()
    )
}


def test_parse_accounting_over_memory_kill_is_out_of_memory() -> None:
    # The poll's sacct lists the steps (no --allocations): a memory kill's batch step,
    # "CANCELLED by 0", is read in the same pass as its job's FAILED 0:9.
    ids = OOM_ID["IDS"].split(",")
    runner = fake_slurm()
    seen = parse_accounting("oom-sacct-steps-final", ids, backend(runner))
    assert runner.calls == []  # no second sacct for the batch steps
    oom = JobState.OUT_OF_MEMORY
    steps = load("oom-sacct-steps-final").stdout.splitlines()
    max_rss = next(r for r in steps if r.startswith(f"{OOM_ID['J_OOM']}.batch|")).split("|")[-1]
    assert max_rss.endswith("K")
    assert seen[OOM_ID["J_OOM"]] == {
        None: (
            oom,
            137,
            f"memory limit exceeded (MaxRSS {max_rss}): killed by SLURM for using more than"
            " it requested",
        )
    }
    assert seen[OOM_ID["J_LATE"]][None][0] is oom
    assert seen[OOM_ID["J_MPC"]][None][0] is oom  # --mem-per-cpu=30M -c 2
    assert seen[OOM_ID["J_ARR"]][1] == (JobState.COMPLETED, 0, None)
    assert seen[OOM_ID["J_ARR"]][2][0] is oom
    # SIGKILL from elsewhere: the batch step is plain CANCELLED, not "CANCELLED by 0"
    assert seen[OOM_ID["J_SELF"]] == {None: (JobState.FAILED, 137, None)}  # kill -9 $$
    assert seen[OOM_ID["J_BKILL"]] == {None: (JobState.FAILED, 137, None)}  # scancel --batch
    assert seen[OOM_ID["J_UNDER"]] == {None: (JobState.COMPLETED, 0, None)}
    assert seen[OOM_ID["J_CANCEL"]][None][0] is JobState.CANCELLED


@pytest.mark.parametrize(
    ("steps", "poll"),
    [
        ("oom-sacct-batch-steps", "oom-sacct-steps-final"),
        ("same-event-sacct-batch-oom", "same-event-sacct-steps"),
    ],
)
def test_the_batch_steps_of_killed_jobs_are_in_the_poll_sacct_already(
    steps: str, poll: str
) -> None:
    """What the second sacct (``--jobs=ID.batch``, asked until the poll listed steps)
    answered is in the poll's one sacct: the same rows, the same states and MaxRSS."""
    asked = load(steps)
    cols = columns(asked.argv)
    wanted = set((option(asked.argv, "jobs") or "").split(","))
    listed = {
        row["JobID"]: row
        for row in rows(load(poll).stdout, columns(load(poll).argv), "JobName")
        if row["JobID"] in wanted
    }
    answered = rows(asked.stdout, cols, "JobName")
    assert sorted(r["JobID"] for r in answered) == sorted(listed)
    for row in answered:
        shared = [c for c in cols if c in listed[row["JobID"]]]
        assert shared, cols
        assert {c: row[c] for c in shared} == {c: listed[row["JobID"]][c] for c in shared}
    # the usage recordings, made with the poll's own sacct, list batch steps too
    assert any(
        r.split("|", 1)[0].endswith(".batch") for r in load("usage-sacct-ended").stdout.splitlines()
    )


def test_a_sigkill_whose_steps_are_not_listed_stays_failed() -> None:
    # A recording made with --allocations (no step rows): nothing tells a memory kill.
    ids = OOM_ID["IDS"].split(",")
    seen = parse_accounting("oom-sacct-final", ids)
    assert seen[OOM_ID["J_OOM"]] == {None: (JobState.FAILED, 137, None)}


def test_parse_memory_leaves_a_sigkill_to_accounting() -> None:
    # scontrol says FAILED, JobLaunchFailure, 0:9, as for any SIGKILL: with accounting,
    # wait for it (its batch step tells a memory kill); without, report what is known.
    job = OOM_ID["J_OOM"]
    seen = slurm_parse.parse_memory(load("oom-scontrol-ended"), context([job], accounting=True))
    assert seen == {
        job: {None: (JobState.RUNNING, None, "ending; accounting has not caught up yet")}
    }
    seen = slurm_parse.parse_memory(load("oom-scontrol-ended"), context([job], accounting=False))
    assert seen == {job: {None: (JobState.FAILED, 137, "JobLaunchFailure")}}


def test_parse_module_doctests() -> None:
    import doctest

    result = doctest.testmod(slurm_parse)
    assert result.attempted > 0 and result.failed == 0


# -- the same event, the same report (docs/states.md) --------------------------------------

#: Jobfleet's own job scripts, submitted and cancelled through jobfleet as root
#: (same-event-sacct.meta.json says which is which); their exit-code files said
#: 0, 3, 137, 143 (blocker), 143, none, 143, none.
SAME = dict(ok="9923", exit3="9924", kill9="9925", blocker="9926", running="9927")
SAME |= dict(pending="9928", walltime="9929", oom="9930")


def test_same_event_accounting_alone() -> None:
    # What sacct alone tells: who cancelled (named), the time limit; "0:0" for a job
    # cancelled or timed out is no exit code. (The recording with the steps, as the poll
    # asks: 9930's batch step tells the memory kill; it has no MaxRSS column.)
    runner = fake_slurm()
    ids = list(SAME.values())
    be = backend(runner)
    argv = be.accounting_argv(targets_for(ids, 1.8e9))
    assert argv is not None
    seen = be.read_accounting(replay(load("same-event-sacct-steps"), argv), context(ids))
    assert runner.calls == []
    got = {key: seen[native][None] for key, native in SAME.items()}
    assert got == {
        "ok": (JobState.COMPLETED, 0, None),
        "exit3": (JobState.FAILED, 3, None),
        "kill9": (JobState.FAILED, 9, None),  # sacct's "9:0" for exit 137: the file tells
        "blocker": (JobState.CANCELLED, None, "cancelled by root"),
        "running": (JobState.CANCELLED, None, "cancelled by root"),
        "pending": (JobState.CANCELLED, None, "cancelled by root"),
        "walltime": (JobState.TIMEOUT, None, "walltime limit exceeded (00:01:00)"),
        "oom": (
            JobState.OUT_OF_MEMORY,
            137,
            "memory limit exceeded: killed by SLURM for using more than it requested",
        ),
    }


def test_same_event_poll_takes_the_exit_code_files(tmp_path: Path) -> None:
    # The script outlived the SIGTERM of a cancel or a time-out and recorded what its
    # command would show a shell; a job that never ran (pending) has no exit code.
    runner = fake_slurm(squeue=load("squeue-purged-two"), sacct=load("same-event-sacct-steps"))
    recorded = {"exit3": "3", "kill9": "137", "running": "143", "walltime": "143"}
    recorded["blocker"] = "0"  # ended by itself just as it was cancelled: still no success
    for key, code in recorded.items():
        write(tmp_path / key / "exit_code", f"{code}\n")
    result = backend(runner).poll([target(n, tmp_path / k) for k, n in SAME.items()])
    got = {key: result[native] for key, native in SAME.items()}
    assert {k: (s.state, s.exit_code) for k, s in got.items()} == {
        "ok": (JobState.COMPLETED, 0),
        "exit3": (JobState.FAILED, 3),
        "kill9": (JobState.FAILED, 137),
        "blocker": (JobState.CANCELLED, None),
        "running": (JobState.CANCELLED, 143),
        "pending": (JobState.CANCELLED, None),
        "walltime": (JobState.TIMEOUT, 143),
        "oom": (JobState.OUT_OF_MEMORY, 137),
    }
    assert got["running"].reason == "cancelled by root"  # uid 0, from the user database
    assert got["walltime"].reason == "walltime limit exceeded (00:01:00)"


def test_cancelled_by_an_unknown_uid_names_the_uid() -> None:
    line = "71|71|CANCELLED by 4242|0:15|UNLIMITED\n"
    result = CommandResult(("sacct",), 0, line, "")
    seen, _ = slurm_accounting.parse_accounting(result, context(["71"]))
    assert seen["71"][None] == (JobState.CANCELLED, 143, "cancelled by uid 4242")


def test_deadline_is_a_timeout_of_its_own_words() -> None:
    result = CommandResult(("sacct",), 0, "72|72|DEADLINE|0:0|00:01:00\n", "")
    seen, _ = slurm_accounting.parse_accounting(result, context(["72"]))
    assert seen["72"][None] == (JobState.TIMEOUT, None, "deadline reached")


def test_parse_memory_takes_a_cancel_at_once_even_with_accounting() -> None:
    # Waiting for sacct to say by whom could outlast scontrol's memory of the job (a
    # backlog to slurmdbd): the job would then be read from its exit-code file (143)
    # as failed, and retried. A cancel is a cancel at once; who did it may stay unsaid.
    seen = slurm_parse.parse_memory(load("scontrol-all-final"), context(["248"], accounting=True))
    ((state, _, reason),) = seen["248"].values()
    assert state is JobState.CANCELLED
    assert reason is not None and reason.startswith("cancelled")


# -- what a job used (issue 11) ------------------------------------------------------------

#: The jobs of capture-22.05-usage.sh: a job and a 2-element array allocating ~200 MB for 3 s.
USAGE_JOBS = dict(
    line.split("=", 1)
    for line in (FIXTURES / "22.05" / "usage-jobs.env").read_text().split()
    if "=" in line
)


def _local(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def test_usage_from_the_poll_sacct_with_steps() -> None:
    one, arr = USAGE_JOBS["usage_one"], USAGE_JOBS["usage_arr"]
    used = slurm_accounting.parse_accounting(load("usage-sacct-ended"), context([one, arr]))[1]
    assert used[one] == {
        None: Usage(
            submitted_at=_local("2026-12-06T12:15:52"),
            started_at=_local("2026-12-06T12:15:53"),
            ended_at=_local("2026-12-06T12:15:57"),
            hosts=("vm",),
            max_memory_bytes=221400 * 1024,  # the .batch step's MaxRSS
            cpu_time_s=0.314,
            wall_time_s=4.0,
        )
    }
    assert sorted(used[arr]) == [1, 2]
    assert used[arr][1].max_memory_bytes == 221104 * 1024
    assert used[arr][2].max_memory_bytes == 221312 * 1024
    for usage in (used[one][None], *used[arr].values()):
        # ~200 MB allocated: the peak is in that range; start and end bracket 3 s of sleep.
        assert 200 * 2**20 <= (usage.max_memory_bytes or 0) <= 260 * 2**20
        assert usage.started_at is not None and usage.ended_at is not None
        assert usage.ended_at - usage.started_at >= 3


def test_usage_of_running_jobs_has_no_end_cpu_or_memory_yet() -> None:
    one = USAGE_JOBS["usage_one"]
    used = slurm_accounting.parse_accounting(load("usage-sacct-running"), context([one]))[1]
    usage = used[one][None]
    assert usage.started_at == _local("2026-12-06T12:15:53") and usage.hosts == ("vm",)
    assert (usage.ended_at, usage.cpu_time_s, usage.max_memory_bytes, usage.wall_time_s) == (
        None,
        None,
        None,
        None,
    )


def test_steps_never_read_as_their_job_state() -> None:
    # A step row (10356.batch) must not stand for its job: the job's row says how it ended.
    one, arr = USAGE_JOBS["usage_one"], USAGE_JOBS["usage_arr"]
    seen, _ = slurm_accounting.parse_accounting(load("usage-sacct-ended"), context([one, arr]))
    assert seen == {
        one: {None: (JobState.COMPLETED, 0, None)},
        arr: {1: (JobState.COMPLETED, 0, None), 2: (JobState.COMPLETED, 0, None)},
    }


def test_a_poll_reports_usage_with_the_end_in_one_sacct_call() -> None:
    one, arr = USAGE_JOBS["usage_one"], USAGE_JOBS["usage_arr"]
    runner = fake_slurm(squeue=load("squeue-unknown-single"), sacct=load("usage-sacct-ended"))
    submitted = _local("2026-12-06T12:15:52")
    targets = [
        PollTarget("1", one, "/nonexistent", submitted),
        PollTarget("2", arr, "/nonexistent", submitted, indices=(1, 2)),
    ]
    result = backend(runner).poll(targets)
    assert [c[0] for c in runner.calls] == ["squeue", "sacct"]
    assert result[one].state is JobState.COMPLETED
    assert result[one].usage is not None and result[one].usage.max_memory_bytes == 221400 * 1024
    assert set(result[arr].element_usage) == {1, 2}
    assert result[arr].usage is None


def test_an_ended_job_is_asked_of_accounting_only_for_its_usage() -> None:
    one = USAGE_JOBS["usage_one"]
    runner = fake_slurm(sacct=load("usage-sacct-settled"))
    target = PollTarget("1", one, "/nonexistent", _local("2026-12-06T12:15:52"), ended=True)
    result = backend(runner).poll([target])
    assert [c[0] for c in runner.calls] == ["sacct"]  # no squeue, no scontrol
    assert result[one].usage is not None and result[one].usage.cpu_time_s == 0.314


def test_old_recordings_without_usage_columns_give_no_usage() -> None:
    used = slurm_accounting.parse_accounting(load("sacct-final"), context(MAIN_IDS))[1]
    assert used == {}


def test_maxrss_is_third_from_the_end_and_the_format_ends_with_the_usage_columns() -> None:
    # parse_accounting reads a step's MaxRSS from the end of its row (cheap for many steps).
    assert USAGE_COLUMNS[-3] == "MaxRSS"
    assert slurm_accounting.ACCOUNTING_FORMAT.endswith(",".join(USAGE_COLUMNS))
