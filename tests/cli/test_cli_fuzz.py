"""The command line as a hostile user types it, in-process: every outcome is an exit
status of 0, 1 or 2 with at most one short error line; never a traceback, never an
"internal error". Thousands of generated command lines per run of the suite
(``JOBFLEET_SOAK=1`` runs 50,000), plus the cases found by hand as regressions.

Submissions are dry runs, and the ids are hostile text or those of jobs recorded as
ended (a single job and an array, on the local backend), so nothing ever runs. Each case
is bounded in time (a hang detector, far above any real answer) and in memory: no case
may raise the process's peak RSS by more than ``MAX_GROWTH`` (the 352-byte alias bomb
once took 3.2 GiB).
"""

from __future__ import annotations

import io
import os
import resource
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobfleet.cli.main import main
from unit.test_config_hostile import hostile_text

#: Cases per run of the suite; ``JOBFLEET_SOAK=1`` for a long soak.
EXAMPLES = 50_000 if os.environ.get("JOBFLEET_SOAK") else 2_000
#: The longest error line a user may get.
MAX_LINE = 500
#: How much one case may raise the process's peak memory (resident set).
MAX_GROWTH = 256 * 1024 * 1024
#: A case that takes this long has hung (the slowest answers take well under a second).
HANG_S = 60.0
#: The ids of the jobs recorded in the fuzz registry (filled by the ``home`` fixture).
REAL_IDS: list[str] = []


def peak_rss() -> int:
    """The process's peak resident set so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(argv: list[str]) -> tuple[int, str, str]:
    """``jobfleet ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def check(argv: list[str]) -> tuple[int, str]:
    before, started = peak_rss(), time.monotonic()
    status, out, err = run(argv)
    took, grew = time.monotonic() - started, peak_rss() - before
    shown = f"jobfleet {argv!r}\nstatus {status}\nstderr {err[:2000]!r}"
    assert took < HANG_S, f"{shown}\nhung for {took:.0f}s"
    assert grew < MAX_GROWTH, f"{shown}\npeak memory grew by {grew >> 20} MiB"
    assert status in (0, 1, 2), shown
    assert "internal error" not in err and "Traceback" not in err + out, shown
    lines = err.splitlines()
    if status == 1 and argv[0] == "wait" and not lines:
        # An ended job that did not succeed: wait's summary says so, not an error.
        assert any(word in out for word in ("failed", "cancelled", "lost")), shown
    elif status:
        assert lines, shown
        assert lines[-1].startswith("jobfleet: error: "), shown
        assert all(len(line) < MAX_LINE for line in lines), shown
    return status, err


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One JOBFLEET_HOME for every case: a local backend that is never started."""
    base = tmp_path_factory.mktemp("fuzz")
    config = base / "jobfleet.yaml"
    config.write_text("backend: local\nlocal: {cores: 2, memory: 4G, gpus: 0}\n")
    saved = {k: os.environ.get(k) for k in ("JOBFLEET_HOME", "JOBFLEET_CONFIG")}
    os.environ["JOBFLEET_HOME"] = str(base / "home")
    os.environ["JOBFLEET_CONFIG"] = str(config)
    REAL_IDS[:] = record_ended_jobs(base / "home")
    yield base
    REAL_IDS.clear()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def record_ended_jobs(home: Path) -> list[str]:
    """Record a completed job and a failed array of three elements (never run); their ids."""
    from jobfleet.registry import NewJob, Registry, StatusUpdate
    from jobfleet.spec import ArraySpec, JobSpec
    from jobfleet.states import JobState

    with Registry(home) as registry:
        single, array = registry.create_jobs(
            [
                NewJob("done", "local", JobSpec(["true"], name="done")),
                NewJob("arr", "local", JobSpec(["true"], name="arr", array=ArraySpec((1, 2, 3)))),
            ],
            ["101", "102"],
        )
        ended = (JobState.FAILED, 1, "exit 1")
        registry.apply(
            [
                StatusUpdate(single.id, JobState.COMPLETED, exit_code=0, native_id="101"),
                StatusUpdate(array.id, elements=dict.fromkeys((1, 2, 3), ended), native_id="102"),
            ]
        )
    return [single.id, array.id]


#: Text a hostile user might type: other scripts' digits, control characters, bytes
#: that are not UTF-8 (as Python's argv holds them), huge numbers, very long values.
HOSTILE = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789\u0663\u09ea-%,:.", max_size=20),
    st.text(alphabet="\x00\x01\n\t\x7f \udcff\u202e$`'\";|&", max_size=10),
    st.integers(-(10**30), 10**30).map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.integers(1, 120_000).map(lambda n: "x" * n),
    st.sampled_from(["1-10%2", "0-20:5", "1,3,5-9", "4G", "1h", "TERM", "after_ok", "1"]),
)
SUBMIT_OPTIONS = [
    "--name",
    "--cores",
    "--memory",
    "--walltime",
    "--gpus",
    "--queue",
    "--account",
    "--array",
    "--after-ok",
    "--after-any",
    "--after-not-ok",
    "--workdir",
    "--env",
    "--retries",
    "--retry-on",
    "--backend",
    "--profile",
]
ID_COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["wait", "--timeout", "0"],
    ["cancel"],
    ["logs"],
    ["cancel", "--index"],
    ["status", "--limit"],
    ["clean", "--dry-run", "--older-than"],
    ["clean", "--dry-run", "--state"],
]


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    if draw(st.booleans()):
        argv = ["submit", "--dry-run"]
        for option in draw(st.lists(st.sampled_from(SUBMIT_OPTIONS), max_size=4)):
            argv += [option, draw(HOSTILE)]
        if draw(st.booleans()):
            argv.append("--shell")
        return [*argv, "--", *draw(st.lists(HOSTILE, min_size=1, max_size=3))]
    ids = st.one_of(
        HOSTILE, st.sampled_from(REAL_IDS), st.sampled_from(REAL_IDS).map(lambda i: i + " ")
    )
    return [*draw(st.sampled_from(ID_COMMANDS)), *draw(st.lists(ids, min_size=1, max_size=3))]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(argv=command_lines())
def test_any_command_line_gets_an_answer_not_a_crash(home: Path, argv: list[str]) -> None:
    check(argv)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status", "9" * 5000], "no job with id"),
        (["wait", "9" * 5000], "no job with id"),
        (["cancel", "9" * 5000], "no job with id"),
        (["logs", "9" * 5000], "no job with id"),
        (["submit", "--after-ok", "9" * 5000, "--", "true"], "not in the registry"),
        (["submit", "--after-any", "9" * 5000, "--", "true"], "not in the registry"),
        (["submit", "--after-not-ok", "9" * 5000, "--", "true"], "not in the registry"),
        (["submit", "--name", "x\udcff", "--", "true"], "must be text"),
        (["submit", "--dry-run", "--name", "x\udcff", "--", "true"], "must be text"),
        (["submit", "--dry-run", "--array", "1-" * 30_000, "--", "true"], "array"),
        (["submit", "--dry-run", "--name", "\x01" + "a" * 100_000, "--", "true"], "name"),
        (["submit", "--dry-run", "--cores", "٣", "--", "true"], "--cores"),
        (["submit", "--dry-run", "--retries", "٣", "--", "true"], "--retries"),
        (["submit", "--dry-run", "--retries", "4\n", "--", "true"], "--retries"),
        (["wait", "--timeout", "٣", "1"], "--timeout"),
    ],
)
def test_cases_found_by_hand_are_clear_errors(home: Path, argv: list[str], words: str) -> None:
    status, err = check(argv)
    assert status == 2, err
    assert words in err


def test_a_program_name_that_is_not_utf8_still_gets_a_name(home: Path) -> None:
    status, err = check(["submit", "--dry-run", "--", "/bin/\udcffprog"])
    assert status == 0, err


#: Commands that read the configuration, each given a hostile file with --config.
CONFIG_COMMANDS = [
    ["config", "show"],
    ["config", "show", "--json", "--profile", "p"],
    ["submit", "--dry-run", "--", "true"],
    ["status", "--no-refresh"],
    ["queue", "--json"],
]
#: Hostile configuration files per run (the unit tests try more, through load_config).
CONFIG_EXAMPLES = 10_000 if os.environ.get("JOBFLEET_SOAK") else 300


@settings(
    max_examples=CONFIG_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=hostile_text(), command=st.sampled_from(CONFIG_COMMANDS))
def test_any_configuration_file_gets_an_answer_not_a_crash(
    home: Path, text: str, command: list[str]
) -> None:
    path = home / "hostile.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    split = 2 if command[0] == "config" else 1
    status, err = check([*command[:split], "--config", str(path), *command[split:]])
    if status == 2:
        assert "hostile.yaml" in err, err  # names the file (its path may be shortened)
