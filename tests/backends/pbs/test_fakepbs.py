"""The fake PBS and Torque programs (tests/shims/fakepbs.py) refuse what the real ones
refuse and answer in the formats the parsers read from the real ones' fixtures; the
contract suite runs jobs through them (tests/contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobfleet.backends import formats
from jobfleet.backends.base import PollTarget
from jobfleet.backends.pbs import PbsSettings, outcome, parse
from jobfleet.backends.pbs.backend import PbsBackend
from jobfleet.backends.pbs.probe import pbs_formats
from jobfleet.backends.torque import parse as torque_parse
from jobfleet.backends.torque.probe import torque_formats
from jobfleet.errors import CommandError
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.states import JobState
from shims import fakepbs, fakepbs_output

BIN = Path(__file__).parents[2] / "shims" / "pbsbin"
C, F, X = JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED


def run(
    tmp_path: Path, dialect: str, *argv: str, limit: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FAKEPBS_STATE": str(tmp_path / "state.json"),
        "FAKEPBS_PYTHON": sys.executable,
        "FAKEPBS_DIALECT": dialect,
    }
    if limit is not None:
        env["FAKEPBS_NAME_LIMIT"] = limit
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, env=env)


@pytest.fixture
def script(tmp_path: Path) -> str:
    path = tmp_path / "job.sh"
    path.write_text("#!/bin/bash\n#PBS -S /bin/bash\n#PBS -l walltime=00:01:00\ntrue\n")
    return str(path)


@pytest.mark.parametrize(
    ("dialect", "args", "message"),
    [
        ("pbs", ["-J", "5"], "qsub: illegal -J value"),
        ("pbs", ["-J", "5-5"], "qsub: illegal -J value"),
        ("pbs", ["-J", "1,3"], "qsub: illegal -J value"),
        ("pbs", ["-t", "1-3"], "qsub: invalid option -- 't'"),
        ("pbs", ["-Z"], "qsub: invalid option -- 'Z'"),
        ("torque", ["-t", "1-9:2"], "qsub: illegal -t value"),
        ("torque", ["-J", "1-3"], "qsub: invalid option -- 'J'"),
        ("torque", ["-N", "jfab12cd34-1-xy"], None),
        ("torque", ["-N", "jfab12cd34-1-xyz"], "qsub: illegal -N value"),
    ],
)
def test_qsub_refuses_what_the_real_one_refuses(
    tmp_path: Path, script: str, dialect: str, args: list[str], message: str | None
) -> None:
    proc = run(tmp_path, dialect, "qsub", *args, script, limit="15")
    if message is None:
        assert proc.returncode == 0 and proc.stdout.strip() == "1.fakepbs"
    else:
        assert proc.returncode == 2 and message in proc.stderr and not proc.stdout


def test_pbs_answers_in_the_formats_of_the_real_one(tmp_path: Path, script: str) -> None:
    assert run(tmp_path, "pbs", "qsub", "-J", "1-3%2", script).stdout == "1[].fakepbs\n"
    text = run(tmp_path, "pbs", "qstat", "-f", "-x", "-t", "1[].fakepbs").stdout
    as_json = run(tmp_path, "pbs", "qstat", "-f", "-x", "-t", "-F", "json", "1[].fakepbs").stdout
    assert formats.read_saved(pbs_formats(), text).format.name == "qstat-text"
    assert formats.read_saved(pbs_formats(), as_json).format.name == "qstat-json"
    ids = [job_id for job_id, _ in parse.read_json(as_json)]
    assert ids == ["1[].fakepbs", "1[1].fakepbs", "1[2].fakepbs", "1[3].fakepbs"]
    unknown = run(tmp_path, "pbs", "qstat", "-f", "-x", "9.fakepbs")
    assert unknown.returncode == 153 and parse.unknown_ids(unknown.stderr) == {"9.fakepbs"}
    assert run(tmp_path, "pbs", "qstat", "--version").stdout.startswith("pbs_version = ")


def test_torque_answers_in_the_formats_of_the_real_one(tmp_path: Path, script: str) -> None:
    assert run(tmp_path, "torque", "qsub", "-t", "1-2,5%1", script).stdout == "1[].fakepbs\n"
    xml = run(tmp_path, "torque", "qstat", "-x", "-t").stdout
    text = run(tmp_path, "torque", "qstat", "-f", "-t").stdout
    assert formats.read_saved(torque_formats(), xml).format.name == "qstat-xml"
    saved = formats.read_saved(torque_formats(), text)
    assert saved.format.name == "qstat-text"
    assert sorted(j["index"] for j in saved.jobs()) == [1, 2, 5]
    assert run(tmp_path, "torque", "qselect", "-N", "job.sh").stdout == "1[].fakepbs\n"


def test_an_element_deleted_before_it_started_is_printed_from_its_array(
    tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(tmp_path, "pbs", "qsub", "-J", "1-2%1", script).returncode == 0
    assert run(tmp_path, "pbs", "qdel", "1[2].fakepbs").returncode == 0  # still queued
    for name, value in [("FAKEPBS_DIALECT", "pbs"), ("HOME", str(tmp_path))]:
        monkeypatch.setenv(name, value)
    path = tmp_path / "state.json"
    state = json.loads(path.read_text())
    running: dict[str, Any] = {}
    fakepbs._step(state["jobs"], running, 1)  # element 1 runs, and exits 0
    while running:
        time.sleep(0.05)
        fakepbs._step(state["jobs"], running, 1)
    path.write_text(json.dumps(state))
    out = run(tmp_path, "pbs", "qstat", "-f", "-x", "-t", "1[].fakepbs").stdout
    records = dict(parse.read_text(out))
    assert "array_index" not in records["1[2].fakepbs"]
    assert records["1[2].fakepbs"]["Exit_status"] == "0"  # the array's, not its own
    runner = ScriptedRunner(lambda a: CommandResult(a, 0, out, ""))
    target = PollTarget("j", "1[].fakepbs", str(tmp_path), 0.0, (1, 2))
    got = PbsBackend(runner, PbsSettings(status_format="text")).poll([target])["1[].fakepbs"]
    assert got.elements == {1: (C, 0, None), 2: (X, None, parse.REMOVED)}


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake PBS's programs first on PATH, as a backend runs them."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKEPBS_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("FAKEPBS_PYTHON", sys.executable)
    monkeypatch.setenv("FAKEPBS_DIALECT", "pbs")


@pytest.mark.usefixtures("on_path")
def test_cancelling_an_element_that_finished_is_no_error(tmp_path: Path, script: str) -> None:
    assert run(tmp_path, "pbs", "qsub", "-J", "1-2", script).returncode == 0
    path = tmp_path / "state.json"
    state = json.loads(path.read_text())
    state["jobs"]["1[1].fakepbs"].update(state="X", exit=0)  # as the server ends it
    path.write_text(json.dumps(state))
    proc = run(tmp_path, "pbs", "qdel", "1[1].fakepbs")
    assert "Request invalid for finished array subjob 1[1].fakepbs" in proc.stderr
    assert PbsBackend().cancel(["1[].fakepbs"], indices=[1]) == {}


@pytest.mark.usefixtures("on_path")
def test_a_signal_to_a_queued_job_is_an_error_not_a_success(tmp_path: Path, script: str) -> None:
    assert run(tmp_path, "pbs", "qsub", script).returncode == 0
    with pytest.raises(CommandError, match="only a running job can take a signal"):
        PbsBackend().cancel(["1.fakepbs"], signal="TERM")
    assert "signals" not in json.loads((tmp_path / "state.json").read_text())["jobs"]["1.fakepbs"]


# Values as qstat prints them: no empty pieces between commas (its strtok drops
# them), no newline or tab (kept raw by the real qstat, and read back as such).
_piece = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=","),
    min_size=1,
    max_size=120,
)


@given(st.lists(_piece, min_size=1, max_size=6), st.sampled_from([77, 78]))
@settings(max_examples=200, deadline=None)
def test_wrapped_values_read_back_exactly(pieces: list[str], limit: int) -> None:
    value = ",".join(pieces)
    lines = fakepbs_output.text("1.s", [("Variable_List", value), ("job_state", "Q")], limit)
    ((_, attrs),) = parse.read_text("\n".join(lines))
    assert attrs == {"Variable_List": value, "job_state": "Q"}


def _run_to_the_end(tmp_path: Path, qdel: bool) -> None:
    """Run the fake server's steps in this process on the state file: start the job,
    qdel it once it runs (if ``qdel``), and step until it has ended."""
    path = tmp_path / "state.json"
    running: dict[str, Any] = {}
    deadline = time.monotonic() + 20
    sent = False
    while time.monotonic() < deadline:
        state = json.loads(path.read_text())
        fakepbs._step(state["jobs"], running, 1)
        path.write_text(json.dumps(state))
        if qdel and running and not sent:
            assert run(tmp_path, fakepbs.dialect(), "qdel", "1.fakepbs").returncode == 0
            sent = True
        if not running and sent == qdel and state["jobs"]["1.fakepbs"]["state"] in ("F", "C"):
            return
        time.sleep(0.05)
    raise AssertionError("the fake job did not end")


@pytest.fixture
def trapping_script(tmp_path: Path) -> str:
    """Like jobfleet's job script: outlives the SIGTERM, exits with its command's 143."""
    path = tmp_path / "job.sh"
    path.write_text('#!/bin/sh\ntrap : TERM\nrc=0\nsleep 30 || rc=$?\nexit "$rc"\n')
    return str(path)


def test_pbs_qdel_of_a_running_job_names_who_as_the_real_server_does(
    tmp_path: Path, trapping_script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in [("FAKEPBS_DIALECT", "pbs"), ("HOME", str(tmp_path))]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FAKEPBS_STATE", str(tmp_path / "state.json"))
    assert run(tmp_path, "pbs", "qsub", "-S", "/bin/sh", trapping_script).returncode == 0
    _run_to_the_end(tmp_path, qdel=True)
    out = run(tmp_path, "pbs", "qstat", "-f", "-x", "1.fakepbs").stdout
    ((_, attrs),) = parse.read_text(out)
    assert attrs["substate"] == "91" and attrs["Exit_status"] == "143"
    assert attrs["comment"].startswith("Job run at ")
    assert attrs["comment"].endswith(f" and terminated by {fakepbs_output.user()}@fakepbs")
    state, code, why = outcome.map_record(attrs)
    assert (state, code, why) == (X, 143, f"cancelled by {fakepbs_output.user()}")


@pytest.mark.parametrize(("canceled", "expected"), [("", (X, 143)), ("-20", (X, None))])
def test_torque_qdel_of_a_running_job_leaves_the_shells_status(
    tmp_path: Path,
    trapping_script: str,
    monkeypatch: pytest.MonkeyPatch,
    canceled: str,
    expected: tuple[Any, ...],
) -> None:
    for name, value in [("FAKEPBS_DIALECT", "torque"), ("HOME", str(tmp_path))]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FAKEPBS_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("FAKEPBS_EXIT_CODE_CANCELED", canceled)
    assert run(tmp_path, "torque", "qsub", "-S", "/bin/sh", trapping_script).returncode == 0
    _run_to_the_end(tmp_path, qdel=True)
    xml = run(tmp_path, "torque", "qstat", "-x", "-t").stdout
    ((_, attrs),) = torque_parse.read_xml(xml)
    assert "comment" not in attrs  # Torque records nothing of the delete
    element = torque_parse.map_record(attrs, int(canceled or 0))
    assert element[:2] == expected  # without the setting: cancelled, the command's 143


def test_pbs_comments_say_how_a_job_finished(
    tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in [("FAKEPBS_DIALECT", "pbs"), ("HOME", str(tmp_path))]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FAKEPBS_STATE", str(tmp_path / "state.json"))
    assert run(tmp_path, "pbs", "qsub", script).returncode == 0
    _run_to_the_end(tmp_path, qdel=False)
    ((_, attrs),) = parse.read_text(run(tmp_path, "pbs", "qstat", "-f", "-x", "1.fakepbs").stdout)
    assert attrs["comment"].endswith(" and finished") and attrs["substate"] == "92"
    assert outcome.map_record(attrs) == (C, 0, None)


def test_a_subjob_qdel_ended_keeps_its_own_record_after_its_array_ends(
    tmp_path: Path, trapping_script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenPBS keeps a subjob that ran as a job of its own: when its array finishes, it
    goes from X to F with its own substate and comment (svr_histjob_update on the array:
    a subjob's terminal substate, 91/92/93, is kept); qstat prints that record, not the
    array's (status_subjob). Here: element 2 deleted while queued, element 1 while it
    ran, the last to end, so no poll saw it as X first."""
    for name, value in [("FAKEPBS_DIALECT", "pbs"), ("HOME", str(tmp_path))]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FAKEPBS_STATE", str(tmp_path / "state.json"))
    qsub = run(tmp_path, "pbs", "qsub", "-S", "/bin/sh", "-J", "1-2%1", trapping_script)
    assert qsub.stdout == "1[].fakepbs\n"
    path = tmp_path / "state.json"
    running: dict[str, Any] = {}

    def step() -> dict[str, Any]:
        state = json.loads(path.read_text())
        fakepbs._step(state["jobs"], running, 8)
        path.write_text(json.dumps(state))
        jobs: dict[str, Any] = state["jobs"]
        return jobs

    assert step()["1[1].fakepbs"]["state"] == "R"
    assert run(tmp_path, "pbs", "qdel", "1[2].fakepbs").returncode == 0  # queued
    assert run(tmp_path, "pbs", "qdel", "1[1].fakepbs").returncode == 0  # running
    deadline = time.monotonic() + 20
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        step()
    assert not running
    out = run(tmp_path, "pbs", "qstat", "-f", "-x", "-t", "1[].fakepbs").stdout
    records = dict(parse.read_text(out))
    first = records["1[1].fakepbs"]
    assert first["job_state"] == "F" and first["substate"] == "91"
    assert first["comment"].endswith(f" and terminated by {fakepbs_output.user()}@fakepbs")
    assert first["Exit_status"] == "143" and first["array_index"] == "1"
    # The array's own: the first of its subjobs (by index) that failed or was
    # terminated gives its substate (svr_setjob_histinfo, T_FIN_JOB).
    assert records["1[].fakepbs"]["substate"] == "91"
    runner = ScriptedRunner(lambda a: CommandResult(a, 0, out, ""))
    target = PollTarget("j", "1[].fakepbs", str(tmp_path), 0.0, (1, 2))
    got = PbsBackend(runner, PbsSettings(status_format="text")).poll([target])["1[].fakepbs"]
    assert got.elements == {
        1: (X, 143, f"cancelled by {fakepbs_output.user()}"),
        2: (X, None, parse.REMOVED),
    }
