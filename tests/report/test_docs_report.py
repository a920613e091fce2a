"""docs/report.md's example runs, and prints what the page says it prints."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from support.pictures import png_size

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "report.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", PAGE, flags=re.S)


def test_the_report_page_example_prints_what_it_says(jf_home: Path, tmp_path: Path) -> None:
    example = next(body for lang, body in BLOCKS if lang == "bash")
    said = [line[2:] for line in example.splitlines() if line.startswith("# ")]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert said and proc.stdout.splitlines()[-len(said) :] == said
    assert "Plotly.newPlot(" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert png_size(tmp_path / "report.png")[0] > 0


def test_the_report_page_python_example_is_python() -> None:
    (code,) = [body for lang, body in BLOCKS if lang == "python"]
    ast.parse(code)
    assert "build_report(records)" in code
