"""A small pipeline from Python: prepare, fan out an array, gather; wait and summarise.

Run it with the package installed: ``python examples/quickstart.py``. It uses the
configured backend (by default the scheduler this machine has, else the local one:
``jobfleet info`` says which).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from jobfleet import Dependency, DepKind, Fleet, JobSpec, JobState, Resources, parse_array


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="jobfleet-quickstart-"))
    small = Resources.of(cores=1, memory="100M", walltime="5m")
    with Fleet() as fleet:
        prepare = fleet.submit(
            JobSpec(
                ["python3", "-c", "open('numbers.txt', 'w').write(' '.join(map(str, range(20))))"],
                name="prepare",
                workdir=str(workdir),
                resources=small,
            )
        )
        square = fleet.submit(
            JobSpec(
                [
                    "python3",
                    "-c",
                    "import os; i = int(os.environ['JOBFLEET_ARRAY_INDEX']);"
                    " n = int(open('numbers.txt').read().split()[i]);"
                    " open(f'square.{i}', 'w').write(str(n * n))",
                ],
                name="square",
                workdir=str(workdir),
                resources=small,
                array=parse_array("0-19%4"),
                dependencies=(Dependency(DepKind.AFTER_OK, (prepare.id,)),),
            )
        )
        gather = fleet.submit(
            JobSpec(
                [
                    "python3",
                    "-c",
                    "import glob; print(sum(int(open(f).read()) for f in glob.glob('square.*')))",
                ],
                name="gather",
                workdir=str(workdir),
                resources=small,
                dependencies=(Dependency(DepKind.AFTER_OK, (square.id,)),),
            )
        )
        done = fleet.wait([prepare.id, square.id, gather.id], timeout_s=300)
        for job in done:
            print(f"job {job.id} {job.name}: {job.state.value}")
        if not all(job.state is JobState.COMPLETED for job in done):
            return 1
        total = fleet.log_path(gather.id).read_text().strip()
    print(f"sum of squares of 0..19 = {total}")
    return 0 if total == str(sum(n * n for n in range(20))) else 1


if __name__ == "__main__":
    sys.exit(main())
