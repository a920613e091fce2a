"""``jobfleet result ID``: what a job's Python calls returned or raised."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PY = sys.executable

SCRIPT = """
import concurrent.futures
from jobfleet import Executor

def f(x):
    if x == 2:
        raise KeyError(x)
    return {"x": x}

ex = Executor()
one = ex.submit(f, 1)
with ex.batch():
    many = [ex.submit(f, i) for i in (1, 2, 3)]
concurrent.futures.wait([one, *many])
print(one.job_id, many[0].job_id)
"""


def jf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "jobfleet", *args], capture_output=True, text=True, timeout=120
    )


def test_result_prints_values_and_errors(jf_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "calls.py"
    script.write_text(textwrap.dedent(SCRIPT))
    made = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=240)
    assert made.returncode == 0, made.stderr
    single, array = made.stdout.split()
    done = jf("result", single)
    assert (done.returncode, done.stdout) == (0, "{'x': 1}\n")
    mixed = jf("result", array)
    assert mixed.returncode == 1, "a call raised"
    assert mixed.stdout.splitlines() == [
        "[1]#0: {'x': 1}",
        "[2]#0: builtins.KeyError: 2",
        "[3]#0: {'x': 3}",
    ]
    assert ", in f\nKeyError: 2" in mixed.stderr, "the remote traceback"
    data = json.loads(jf("result", array, "--json").stdout)
    assert (data["id"], data["state"], data["exit_code"]) == (array, "failed", 1)
    assert [(c["index"], c["ok"], c["value"], c["type"]) for c in data["calls"]] == [
        (1, True, "{'x': 1}", None),
        (2, False, None, "builtins.KeyError"),
        (3, True, "{'x': 3}", None),
    ]


def test_result_of_a_job_that_runs_no_call_is_a_clear_error(jf_home: Path) -> None:
    submitted = jf("submit", "--", "true")
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip()
    assert jf("wait", job).returncode == 0
    proc = jf("result", job)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"jobfleet: error: job_id: job {job} does not run a Python call of an Executor\n"
    )
