"""The runner seam: argv lists, time-outs, and the bound of ``within`` (what keeps
``jobfleet status`` from waiting for a scheduler that is down)."""

from __future__ import annotations

import os
import sys
import time

import pytest

from jobfleet.errors import CommandError
from jobfleet.runner import (
    CommandResult,
    ScriptedRunner,
    SubprocessRunner,
    bounded_timeout,
    unbounded,
    within,
)

PY = sys.executable


def test_without_a_bound_the_commands_own_time_out_is_used() -> None:
    assert bounded_timeout(["squeue"], 60.0) == (60.0, 60.0)


def test_a_bound_shortens_the_time_out_and_is_named_in_messages() -> None:
    with within(5):
        left, named = bounded_timeout(["squeue"], 60.0)
    assert 0 < left <= 5 and named == 5
    with within(120):  # a bound longer than the command's own time-out changes nothing
        assert bounded_timeout(["squeue"], 60.0) == (60.0, 60.0)


def test_a_nested_bound_can_only_shorten_the_time_left() -> None:
    with within(2):
        with within(100):
            assert bounded_timeout(["squeue"], 60.0)[1] == 2
        with within(1):
            assert bounded_timeout(["squeue"], 60.0)[1] == 1
        assert bounded_timeout(["squeue"], 60.0)[1] == 2
    assert bounded_timeout(["squeue"], 60.0) == (60.0, 60.0)


def test_once_the_bound_has_passed_nothing_more_is_run() -> None:
    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, "", ""))
    with within(0), pytest.raises(CommandError) as raised:
        runner.run(["squeue", "--me"], timeout_s=60)
    assert raised.value.transient
    assert str(raised.value).endswith("squeue did not answer within 0s")
    assert runner.calls == []
    runner.run(["squeue", "--me"], timeout_s=60)  # outside the bound: run
    assert runner.calls == [("squeue", "--me")]


def test_a_command_still_running_at_the_bound_is_stopped_as_not_answering() -> None:
    started = time.monotonic()
    with within(0.5), pytest.raises(CommandError) as raised:
        SubprocessRunner().run([PY, "-c", "import time; time.sleep(60)"], timeout_s=60)
    assert raised.value.transient
    assert "did not answer within 0.5s" in str(raised.value)
    # Stopped by the bound, not by its own 60 s time-out (a sanity bound, not a timing).
    assert time.monotonic() - started < 50


def test_a_command_that_answers_in_time_is_not_touched_by_the_bound() -> None:
    with within(30):
        result = SubprocessRunner().run([PY, "-c", "print('hi')"], timeout_s=60)
    assert (result.returncode, result.stdout) == (0, "hi\n")


def test_unbounded_lifts_the_bound_for_what_must_not_be_cut_short() -> None:
    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, "1234", ""))
    with within(0):
        with unbounded():
            assert runner.run(["sbatch", "job.sh"], timeout_s=60).stdout == "1234"
            assert bounded_timeout(["sbatch"], 60.0) == (60.0, 60.0)
        with pytest.raises(CommandError):  # the bound is back after it
            runner.run(["squeue"], timeout_s=60)


# Prints much more than a pipe holds, on both streams, with Windows line ends and a
# byte that is no UTF-8; then exits 3.
_CHATTY = (
    "import sys; out = sys.stdout.buffer; err = sys.stderr.buffer\n"
    "for i in range(20000): out.write(b'line %d\\r\\n' % i); err.write(b'e%d\\n' % i)\n"
    "out.write(b'bad \\xff byte\\rend\\n'); out.flush(); err.flush(); sys.exit(3)\n"
)


def _check_chatty(result: CommandResult) -> None:
    assert result.returncode == 3
    lines = result.stdout.split("\n")
    assert lines[:2] == ["line 0", "line 1"] and lines[19999] == "line 19999"
    assert lines[20000:] == ["bad \ufffd byte", "end", ""]
    assert result.stderr.split("\n")[-2] == "e19999" and len(result.stderr.split("\n")) == 20001


def test_the_whole_output_of_both_streams_is_read_as_text() -> None:
    _check_chatty(SubprocessRunner().run([PY, "-c", _CHATTY], timeout_s=60))


def test_without_a_pidfd_the_results_and_the_time_out_are_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")  # ENOSYS: a kernel before 5.3

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    _check_chatty(SubprocessRunner().run([PY, "-c", _CHATTY], timeout_s=60))
    with pytest.raises(CommandError, match=r"did not answer within 0\.3s") as raised:
        SubprocessRunner().run([PY, "-c", "import time; time.sleep(60)"], timeout_s=0.3)
    assert raised.value.transient


def test_a_command_killed_by_a_signal_reports_it_and_a_missing_one_is_not_found() -> None:
    result = SubprocessRunner().run(
        [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], timeout_s=60
    )
    assert result.returncode == -15
    with pytest.raises(CommandError, match="command not found on PATH") as raised:
        SubprocessRunner().run(["jobfleet-no-such-program"], timeout_s=60)
    assert not raised.value.transient


def test_the_end_of_a_command_is_waited_for_not_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Popen.wait with a time-out sleeps 1 ms, 2 ms, ... between checks: a third of
    # each sbatch's time. Here the output ends well before the process does (the
    # naps recorded are this process's: the child's sleep is its own).
    naps: list[float] = []
    monkeypatch.setattr(time, "sleep", naps.append)
    result = SubprocessRunner().run(
        [PY, "-c", "import os, time; os.close(1); os.close(2); time.sleep(0.2)"],
        timeout_s=60,
    )
    assert result.returncode == 0
    assert naps == []
