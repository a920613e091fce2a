"""A Clawpack-style batch: each simulation writes its data file, runs, and is post-processed.

Run it with the package installed: ``python examples/clawpack_batch.py [BASE_PATH]``.
Three "simulations" of a pulse carried at speed ``u`` while it decays at rate ``k``
run as jobs on the configured backend (``jobfleet info`` says which), each in
``BASE_PATH/advection/<prefix>/`` (data/, output/, logs/). Running it again with the
same BASE_PATH resumes: the simulations that completed are not run again.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from jobfleet.studies.batch import BatchController, Job, JobPaths, JobResult

# The "solver": reads setrun.data (one "name value" per line) from the data directory
# given as its argument, writes the pulse's final position and height to fort.q in its
# working directory (the job's output directory).
SOLVER = """
import math, sys
params = dict(line.split() for line in open(sys.argv[1] + '/setrun.data'))
u, k, t = (float(params[name]) for name in ('u', 'k', 't_final'))
print(f'advecting at u={u} for t={t}')
with open('fort.q', 'w') as out:
    out.write(f'position {u * t:.4f}\\nheight {math.exp(-k * t):.4f}\\n')
"""


class Simulation(Job):
    """One run of the solver with wave speed ``u`` and decay rate ``k``."""

    def __init__(self, u: float, k: float, t_final: float = 2.0) -> None:
        super().__init__(f"u={u}_k={k}", resources={"cores": 1, "walltime": "5m"})
        self.u, self.k, self.t_final = u, k, t_final
        self.height: float | None = None

    def write_data(self, paths: JobPaths) -> None:
        lines = [f"u {self.u}", f"k {self.k}", f"t_final {self.t_final}"]
        (paths.data_dir / "setrun.data").write_text("\n".join(lines) + "\n")

    def command(self, paths: JobPaths) -> Sequence[str]:
        return [sys.executable, "-c", SOLVER, str(paths.data_dir)]

    def post_run(self, result: JobResult) -> None:
        if not result.ok:
            return
        values = dict(line.split() for line in (result.paths.output_dir / "fort.q").open())
        self.height = float(values["height"])


def run(base: Path, clobber: Literal["error", "skip"]) -> list[JobResult]:
    simulations = [Simulation(1.0, 0.1), Simulation(2.0, 0.5), Simulation(0.5, 1.0)]
    batch = BatchController(
        simulations,
        base_path=base,
        experiment="advection",
        clobber=clobber,
    )
    results = batch.run(timeout_s=300)
    for sim, result in zip(simulations, results, strict=True):
        how = "resumed" if result.resumed else "ran"
        print(f"{result.prefix}: {result.state.value} ({how}), final height {sim.height}")
    return results


def main() -> int:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="claw-"))
    first = run(base, "error")
    again = run(base, "skip")  # nothing left to do: every simulation is resumed
    ok = all(r.ok for r in first + again) and all(r.resumed for r in again)
    print(f"outputs in {base / 'advection'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
