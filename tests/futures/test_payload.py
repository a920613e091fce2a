"""The files a call travels in, and the job side that runs it (no scheduler)."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

from jobfleet.futures.errors import JobFailedError, RemoteError
from jobfleet.futures.payload import (
    Call,
    Outcome,
    PayloadTooLarge,
    read_calls,
    read_outcomes,
    versions,
    write_calls,
    write_outcomes,
)
from jobfleet.futures.run import CANNOT_RUN, call_files, main


class Unpicklable(Exception):
    """An exception carrying a lock: it does not pickle."""

    def __init__(self) -> None:
        import threading

        super().__init__("holds a lock")
        self.lock = threading.Lock()


def add(a: int, b: int = 0) -> int:
    return a + b


def fails(kind: str) -> None:
    if kind == "value":
        raise ValueError("bad value 7")
    if kind == "exit":
        sys.exit(4)
    raise Unpicklable()


def returns_lock() -> object:
    import threading

    return threading.Lock()


def run_job(tmp_path: Path, calls: list[Call], monkeypatch: pytest.MonkeyPatch) -> int:
    payload, _ = call_files(tmp_path, 3)
    write_calls(payload, calls)
    monkeypatch.setenv("JOBFLEET_ARRAY_INDEX", "3")
    return main([str(tmp_path)])


def test_calls_round_trip_with_a_readable_header(tmp_path: Path) -> None:
    path = tmp_path / "call.in"
    size = write_calls(path, [Call(add, (1,), {"b": 2}), Call(len, ("abc",))])
    header = json.loads(path.read_bytes().split(b"\n", 1)[0])
    assert header == {"format": "jobfleet-call/1", **versions(), "calls": 2}
    assert size == path.stat().st_size - len(json.dumps(header)) - 1
    _, calls = read_calls(path)
    assert [c.fn(*c.args, **(c.kwargs or {})) for c in calls] == [3, 3]
    assert not list(tmp_path.glob(".call.in.*")), "the temporary file was renamed"


def test_a_payload_over_the_limit_is_refused_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "call.in"
    limit = r"over the executor's limit of 1,000 \(max_payload\)"
    with pytest.raises(PayloadTooLarge, match=limit):
        write_calls(path, [Call(add, (b"x" * 5000,))], limit=1000)
    assert not path.exists()


def test_the_job_runs_every_call_and_tells_each_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [Call(add, (2, 3)), Call(fails, ("value",)), Call(fails, ("exit",))]
    calls += [Call(fails, ("lock",)), Call(returns_lock)]
    assert run_job(tmp_path, calls, monkeypatch) == 1, "a call raised: the job fails"
    outcomes = read_outcomes(call_files(tmp_path, 3)[1])
    assert outcomes is not None
    ok, value, exited, unpicklable, lock = outcomes
    assert (ok.ok, ok.value()) == (True, 5)
    assert (value.ok, value.type_name) == (False, "builtins.ValueError")
    assert value.message == "bad value 7"
    assert "raise ValueError" in value.traceback
    assert isinstance(value.value(), ValueError)
    assert exited.type_name == "builtins.SystemExit"
    assert unpicklable.type_name.endswith("Unpicklable") and unpicklable.blob == b""
    assert "holds a lock" in unpicklable.message
    assert not lock.ok and "cannot be pickled" in lock.message


def test_all_calls_returning_exit_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_job(tmp_path, [Call(add, (1, 1))], monkeypatch) == 0
    outcomes = read_outcomes(call_files(tmp_path, 3)[1])
    assert outcomes is not None and outcomes[0].value() == 2


def test_other_versions_fail_before_unpickling_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    payload, outcome_file = call_files(tmp_path, None)
    write_calls(payload, [Call(add, (1,)), Call(add, (2,))])
    head, _ = payload.read_bytes().split(b"\n", 1)
    header = json.loads(head)
    header["cloudpickle"] = "0.9.9"
    payload.write_bytes(json.dumps(header).encode() + b"\n" + b"not a pickle")
    monkeypatch.delenv("JOBFLEET_ARRAY_INDEX", raising=False)
    assert main([str(tmp_path)]) == 1
    outcomes = read_outcomes(outcome_file)
    assert outcomes is not None and len(outcomes) == 2, "one outcome per call"
    assert {o.type_name for o in outcomes} == {CANNOT_RUN}
    message = outcomes[0].message
    assert "cloudpickle 0.9.9" in message and f"cloudpickle {versions()['cloudpickle']}" in message
    assert f"Python {versions()['python']}" in message
    assert "cloudpickle 0.9.9" in capsys.readouterr().err, "the job's log says it too"


def test_a_missing_or_foreign_payload_is_told_not_raised(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 1
    outcomes = read_outcomes(call_files(tmp_path, None)[1])
    assert outcomes is not None and "cannot read the call's payload" in outcomes[0].message
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "call.in").write_text("hello\n")
    assert main([str(tmp_path / "other")]) == 1
    outcomes = read_outcomes(tmp_path / "other" / "call.out")
    assert outcomes is not None and "not a jobfleet-call/1 file" in outcomes[0].message


def test_a_cut_short_outcome_file_is_an_error_not_a_result(tmp_path: Path) -> None:
    path = tmp_path / "call.out"
    write_outcomes(path, [Outcome(True, pickle.dumps(list(range(1000))))])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="cut short"):
        read_outcomes(path)
    assert read_outcomes(tmp_path / "none.out") is None


def test_errors_pickle_and_say_what_happened() -> None:
    err = JobFailedError("7", 2, "timeout", 143, "walltime limit exceeded (00:01:00)", "o", "e")
    assert str(err) == (
        "job 7[2] ended timeout, exit code 143 (walltime limit exceeded (00:01:00)) "
        "without a result; its output: o and e"
    )
    again = pickle.loads(pickle.dumps(err))
    assert (again.state, again.exit_code, again.index) == ("timeout", 143, 2)
    remote = pickle.loads(pickle.dumps(RemoteError("mod.Err", "boom", "Traceback ...")))
    assert (str(remote), remote.traceback) == ("mod.Err: boom", "Traceback ...")
