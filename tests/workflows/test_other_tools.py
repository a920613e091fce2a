"""docs/other-tools.md's snippets run as written: every ```bash block, in order, on the
local backend (jq and GNU parallel from tests/cluster/tools-up.sh; without them these
tests skip, saying so)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "other-tools.md").read_text()
BLOCKS = re.findall(r"^```bash\n(.*?)^```", PAGE, flags=re.S | re.M)


@pytest.fixture
def run(jf_home: Path, tmp_path: Path) -> Callable[[int], list[str]]:
    for tool in ("jq", "parallel"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} on PATH (tests/cluster/tools-up.sh installs it, as root)")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def run_block(number: int) -> list[str]:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", BLOCKS[number]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"block {number}:\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        return proc.stdout.splitlines()

    return run_block


def test_the_page_has_the_blocks_these_tests_run() -> None:
    assert len(BLOCKS) == 4


def test_shell_snippets(run: Callable[[int], list[str]]) -> None:
    (line,) = run(0)
    assert re.fullmatch(r"job \d+ succeeded: hello", line)
    failed = run(1)
    assert len(failed) == 1 and re.fullmatch(r"\d+ will-fail: failed, exit 3", failed[0])
    assert run(2) == ["42"]


def test_gnu_parallel_snippet(run: Callable[[int], list[str]]) -> None:
    assert run(3) == ["5 completed", "1", "4", "9", "16", "25"]
