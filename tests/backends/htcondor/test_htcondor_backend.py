"""The HTCondor backend with a scripted runner: golden submit files for the job model's
options, what it refuses, the dependency design (held, released by a poll), cancel,
and the event log as the last source.

Golden files live in tests/backends/htcondor/golden/<case>.sub; after an intended
change, regenerate them and review the diff:

    JOBFLEET_REGEN_GOLDEN=1 .venv/bin/pytest tests/backends/htcondor/test_htcondor_backend.py
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from jobfleet import JobSpec, Resources, parse_array
from jobfleet.backends.base import PollTarget, SubmitRequest
from jobfleet.backends.htcondor.backend import HTCondorBackend
from jobfleet.backends.htcondor.submitfile import (
    HTCONDOR,
    HTCondorSettings,
    htcondor_directives,
    submit_description,
)
from jobfleet.environment import Environment
from jobfleet.errors import BackendError, SpecError, SubmitError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.script import render_script
from jobfleet.spec import DepKind
from jobfleet.states import JobState

S = JobState
GOLDEN = Path(__file__).parent / "golden"
FIXTURES = Path(__file__).parent / "fixtures"
REGEN = bool(os.environ.get("JOBFLEET_REGEN_GOLDEN"))
CMD = ["python3", "run.py"]

CASES: dict[str, tuple[JobSpec, tuple[str, ...]]] = {
    "plain": (JobSpec(CMD), ()),
    "resources": (
        JobSpec(
            CMD,
            resources=Resources.of(
                cores=2, tasks=3, memory="1500M", walltime="1h30m", gpus=1, account="physics"
            ),
        ),
        (),
    ),
    "memory_per_core": (JobSpec(CMD, resources=Resources.of(cores=4, memory_per_core="1G")), ()),
    "site": (
        JobSpec(
            CMD,
            resources=Resources.of(
                constraint="HasAVX2&&(!IsDesktop)",
                licenses=["matlab:2", "abaqus"],
                mail_to="me@example.org",
                mail_on=["fail"],
                priority=-10,
                begin="+2h",
            ),
        ),
        (),
    ),
    "array_listed_throttled": (JobSpec(CMD, array=parse_array("1,3,7-9%2")), ()),
    "array_stepped": (JobSpec(CMD, array=parse_array("0-8:4")), ()),
    "dependent": (JobSpec(CMD), ("101", "102")),
    "no_export_extra": (
        JobSpec(
            CMD,
            environment=Environment.of(export_env=False),
            resources=Resources.of(
                walltime="10m",
                extra_directives=['+ProjectName = "OSG-Staff"'],
                directives_skip=["periodic_remove"],
            ),
        ),
        (),
    ),
}


def _submit_file(case: str) -> str:
    spec, after = CASES[case]
    script = render_script(spec, HTCONDOR, job_id="42", job_dir="/jobs/42")
    return submit_description(
        script,
        script_path="/jobs/42/job.sh",
        job_dir="/jobs/42",
        name="jf3c4080ab-42-run",
        array=spec.array,
        after=after,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_submit_file(case: str) -> None:
    text = _submit_file(case)
    path = GOLDEN / f"{case}.sub"
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with JOBFLEET_REGEN_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_case() -> None:
    assert {p.stem for p in GOLDEN.glob("*.sub")} == set(CASES)


def test_the_array_index_is_the_users_own() -> None:
    text = _submit_file("array_listed_throttled")
    assert "arguments = $CHOICE(Process, 1, 3, 7, 8, 9)" in text
    assert "max_materialize = 2" in text and text.endswith("queue 5\n")
    script = render_script(JobSpec(CMD, array=parse_array("1,3")), HTCONDOR, job_dir="/j")
    assert 'export JOBFLEET_ARRAY_INDEX="${1-}"' in script


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"nodes": 2, "tasks_per_node": 2}, "resources.nodes", "one slot"),
        ({"queue": "short"}, "resources.queue", "no queues"),
        ({"qos": "high"}, "resources.qos", "quality of service"),
        ({"reservation": "r1"}, "resources.reservation", "reservations"),
        ({"exclusive": True}, "resources.exclusive", "slot"),
        ({"constraint": "haswell&ib"}, "resources.constraint", "&&"),
        ({"mail_to": "a@b.c", "mail_on": ["begin", "end"]}, "resources.mail_on", "one kind"),
    ],
)
def test_what_htcondor_cannot_honour_is_refused_naming_the_field(
    values: dict[str, Any], field: str, words: str
) -> None:
    backend = HTCondorBackend(ScriptedRunner(lambda argv: CommandResult(argv, 0, "", "")))
    with pytest.raises(SpecError) as info:
        backend.check_request(JobSpec(CMD, resources=Resources.of(**values)))
    assert info.value.field == field and words in info.value.message


def test_srun_is_refused_by_the_script() -> None:
    with pytest.raises(SpecError) as info:
        render_script(JobSpec(CMD, resources=Resources.of(launcher="srun")), HTCONDOR)
    assert info.value.field == "resources.launcher"


def test_a_path_the_submit_language_would_expand_is_refused() -> None:
    with pytest.raises(SpecError):
        submit_description("", script_path="/j/$(Cluster)/s", job_dir="/j", name="n", array=None)


# -- the backend with a scripted runner ------------------------------------------------------


class Pool:
    """Answers condor_* commands from canned outputs; records the calls."""

    def __init__(self) -> None:
        self.queue: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.factories: list[dict[str, Any]] = []
        self.submit_out = (FIXTURES / "submit-one.out").read_text()
        self.runner = ScriptedRunner(self.respond)

    def respond(self, argv: tuple[str, ...]) -> CommandResult:
        program = argv[0]
        if program == "condor_q":
            return CommandResult(
                argv, 0, ads(self.factories if "-factory" in argv else self.queue), ""
            )
        if program == "condor_history":
            return CommandResult(argv, 0, ads(self.history), "")
        if program == "condor_submit":
            return CommandResult(argv, 0, self.submit_out, "")
        if program in ("condor_release", "condor_rm"):
            return CommandResult(argv, 0, "All jobs have been released\n", "")
        raise AssertionError(argv)


def ads(items: list[dict[str, Any]]) -> str:
    return json.dumps(items) if items else ""


def held(cluster: int, after: str) -> dict[str, Any]:
    return {
        "ClusterId": cluster,
        "ProcId": 0,
        "JobStatus": 5,
        "HoldReasonCode": 15,
        "HoldReason": "submitted on hold at user's request",
        "JobfleetAfter": after,
    }


def test_a_dependent_is_submitted_held_and_released_by_a_poll(tmp_path: Path) -> None:
    pool = Pool()
    backend = HTCondorBackend(pool.runner, HTCondorSettings(retry_backoff_s=0.0))
    script = tmp_path / "job.sh"
    script.write_text(render_script(JobSpec(CMD), HTCONDOR, job_dir=str(tmp_path)))
    request = SubmitRequest(
        "9",
        "jf3c4080ab-9-after",
        JobSpec(CMD),
        str(script),
        str(tmp_path),
        dependencies=((DepKind.AFTER_OK, ("7",)), (DepKind.AFTER_ANY, ("7", "8"))),
    )
    assert backend.submit(request) == "6"
    sub = (tmp_path / "job.sub").read_text()
    assert 'hold = true\n+JobfleetAfter = "7 8"\nqueue 1\n' in sub
    assert pool.runner.calls[-1] == ("condor_submit", str(tmp_path / "job.sub"))

    # Its predecessors still run: it stays held, and says for what.
    pool.queue = [held(6, "7 8"), {"ClusterId": 7, "ProcId": 0, "JobStatus": 2}]
    status = backend.poll([PollTarget("9", "6", str(tmp_path), 0.0)])["6"]
    assert status.state is S.PENDING and "waiting for job(s) 7, 8" in (status.reason or "")
    assert pool.runner.count("condor_release") == 0

    # Neither shows in the queue, but 7's factory has procs to materialize still.
    pool.queue = [held(6, "7 8")]
    pool.factories = [{"ClusterId": 7, "JobMaterializeNextProcId": 1, "TotalSubmitProcs": 2}]
    backend.poll([PollTarget("9", "6", str(tmp_path), 0.0)])
    assert pool.runner.count("condor_release") == 0

    # Both ended: this poll releases it.
    pool.factories = []
    status = backend.poll([PollTarget("9", "6", str(tmp_path), 0.0)])["6"]
    release = "(ClusterId == 6) && JobStatus == 5 && HoldReasonCode == 15"
    assert pool.runner.calls[-1] == ("condor_release", "-constraint", release)
    assert (status.state, status.reason) == (S.PENDING, "released: its predecessors ended")


def test_a_refused_submission_is_an_error_with_the_schedulers_words(tmp_path: Path) -> None:
    pool = Pool()
    refused = CommandResult(("condor_submit",), 1, "Submitting job(s).\n", "ERROR: no way\n")
    pool.runner.respond = lambda argv: refused
    backend = HTCondorBackend(pool.runner)
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n")
    with pytest.raises(SubmitError) as info:
        backend.submit(SubmitRequest("1", "n", JobSpec(CMD), str(script), str(tmp_path)))
    assert "ERROR: no way" in str(info.value)


def test_cancel_whole_jobs_or_elements_never_a_signal() -> None:
    backend = HTCondorBackend(Pool().runner)
    assert backend.cancel_argv(["12", "13"], None, None) == ["condor_rm", "12", "13"]
    assert backend.cancel_argv(["12"], [2, 5], None) == [
        "condor_rm",
        "-constraint",
        "(ClusterId == 12) && (JobfleetIndex == 2 || JobfleetIndex == 5)",
    ]
    with pytest.raises(BackendError, match="signal"):
        backend.cancel(["12"], signal="USR1")
    gone = CommandResult(("condor_rm",), 1, "", "condor_rm:0:There are no jobs in the queue\n")
    assert backend.cancel_ok(gone)
    assert not backend.cancel_ok(CommandResult(("condor_rm",), 1, "", "Permission denied"))


def test_one_queue_call_and_one_history_call_per_poll() -> None:
    pool = Pool()
    pool.queue = [{"ClusterId": 30, "ProcId": 0, "JobStatus": 2, "JobfleetIndex": 0}]
    pool.history = [
        {"ClusterId": 30, "ProcId": 1, "JobStatus": 4, "ExitCode": 0, "JobfleetIndex": 1},
        {"ClusterId": 31, "ProcId": 0, "JobStatus": 3, "RemoveReason": "via condor_rm"},
    ]
    backend = HTCondorBackend(pool.runner)
    targets = [
        PollTarget("1", "30", "/nonexistent", 0.0, (0, 1)),
        PollTarget("2", "31", "/nonexistent", 0.0),
    ]
    statuses = backend.poll(targets)
    assert [c[0] for c in pool.runner.calls] == ["condor_q", "condor_history"]
    assert pool.runner.calls[1][-3:] == ("3", "30", "31")  # -limit 3: every proc asked
    assert statuses["30"].elements == {0: (S.RUNNING, None, None), 1: (S.COMPLETED, 0, None)}
    assert statuses["31"].state is S.CANCELLED


def test_the_event_log_tells_what_nothing_else_did(tmp_path: Path) -> None:
    pool = Pool()
    backend = HTCondorBackend(pool.runner, HTCondorSettings(history=False))
    shutil.copy(FIXTURES / "eventlog-iso.log", tmp_path / "condor.log")
    statuses = backend.poll(
        [
            PollTarget("1", "40", str(tmp_path), 0.0),
            PollTarget("2", "41", str(tmp_path), 0.0, (5, 6)),
        ]
    )
    assert pool.runner.count("condor_history") == 0
    assert (statuses["40"].state, statuses["40"].exit_code) == (S.FAILED, 3)
    assert statuses["41"].elements[5][0] is S.TIMEOUT
    assert statuses["41"].elements[6] == (S.CANCELLED, None, "cancelled by jovyan")


def test_begin_is_unix_time_or_a_delay_after_qdate(monkeypatch: pytest.MonkeyPatch) -> None:
    def deferral(begin: str) -> str:
        lines = htcondor_directives(JobSpec(CMD, resources=Resources.of(begin=begin)))
        return next(line for line in lines if line.startswith("deferral_time"))

    assert deferral("+90s") == "deferral_time = (QDate + 90)"
    assert deferral("2030-01-02T03:04:05+01:00") == "deferral_time = 1893549845"
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert deferral("2030-01-02T03:04:05") == "deferral_time = 1893553445"  # local time
    finally:
        monkeypatch.undo()
        time.tzset()


# -- what reaches the submit file (review of issue 12) ----------------------------------------


def test_condor_lines_after_the_header_never_reach_the_submit_file() -> None:
    spec = JobSpec(
        ["sh", "-c", "echo\n#CONDOR queue 7"],
        env={"X": "a\n#CONDOR queue 7"},
        resources=Resources.of(extra_directives=['+ProjectName = "p"']),
    )
    script = render_script(spec, HTCONDOR, job_id="42", job_dir="/jobs/42")
    script += "#CONDOR request_cpus = 99\n"
    text = submit_description(
        script, script_path="/jobs/42/job.sh", job_dir="/jobs/42", name="n", array=None
    )
    assert "queue 7" not in text and "request_cpus = 99" not in text
    assert '+ProjectName = "p"' in text and text.endswith("queue 1\n")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"account": "$(Cluster)"}, "resources.account"),
        ({"constraint": 'Name == "$(Process)"'}, "resources.constraint"),
        ({"mail_to": "$(Owner)@x.org"}, "resources.mail_to"),
        ({"licenses": ["$(x)"]}, "resources.licenses"),
    ],
)
def test_a_value_the_submit_language_would_expand_is_refused(
    values: dict[str, Any], field: str
) -> None:
    backend = HTCondorBackend(ScriptedRunner(lambda argv: CommandResult(argv, 0, "", "")))
    with pytest.raises(SpecError) as info:
        backend.check_request(JobSpec(CMD, resources=Resources.of(**values)))
    assert info.value.field.startswith(field) and "$" in info.value.message
