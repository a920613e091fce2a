"""CommandBackend's shared polling: what it concludes from recorded job outcomes."""

from __future__ import annotations

from pathlib import Path

from jobfleet.backends.base import PollTarget
from jobfleet.backends.slurm import SlurmBackend
from jobfleet.runner import CommandResult, ScriptedRunner
from jobfleet.scriptdeps import EXIT_DEPENDENCY_NEVER_MET
from jobfleet.states import JobState


def answers(sacct: str) -> ScriptedRunner:
    def respond(argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == "squeue":
            return CommandResult(argv, 0, "", "")  # gone from the queue
        return CommandResult(argv, 0, sacct, "")

    return ScriptedRunner(respond)


def test_a_script_that_found_a_dependency_never_met_is_cancelled(tmp_path: Path) -> None:
    (tmp_path / "never").write_text("after_ok dependency on job 4 can never be met\n")
    runner = answers(f"12|12|FAILED|{EXIT_DEPENDENCY_NEVER_MET}:0\n")
    status = SlurmBackend(runner).poll([PollTarget("5", "12", str(tmp_path), 0.0)])["12"]
    assert status.state is JobState.CANCELLED
    assert status.exit_code is None
    assert status.reason == "cancelled: after_ok dependency on job 4 can never be met"


def test_a_command_that_exits_196_by_itself_still_failed(tmp_path: Path) -> None:
    runner = answers(f"12|12|FAILED|{EXIT_DEPENDENCY_NEVER_MET}:0\n")
    status = SlurmBackend(runner).poll([PollTarget("5", "12", str(tmp_path), 0.0)])["12"]
    assert (status.state, status.exit_code) == (JobState.FAILED, EXIT_DEPENDENCY_NEVER_MET)


def test_a_purged_job_is_found_in_accounting_and_not_submitted_again(tmp_path: Path) -> None:
    from jobfleet.backends.base import SubmitRequest
    from jobfleet.backends.slurm import SlurmSettings
    from jobfleet.spec import JobSpec

    def respond(argv: tuple[str, ...]) -> CommandResult:
        if argv[0] == "sbatch":
            return CommandResult(argv, 1, "", "sbatch: error: Socket timed out on send/recv\n")
        if argv[0] == "squeue":
            return CommandResult(argv, 0, "", "")  # already ended and purged
        return CommandResult(argv, 0, "4242\n", "")  # sacct --name knows it

    runner = ScriptedRunner(respond)
    request = SubmitRequest(
        "7", "jfabc-7-x", JobSpec(["true"]), str(tmp_path / "j.sh"), str(tmp_path)
    )
    backend = SlurmBackend(runner, SlurmSettings(retry_backoff_s=0.0))
    assert backend.submit(request) == "4242"
    assert runner.count("sbatch") == 1


def test_accounting_is_split_only_past_the_argument_limit(tmp_path: Path) -> None:
    runner = answers("")
    many = [PollTarget(str(i), str(10_000_000 + i), str(tmp_path), 0.0) for i in range(40_000)]
    SlurmBackend(runner).poll(many)
    assert runner.count("squeue") > 1 and runner.count("sacct") > 1  # too long for one argv
    runner = answers("")
    SlurmBackend(runner).poll(many[:1000])
    assert (runner.count("squeue"), runner.count("sacct")) == (1, 1)


def test_a_submission_is_never_cut_short_by_a_bound(tmp_path: Path) -> None:
    # A status that submits a retry runs under within(): a submission stopped half-way
    # could not tell whether it happened (the job could run twice), so it is not bound.
    from jobfleet.backends.base import SubmitRequest
    from jobfleet.runner import within
    from jobfleet.spec import JobSpec

    runner = ScriptedRunner(lambda argv: CommandResult(argv, 0, "4243\n", ""))
    request = SubmitRequest(
        "8", "jfabc-8-x", JobSpec(["true"]), str(tmp_path / "j.sh"), str(tmp_path)
    )
    with within(0):  # the bound has passed already
        assert SlurmBackend(runner).submit(request) == "4243"
        assert runner.count("sbatch") == 1
