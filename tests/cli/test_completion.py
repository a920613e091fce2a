"""Shell completion in the real shells: ``jobfleet completion SHELL`` loaded into bash,
zsh and fish (tests/cluster/tools-up.sh installs the latter two; without one, its
tests skip, saying so), which then complete commands, job ids from the registry and
profile names from the configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec
from jobfleet.states import JobState
from support.cli import jf

CONFIG = """\
backend: local
profiles:
  gpu: {resources: {gpus: 1}}
  big: {resources: {cores: 2}}
"""


def _shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"no {name} on PATH (tests/cluster/tools-up.sh installs it, as root)")
    return found


@pytest.fixture
def env(jf_home: Path) -> dict[str, str]:
    """A registry with three jobs (ids 1-3, the last one failed) and a configuration
    with two profiles; ``jobfleet`` on PATH."""
    Path(os.environ["JOBFLEET_CONFIG"]).write_text(CONFIG)
    with Registry(jf_home) as registry:
        made = registry.create_jobs(
            [NewJob(name, "local", JobSpec(["true"], name=name)) for name in ("a", "b", "c")]
        )
        registry.mark_submitted_many([(r.id, f"n{r.id}") for r in made])
        registry.apply([StatusUpdate(made[-1].id, JobState.FAILED, exit_code=1)])
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path}


def _run(argv: list[str], env: dict[str, str]) -> list[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def test_bash_completes_commands_job_ids_and_profiles(env: dict[str, str]) -> None:
    bash = _shell("bash")

    def complete(*words: str) -> list[str]:
        script = (
            'eval "$(jobfleet completion bash)"; COMP_WORDS=("$@"); '
            "COMP_CWORD=$(($# - 1)); _jobfleet_completion jobfleet; "
            'printf "%s\\n" "${COMPREPLY[@]}"'
        )
        return _run([bash, "-c", script, "complete", *words], env)

    assert complete("jobfleet", "sta") == ["status"]
    assert complete("jobfleet", "status", "") == ["3", "2", "1"]  # newest first
    assert complete("jobfleet", "logs", "2") == ["2"]
    assert complete("jobfleet", "wait", "1", "") == ["3", "2", "1"]  # many ids
    assert sorted(complete("jobfleet", "submit", "--profile", "")) == ["big", "gpu"]
    assert complete("jobfleet", "completion", "") == ["bash", "zsh", "fish"]


def test_fish_completes_with_descriptions(env: dict[str, str]) -> None:
    fish = _shell("fish")
    script = "jobfleet completion fish | source; complete -C $argv[1]"
    lines = _run([fish, "-c", script, "jobfleet status "], env)
    # fish sorts what it is offered; each id comes with its name and state.
    assert lines == ["1\ta (pending)", "2\tb (pending)", "3\tc (failed)"]
    lines = _run([fish, "-c", script, "jobfleet status --profile g"], env)
    assert lines == ["gpu"]


def test_zsh_loads_the_script_and_its_protocol_answers(env: dict[str, str]) -> None:
    zsh = _shell("zsh")
    script = (
        "autoload -Uz compinit && compinit -u -D && "
        'eval "$(jobfleet completion zsh)" && print -r -- ${_comps[jobfleet]}'
    )
    assert _run([zsh, "-f", "-c", script], env) == ["_jobfleet_completion"]
    # What the script asks jobfleet while the user types `jobfleet show <Tab>`:
    # (type, value, help) triples, one per line.
    asked = {
        **env,
        "_JOBFLEET_COMPLETE": "zsh_complete",
        "COMP_WORDS": "jobfleet show ",
        "COMP_CWORD": "2",
    }
    assert _run(["jobfleet"], asked)[:6] == [
        "plain",
        "3",
        "c (failed)",
        "plain",
        "2",
        "b (pending)",
    ]


def test_nothing_to_read_completes_nothing_and_never_fails(tmp_path: Path) -> None:
    """No registry, a broken configuration: no completions, exit 0, no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: [not, a, mapping\n")
    env = {
        **os.environ,
        "JOBFLEET_HOME": str(tmp_path / "no-home"),
        "JOBFLEET_CONFIG": str(bad),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for words, cword in (("jobfleet status ", "2"), ("jobfleet status --profile ", "3")):
        asked = {
            **env,
            "_JOBFLEET_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": cword,
        }
        assert [line for line in _run(["jobfleet"], asked) if line] == []
    assert not (tmp_path / "no-home").exists()  # completing wrote nothing


def test_an_unknown_shell_is_a_usage_error(jf_home: Path) -> None:
    line = jf("completion", "tcsh", expect=2).stderr.strip()
    assert line.startswith("jobfleet: error: ") and "'tcsh'" in line and "bash" in line


def test_the_readme_way_of_loading_it_works_in_bash(env: dict[str, str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## Shell completion\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    script = block + "\ncomplete -p jobfleet"
    (line,) = _run([_shell("bash"), "-c", script], env)
    assert "-F _jobfleet_completion" in line and line.endswith(" jobfleet")
