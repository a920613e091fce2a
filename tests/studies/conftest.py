"""The fleet the study tests run on: local, then live SLURM and live Grid Engine (slow;
each skips, saying why, when its cluster is not there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobfleet import Fleet, load_config

#: The backends the studies run on here, with the fixture giving each its home.
BACKENDS = {"local": "jf_home", "slurm": "slurm_home", "sge": "sge_home"}


@pytest.fixture(params=list(BACKENDS), ids=str)
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    if request.param != "local":
        request.applymarker(pytest.mark.slow)
    request.getfixturevalue(BACKENDS[request.param])  # skips, saying why
    with Fleet(load_config()) as f:
        yield f
