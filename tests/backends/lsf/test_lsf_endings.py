"""How LSF jobs end, in the words every backend uses (docs/states.md): every termination
reason IBM lists, who cancelled, the run and CPU time limits, memory, dependencies never
met, rare states, and never an exit code 0 on a job that did not succeed. Over the
fixtures (tests/backends/lsf/fixtures/SOURCES)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobfleet.backends.base import PollTarget
from jobfleet.backends.command import PollContext
from jobfleet.backends.lsf import endings, parse
from jobfleet.backends.lsf.endings import Known, history_known, map_exit, parse_limit
from jobfleet.runner import CommandResult
from jobfleet.states import JobState

FIXTURES = Path(__file__).parent / "fixtures"

P, R, C, F = JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED
X, T, M, U = JobState.CANCELLED, JobState.TIMEOUT, JobState.OUT_OF_MEMORY, JobState.UNKNOWN


def load(name: str) -> CommandResult:
    """Fixture ``recorded/NAME`` or ``documented/NAME`` as the runner would return it."""
    base = FIXTURES / name
    meta = json.loads(base.with_suffix(".meta.json").read_text())
    out = base.with_suffix(".out").read_text()
    return CommandResult(tuple(meta["argv"]), meta["returncode"], out, meta["stderr"])


def ctx(*ids: str) -> PollContext:
    return PollContext({i: PollTarget("1", i, "/tmp", 0.0) for i in ids}, list(ids))


#: IBM Spectrum LSF 10.1, "Termination reasons displayed by bacct, bhist, and bjobs".
IBM_REASONS = {
    "TERM_ADMIN": X,
    "TERM_BUCKET_KILL": X,
    "TERM_CHKPNT": X,
    "TERM_CPULIMIT": F,
    "TERM_CSM_ALLOC": F,
    "TERM_CWD_NOTEXIST": F,
    "TERM_DATA": F,
    "TERM_DEADLINE": T,
    "TERM_EXTERNAL_SIGNAL": F,
    "TERM_FORCE_ADMIN": X,
    "TERM_FORCE_OWNER": X,
    "TERM_KUBE": F,
    "TERM_LOAD": F,
    "TERM_MC_RECALL": F,
    "TERM_MEMLIMIT": M,
    "TERM_ORPHAN_SYSTEM": X,
    "TERM_OTHER": P,
    "TERM_OWNER": X,
    "TERM_PREEMPT": F,
    "TERM_PRE_EXEC_FAIL": F,
    "TERM_PROCESSLIMIT": F,
    "TERM_RC": F,
    "TERM_REMOVE_HUNG_JOB": F,
    "TERM_REQUEUE_ADMIN": P,
    "TERM_REQUEUE_OWNER": P,
    "TERM_REQUEUE_RC": P,
    "TERM_RMS": F,
    "TERM_RUNLIMIT": T,
    "TERM_SLURM": F,
    "TERM_SWAP": M,
    "TERM_THREADLIMIT": F,
    "TERM_UNKNOWN": F,
    "TERM_WINDOW": F,
    "TERM_ZOMBIE": F,
}


@pytest.mark.parametrize(("term", "state"), sorted(IBM_REASONS.items()))
def test_every_termination_reason(term: str, state: JobState) -> None:
    assert endings.TERM_MAP[term] is state
    got = map_exit("", f"{term}: what LSF says", Known(owner="alice", run_limit_s=60))
    assert got[0] is state
    assert got[1] is None  # no exit code given: none made up
    reason = got[2] or ""
    if state is X:
        assert reason.startswith("cancelled")
    elif term == "TERM_RUNLIMIT":
        assert reason == "walltime limit exceeded (00:01:00)"
    elif term == "TERM_CPULIMIT":
        assert reason == "CPU time limit exceeded"
    elif state is M:
        assert reason.startswith("memory limit exceeded (")
    else:
        assert term in reason  # LSF's own words kept


def test_the_map_is_ibms_list() -> None:
    assert set(endings.TERM_MAP) == set(IBM_REASONS)


@pytest.mark.parametrize(
    ("code", "reason", "known", "expected"),
    [
        # the owner's kill: bjobs' USER, or bhist's requester when it names one
        (
            "130",
            "TERM_OWNER: job killed by owner",
            Known(owner="alice"),
            (X, 130, "cancelled by alice"),
        ),
        (
            "",
            "TERM_OWNER: job killed by owner",
            Known(),
            (X, None, "cancelled (TERM_OWNER: job killed by owner; LSF did not say by whom)"),
        ),
        (
            "",
            "TERM_ADMIN: job killed by root or LSF administrator",
            Known(owner="alice", killer="bob"),
            (X, None, "cancelled by bob"),
        ),
        (
            "",
            "TERM_ADMIN: job killed by root or LSF administrator",
            Known(owner="alice"),
            (
                X,
                None,
                "cancelled (TERM_ADMIN: job killed by root or LSF administrator; "
                "LSF did not say by whom: root or an LSF administrator)",
            ),
        ),
        (
            "",
            "TERM_FORCE_OWNER: job killed by owner without time for cleanup",
            Known(owner="alice"),
            (X, None, "cancelled by alice"),
        ),
        # never a success's code on a job that did not succeed
        (
            "0",
            "TERM_OWNER: job killed by owner",
            Known(owner="alice"),
            (X, None, "cancelled by alice"),
        ),
        (
            "0",
            "TERM_RUNLIMIT: job killed after reaching LSF run time limit",
            Known(),
            (T, None, "walltime limit exceeded"),
        ),
        (
            "0",
            "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit",
            Known(),
            (
                M,
                None,
                "memory limit exceeded "
                "(TERM_MEMLIMIT: job killed after reaching LSF memory usage limit)",
            ),
        ),
        (
            "140",
            "TERM_RUNLIMIT: job killed after reaching LSF run time limit",
            Known(run_limit_s=3600),
            (T, 140, "walltime limit exceeded (01:00:00)"),
        ),
        (
            "152",
            "TERM_CPULIMIT: job killed after reaching LSF CPU usage limit",
            Known(cpu_limit_s=600, run_limit_s=3600),
            (F, 152, "CPU time limit exceeded (00:10:00)"),
        ),
        (
            "137",
            "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit",
            Known(max_mem="1.1 Gbytes", mem_limit="1 G"),
            (
                M,
                137,
                "memory limit exceeded (MAX_MEM 1.1 Gbytes; MEMLIMIT 1 G; "
                "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit)",
            ),
        ),
        (
            "",
            "TERM_DEADLINE: job killed after deadline expires",
            Known(),
            (T, None, "deadline reached (TERM_DEADLINE: job killed after deadline expires)"),
        ),
        (
            "",
            "TERM_ORPHAN_SYSTEM: The orphan job was automatically terminated by LSF",
            Known(killer="bob"),
            (
                X,
                None,
                "cancelled: a dependency can never be met "
                "(TERM_ORPHAN_SYSTEM: The orphan job was automatically terminated by LSF)",
            ),
        ),
    ],
)
def test_endings_read_the_same_as_everywhere(
    code: str, reason: str, known: Known, expected: tuple[object, ...]
) -> None:
    assert map_exit(code, reason, known) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1440.0", 86400.0),  # recorded/bjobs-json-runtimelimit (Summit): minutes
        ("00:10:00", 600.0),  # recorded/bjobs-json-done-escaped (DKFZ, -hms)
        ("3.0/hostA", 180.0),  # ABS_RUNLIMIT=Y (bjobs -hms, IBM LSF 10.1)
        ("480.0 min of a6122", 28800.0),  # bjobs -l, bhist -l
        ("10085.0 min", 605100.0),
        ("", None),
        ("-", None),
        ("UNLIMITED", None),
    ],
)
def test_run_limits_as_lsf_prints_them(text: str, seconds: float | None) -> None:
    assert parse_limit(text) == seconds


def test_recorded_runtimelimit_fields() -> None:
    for name in ("recorded/bjobs-json-runtimelimit", "recorded/bjobs-json-done-escaped"):
        (record,) = parse.queue_records(load(name), text_format=False)
        assert parse_limit(record["RUNTIMELIMIT"]) in (86400.0, 600.0)


def test_limit_blocks_of_recorded_long_output() -> None:
    done = history_known(parse.unwrap(load("recorded/bjobs-l-done").stdout))
    assert (done.run_limit_s, done.cpu_limit_s) == (28800.0, None)
    run = history_known(parse.unwrap(load("recorded/bjobs-l-run-wrapped").stdout))
    assert (run.run_limit_s, run.mem_limit) == (605100.0, "3.9 G")


def test_bjobs_endings_and_rare_states() -> None:
    ids = [str(i) for i in range(301, 315)]
    seen = parse.parse_queue(load("documented/bjobs-json-endings"), ctx(*ids))
    got = {i: e[None] for i, e in seen.items()}
    assert got["301"] == (X, None, "cancelled by alice")  # killed while pending
    assert got["302"] == (T, None, "walltime limit exceeded (01:00:00)")  # EXIT_CODE ""
    assert got["303"] == (F, 152, "CPU time limit exceeded")
    assert got["304"][:2] == (X, None)  # EXIT_CODE "0" on a kill: no success's code
    assert "LSF did not say by whom" in (got["304"][2] or "")
    assert got["305"][0] is X and (got["305"][2] or "").startswith("cancelled: ")
    assert "can never be met" in (got["305"][2] or "")
    assert got["306"][0] is P and "can never be met" in (got["306"][2] or "")
    assert "jobfleet cancel" in (got["306"][2] or "")
    assert got["307"][:2] == (R, None) and "suspended by its owner" in (got["307"][2] or "")
    assert got["308"][:2] == (R, None) and "suspended by LSF" in (got["308"][2] or "")
    assert got["309"][:2] == (U, None) and "ZOMBI" in (got["309"][2] or "")
    assert got["310"][:2] == (U, None) and "UNKWN" in (got["310"][2] or "")
    assert got["311"] == (
        M,
        137,
        "memory limit exceeded (MAX_MEM 1.1 Gbytes; "
        "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit)",
    )
    assert got["312"] == (T, 140, "walltime limit exceeded (00:10:00)")
    assert got["313"] == (F, None, "TERM_PREEMPT: job killed after preemption")
    assert got["314"][0] is P and (got["314"][2] or "").startswith("held")
    assert "suspended by the user while pending" in (got["314"][2] or "")


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("WAIT", P),
        ("PROV", P),
        ("PSUSP", P),
        ("USUSP", R),
        ("SSUSP", R),
        ("UNKWN", U),
        ("ZOMBI", U),
    ],
)
def test_rare_states_say_why(stat: str, state: JobState) -> None:
    got = parse.element_of(stat, "", "", "")
    assert got[0] is state and got[1] is None
    assert got[2]  # never a bare state without a word on it


def test_history_names_who_cancelled_and_the_limits() -> None:
    ids = ("401", "402", "403", "404", "405")
    seen = parse.parse_history(load("documented/bhist-l-endings"), ctx(*ids))
    got = {i: e[None] for i, e in seen.items()}
    assert got == {
        "401": (X, 130, "cancelled by bob"),  # an administrator's kill, named by bhist
        "402": (T, 140, "walltime limit exceeded (01:00:00)"),  # SIGUSR2 at the run limit
        "403": (F, 152, "CPU time limit exceeded (00:10:00)"),  # SIGXCPU
        "404": (X, None, "cancelled by alice"),  # killed while pending: no exit code
        "405": (
            M,
            137,
            "memory limit exceeded (MAX_MEM 1.1 Gbytes; MEMLIMIT 1 G; "
            "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit)",
        ),
    }
