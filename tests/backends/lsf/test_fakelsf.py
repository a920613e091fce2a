"""The fake LSF of tests/shims (fakelsf.py, lsfbin/) against the backend's parsers: it
answers in the formats the parsers read (each recognised by exactly one format), refuses
what bsub refuses, and the backend's poll reads it: bjobs first, bhist -l for the jobs
bjobs forgot (CLEAN_PERIOD), nothing from a job's mere absence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobfleet.backends.base import PollTarget, SubmitRequest
from jobfleet.backends.command import PollContext
from jobfleet.backends.formats import read_saved
from jobfleet.backends.lsf import parse
from jobfleet.backends.lsf.backend import LsfBackend
from jobfleet.backends.lsf.directives import LsfSettings
from jobfleet.backends.lsf.formats import detect, formats
from jobfleet.backends.lsf.parse import QUEUE_FIELDS
from jobfleet.errors import SubmitError
from jobfleet.runner import CommandResult
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState
from shims.fakelsf import FakeLsf

BIN = Path(__file__).parents[2] / "shims" / "lsfbin"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLsf]:
    """The fake's programs first on PATH; no lsfd: jobs move only when a test moves them."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKELSF_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("FAKELSF_PYTHON", sys.executable)
    monkeypatch.chdir(tmp_path)
    yield FakeLsf(tmp_path / "state.json")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_bsub_answers_and_refuses_like_bsub(fake: FakeLsf) -> None:
    ok = run("bsub", "-J", "a[1-3]%2", "-o", "out.%J_%I", "/bin/true")
    assert (ok.returncode, ok.stdout) == (0, "Job <1001> is submitted to default queue <normal>.\n")
    for argv, why in [
        (["-Z", "x"], "-Z: Illegal option."),
        (["-w", "done(1001"], "Dependency condition syntax error."),
        (["-w", "done(1001) &&"], "Dependency condition syntax error."),
        (["-w", "finished(1001)"], "Dependency condition syntax error."),
        (["-w", "done(4242)"], "4242: No matching job found."),
        (["-J", "big[1-1001]"], "MAX_JOB_ARRAY_SIZE"),
        (["-J", "far[999-1001]"], "MAX_JOB_ARRAY_SIZE"),  # the largest index, not the count
        (["-J", "long[" + ",".join(str(i) for i in range(1, 300, 3)) + "]"], "255 characters"),
        (["-J", "zero[0-3]"], "Bad job array index list"),
        (["-W", "1h"], "Bad RUNLIMIT"),
    ]:
        refused = run("bsub", *argv, "/bin/true")
        assert refused.returncode == 255 and why in refused.stderr, (argv, refused.stderr)
        assert refused.stderr.rstrip().endswith("Job not submitted.")
    good = run("bsub", "-w", "(done(1001) && exit(1001)) || ended(1001)", "/bin/true")
    assert good.returncode == 0, good.stderr
    assert len(fake.jobs()) == 4  # three elements and one job: nothing from the refusals


def test_what_the_fake_prints_is_read_by_exactly_one_format(fake: FakeLsf) -> None:
    run("bsub", "-J", "arr[1-2]", "/bin/true")
    run("bsub", "-J", "one", "/bin/true")
    with fake.locked() as state:
        state["jobs"]["1001[1]"].update(stat="DONE", start=time.time(), end=time.time())
        state["jobs"]["1001[2]"].update(
            stat="EXIT",
            exit_code="140",
            start=time.time(),
            end=time.time(),
            exit_reason="TERM_RUNLIMIT: job killed after reaching LSF run time limit",
        )
    fields = " ".join(QUEUE_FIELDS)
    outputs = [
        run("bsub", "/bin/true"),
        run("bjobs", "-a", "-json", "-o", fields, "1001", "1002", "77"),
        run("bjobs", "-a", "-noheader", "-o", f"{fields} delimiter='|'", "1001", "1002"),
        run("bhist", "-l", "1001"),
        run("bjobs", "-o", "jobid", "77"),
    ]
    for result in outputs:
        names = [f.name for f in formats() if f.recognises(result.stdout, result.stderr)]
        assert len(names) == 1, (names, result.stdout, result.stderr)
        read_saved(formats(), result.stdout, result.stderr, "lsf")
    saved = read_saved(formats(), outputs[1].stdout, outputs[1].stderr, "lsf")
    assert [(j["native_id"], j["index"], j["state"], j["exit_code"]) for j in saved.jobs()] == [
        ("1001", 1, "completed", 0),
        ("1001", 2, "timeout", 140),
        ("1002", None, "pending", None),
    ]
    assert outputs[1].returncode == 255 and "Job <77> is not found" in outputs[1].stderr
    # Like LSF, the fake writes '/' as '\/' in JSON.
    run("bsub", "-J", "dir/name", "/bin/true")
    raw = run("bjobs", "-a", "-json", "-o", "jobid job_name", "1004").stdout
    assert '"dir\\/name"' in raw and json.loads(raw)["RECORDS"][0]["JOB_NAME"] == "dir/name"


def test_the_poll_asks_bhist_only_for_what_bjobs_forgot(
    fake: FakeLsf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    monkeypatch.setenv("FAKELSF_CALLS", str(calls))
    monkeypatch.setenv("FAKELSF_CLEAN_PERIOD", "0")  # bjobs forgets finished jobs at once
    backend = LsfBackend(None, LsfSettings(unit_for_limits="MB"))
    spec = JobSpec(command=["true"], array=parse_array("1-2"))
    native = backend.submit(
        SubmitRequest("1", "jfab-1-x", spec, str(tmp_path / "job.sh"), str(tmp_path))
    )
    with fake.locked() as state:
        state["jobs"]["1001[1]"].update(
            stat="EXIT", exit_code="3", start=time.time(), end=time.time()
        )
    target = PollTarget("1", native, str(tmp_path), time.time(), indices=(1, 2), name="jfab-1-x")
    status = backend.poll([target])[native]
    assert {i: e[:2] for i, e in status.elements.items()} == {
        1: (JobState.FAILED, 3),
        2: (JobState.PENDING, None),
    }
    programs = [line.split("\t")[0] for line in calls.read_text().splitlines()]
    assert programs == ["bsub", "bjobs", "bhist"]


def test_a_refused_submission_carries_bsubs_words(fake: FakeLsf, tmp_path: Path) -> None:
    backend = LsfBackend(None, LsfSettings(unit_for_limits="MB"))
    spec = JobSpec(command=["true"])
    request = SubmitRequest("1", "jfab-1-x", spec, str(tmp_path / "job.sh"), str(tmp_path))
    bad = SubmitRequest(
        "2",
        "jfab-2-y",
        JobSpec(command=["true"], resources=spec.resources.merged(extra_args=["-Z"])),
        str(tmp_path / "job.sh"),
        str(tmp_path),
    )
    assert backend.submit(request) == "1001"
    with pytest.raises(SubmitError, match="Illegal option"):
        backend.submit(bad)


def test_detect_finds_the_fake_and_its_version(fake: FakeLsf) -> None:
    found = detect()
    assert found is not None and found.backend == "lsf" and found.answered
    assert found.version == "10.1.0.13"
    assert found.command.endswith("lsfbin/bsub")


@pytest.fixture
def lsfd(fake: FakeLsf, tmp_path: Path) -> Iterator[FakeLsf]:
    """The fake's lsfd running the jobs (started as the contract suite starts it)."""
    daemon = subprocess.Popen(
        [sys.executable, str(BIN.parent / "fakelsf.py"), "lsfd"], stderr=subprocess.PIPE
    )
    yield fake
    daemon.terminate()
    _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err


def wait_until(fake: FakeLsf, key: str, stat: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = fake.jobs().get(key, {})
        if job.get("stat") == stat:
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"{key} never reached {stat}: {fake.jobs().get(key)}")


def test_bkill_is_recorded_with_its_user_as_bhist_shows_it(
    lsfd: FakeLsf, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    run("bsub", "-J", "waits", "-w", "done(4242)", "/bin/true")  # refused: no such job
    run("bsub", "-J", "sleeps", "/bin/sleep", "300")
    run("bsub", "-J", "after", "-w", "done(1001)", "/bin/true")
    wait_until(lsfd, "1001", "RUN")
    assert "is being terminated" in run("bkill", "1002").stdout  # pending: ends at once
    assert "is being terminated" in run("bkill", "1001").stdout
    killed = wait_until(lsfd, "1001", "EXIT")
    assert killed["exit_code"] in ("130", "143")  # SIGINT, then SIGTERM
    history = "\n".join(parse.unwrap(run("bhist", "-l", "1001", "1002").stdout))
    assert history.count("Signal <KILL> requested by user or administrator <alice>;") == 2
    assert "TERM_OWNER: job killed by owner" in history
    seen = parse.parse_history(
        CommandResult(("bhist",), 0, history, ""),
        PollContext({i: PollTarget("", i, "", 0.0) for i in ("1001", "1002")}, ["1001", "1002"]),
    )
    assert seen["1001"][None] == (
        JobState.CANCELLED,
        int(str(killed["exit_code"])),
        "cancelled by alice",
    )
    assert seen["1002"][None] == (JobState.CANCELLED, None, "cancelled by alice")


def test_the_run_limit_sends_sigusr2_and_shows_the_limit(lsfd: FakeLsf) -> None:
    run("bsub", "-J", "slow", "-W", "1", "/bin/sleep", "300")
    with lsfd.locked() as state:  # a minute is long for a test: shorten what lsfd enforces
        state["jobs"]["1001"]["limit_s"] = 0.5
    ended = wait_until(lsfd, "1001", "EXIT")
    assert ended["exit_code"] == "140"  # 128 + SIGUSR2, as recorded TERM_RUNLIMIT ends show
    fields = " ".join(QUEUE_FIELDS)
    answer = run("bjobs", "-a", "-json", "-o", fields, "1001")
    (record,) = json.loads(answer.stdout)["RECORDS"]
    assert record["RUNTIMELIMIT"] == "0.0" and record["EXIT_REASON"].startswith("TERM_RUNLIMIT")
    history = [line.strip() for line in run("bhist", "-l", "1001").stdout.splitlines()]
    assert history[history.index("RUNLIMIT") + 1] == "0.0 min"  # prtLimit's "%-.1f min"
