"""The README and examples/ run here, so they cannot drift from the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def commands(block: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line]


def env_with_venv() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_second() -> None:
    lang, first = BLOCKS[0]
    assert lang == "bash"
    assert README.index("```") < README.index("\n## "), "the commands come before any section"
    cmds = commands(first)
    assert cmds == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci


@pytest.mark.slow
def test_readme_first_command_runs_the_main_job(jf_home: Path) -> None:
    """The demo: 100 jobs on the local backend, waited on and summarised."""
    proc = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "100 completed" in proc.stdout
    assert "element 42 wrote: element 42: 42^2 = 1764" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_readme_command_line_tour(jf_home: Path, tmp_path: Path) -> None:
    tour = next(body for lang, body in BLOCKS[1:] if lang == "bash")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "hello, world" in out
    assert "element 7" in out
    assert "completed" in out  # the array's state
    assert "wait said: not all succeeded" in out
    assert "failed 3" in out
    assert "would cancel 1 job(s) (dry run: nothing done)" in out
    assert "cancelled 1 job(s)" in out
    assert any(line.startswith("would remove the files of 1 job(s), ") for line in out)
    assert "removed the files of 0 job(s), freed 0 B" in out  # none ended a week ago


def run_readme_python(number: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the README's ``number``th Python block (from 0); it must succeed."""
    return run_python([body for lang, body in BLOCKS if lang == "python"][number], cwd)


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (as ``__main__``: its functions pickle by value); it must succeed."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_readme_python_example(jf_home: Path, tmp_path: Path) -> None:
    proc = run_readme_python(0, tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == "81"


def test_readme_watching_example(jf_home: Path, tmp_path: Path) -> None:
    proc = run_readme_python(2, tmp_path)
    lines = proc.stdout.strip().splitlines()
    assert sorted(lines[:-1]) == [
        "flaky ended completed, exit code 0",
        "try-0 ended completed, exit code 0",
        "try-1 ended failed, exit code 1",
        "try-2 ended completed, exit code 0",
        "try-3 ended failed, exit code 1",
    ]
    assert lines[-1] == "flaky succeeded on attempt 2"


def test_readme_executor_example(jf_home: Path, tmp_path: Path) -> None:
    proc = run_readme_python(1, tmp_path)
    assert proc.stdout == "285\n"


def test_every_python_block_of_the_readme_runs() -> None:
    assert len([lang for lang, _ in BLOCKS if lang == "python"]) == 3


def test_readme_configuration_example_is_valid(tmp_path: Path) -> None:
    from jobfleet.config import load_config

    text = next(body for lang, body in BLOCKS if lang == "yaml")
    path = tmp_path / "jobfleet.yaml"
    path.write_text(text)
    config = load_config(path, profile="big")
    assert config.resources.cores == 8
    assert config.resources.memory_bytes == 32 * 2**30
    assert config.local.cancel_grace_s == 10


def test_example_quickstart(jf_home: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sum of squares of 0..19 = 2470" in proc.stdout


def test_example_clawpack_batch(jf_home: Path, tmp_path: Path) -> None:
    """Data written by a hook, three runs, post-processing; the rerun resumes them all."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "clawpack_batch.py"), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    heights = {"u=1.0_k=0.1": "0.8187", "u=2.0_k=0.5": "0.3679", "u=0.5_k=1.0": "0.1353"}
    lines = proc.stdout.splitlines()
    for how in ("ran", "resumed"):
        for prefix, height in heights.items():
            assert f"{prefix}: completed ({how}), final height {height}" in lines
    for prefix in heights:
        job_dir = tmp_path / "runs" / "advection" / prefix
        assert (job_dir / "data" / "setrun.data").is_file()
        assert (job_dir / "output" / "fort.q").is_file()
        assert (job_dir / "logs" / "stdout.log").read_text().startswith("advecting at u=")
    assert "Traceback" not in proc.stderr


def test_every_example_is_exercised() -> None:
    exercised = {"hello_array.sh", "work.py", "quickstart.py", "clawpack_batch.py", "snakemake"}
    # hello_array.sh runs through scripts/demo.sh; snakemake/ in tests/workflows
    assert {p.name for p in (REPO / "examples").iterdir()} == exercised


def test_readme_slurm_dry_run_shows_what_it_says(jf_home: Path, tmp_path: Path) -> None:
    """The SLURM example needs no cluster: a dry run only renders and builds the command."""
    block = next(body for lang, body in BLOCKS if lang == "bash" and "--backend slurm" in body)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, proc.stderr
    for line in [
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8192M",
        "#SBATCH --time=0-02:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj42",
        "#SBATCH --array=1-10%2",
    ]:
        assert line in proc.stdout.splitlines()
        assert f"`{line.removeprefix('#SBATCH ')}`" in README or f"`{line}`" in README
    submit = next(line for line in proc.stdout.splitlines() if line.startswith("# submit: "))
    assert submit.startswith("# submit: sbatch --parsable --job-name=jf")
    assert "-DRY-RUN-train" in submit and "/slurm-%A_%a.out" in submit


def test_readme_sge_dry_run_shows_what_it_says(jf_home: Path, tmp_path: Path) -> None:
    block = next(body for lang, body in BLOCKS if lang == "bash" and "--backend sge" in body)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env_with_venv(),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for directive in [
        "-pe smp 4",
        "-l h_rt=2:00:00,h_vmem=2048M,s_rt=1:59:00",
        "-q all.q",
        "-P proj42",
        "-t 1-10:1",
        "-tc 2",
    ]:
        assert f"#$ {directive}" in lines
        assert f"`#$ {directive}`" in README
    submit = next(line for line in lines if line.startswith("# submit: "))
    assert submit.startswith("# submit: qsub -terse -w e -N jf") and "-DRY-RUN-train" in submit


def test_the_futures_page_prints_what_it_says(jf_home: Path, tmp_path: Path) -> None:
    page = (REPO / "docs" / "futures.md").read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", page, flags=re.S)
    code = next(body for lang, body in blocks if lang == "python")
    shown = next(body for lang, body in blocks if lang == "text")
    proc = run_python(code, tmp_path)
    assert proc.stdout == shown


def test_the_studies_page_sweeps_and_points_prints_what_it_says(tmp_path: Path) -> None:
    page = (REPO / "docs" / "studies.md").read_text()
    section = page.split("\n## Sweeps and points\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    code = next(body for lang, body in blocks if lang == "python")
    shown = next(body for lang, body in blocks if lang == "text")
    assert run_python(code, tmp_path).stdout == shown


def test_the_studies_page_batch_controller_prints_what_it_says(
    jf_home: Path, tmp_path: Path
) -> None:
    page = (REPO / "docs" / "studies.md").read_text()
    section = page.split("\n## Batch controller\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    code = next(body for lang, body in blocks if lang == "python")
    shown = next(body for lang, body in blocks if lang == "text")
    proc = run_python(code, tmp_path)
    assert proc.stdout == shown
    assert (tmp_path / "runs" / "sq" / "n=2" / "output" / "square.txt").read_text() == "4"


def test_the_studies_page_study_files_load(tmp_path: Path) -> None:
    from jobfleet.studies import describe, load_study

    page = (REPO / "docs" / "studies.md").read_text()
    section = page.split("\n## Study files\n", 1)[1].split("\n## ", 1)[0]
    simplest, pipeline = [
        body
        for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
        if lang == "yaml"
    ]
    (tmp_path / "simplest.yaml").write_text(simplest)
    (tmp_path / "pipeline.yaml").write_text(pipeline)
    (step,) = load_study(tmp_path / "simplest.yaml").steps
    assert len(step.points) == 12
    assert step.points[0].command == ("python3", "simulate.py", "--a", "1", "--b", "x")
    assert "`python3 simulate.py --a 1 --b x`" in section
    study = load_study(tmp_path / "pipeline.yaml")
    plan = {s["name"]: s for s in describe(study)["steps"]}
    assert list(plan) == ["prep", "sweep", "check", "aggregate"]
    assert plan["sweep"]["after"] == [{"step": "prep", "kind": "all"}]
    assert plan["check"]["after"] == [{"step": "sweep", "kind": "each"}]
    assert plan["check"]["points"] == plan["sweep"]["points"] == 6


def test_the_pipe_page_prints_what_it_says(jf_home: Path, tmp_path: Path) -> None:
    page = (REPO / "docs" / "pipe.md").read_text()
    section = page.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    code = next(body for lang, body in blocks if lang == "python")
    shown = next(body for lang, body in blocks if lang == "text")
    assert run_python(code, tmp_path).stdout == shown


def test_the_pipe_page_task_file_and_commands_are_real(jf_home: Path, tmp_path: Path) -> None:
    from jobfleet.cli.pipe import pipe_group
    from jobfleet.pipe.model import parse_tasks

    page = (REPO / "docs" / "pipe.md").read_text()
    section = page.split("\n## From the command line\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    task_file = next(body for lang, body in blocks if lang == "text")
    first, second = parse_tasks(task_file.splitlines(), "pipe.md")
    assert first.shell and second.argv[0] == "python3" and second.id == "seed-2"
    console = next(body for lang, body in blocks if lang == "console")
    used = set(re.findall(r"jobfleet pipe (\w+)", console + section))
    assert used <= set(pipe_group.commands), used - set(pipe_group.commands)
    for command in pipe_group.commands:
        assert f"`pipe {command} RUN_DIR" in section, command
        for param in pipe_group.commands[command].params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in ("--config", "--profile", "--json"):
                    assert opt in section, (command, opt)
