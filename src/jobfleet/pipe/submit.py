"""Workers as ONE array job through any backend, and topping a run up with more.

Every submission is appended to ``submissions.jsonl`` (its id, how many workers,
backend, resources) so a later ``pipe submit`` or the keep-alive coordinator can
submit the same again. A top-up can never make a task run twice: claims decide who
runs what (:mod:`jobfleet.pipe.store`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from jobfleet.arrays import parse_array
from jobfleet.config import load_config
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import SpecError
from jobfleet.pipe.store import RunDir
from jobfleet.pipe.worker import WALLTIME_ENV
from jobfleet.resources import Resources
from jobfleet.spec import JobSpec

__all__ = ["cancel_workers", "submit_workers", "worker_jobs_active"]

#: The worker module (``python -m``).
WORKER_MODULE = "jobfleet.pipe.worker"


def _fleet(fleet: Any, profile: str | None) -> tuple[Fleet, bool]:
    if fleet is not None:
        return fleet, False
    return Fleet(load_config(profile=profile)), True


def submit_workers(
    run: RunDir,
    workers: int,
    *,
    backend: str | None,
    profile: str | None,
    resources: Resources | Mapping[str, Any] | None,
    max_concurrent: int | None,
    python: str,
    fleet: Any,
    env: Mapping[str, str] | None = None,
    ended: int | None = None,
    name: str | None = None,
) -> str:
    """Submit ``workers`` workers of ``run`` as one array job; its jobfleet id.

    ``resources``: the configuration's with these keys changed, or (a
    :class:`Resources`) exactly these; recorded so that a top-up asks the same."""
    if workers < 1:
        raise SpecError("--workers", "give 1 or more workers")
    own_fleet, own = _fleet(fleet, profile)
    try:
        base = own_fleet.config.resources
        if isinstance(resources, Resources):
            chosen = resources
        else:
            chosen = base.overlaid(dict(resources)) if resources else base
        limit = f"%{max_concurrent}" if max_concurrent else ""
        given_env = dict(env or {})
        env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
        env.update(given_env)
        if chosen.walltime_s:
            env[WALLTIME_ENV] = str(chosen.walltime_s)
        spec = JobSpec(
            [python, "-m", WORKER_MODULE, str(run.root)],
            name=name or (f"pipe-{run.id}" if run.id else "pipe"),
            workdir=str(run.root / "work"),
            env=env,
            resources=chosen,
            # One worker is a single job: PBS refuses an array of one index.
            array=parse_array(f"1-{workers}{limit}", "--workers") if workers > 1 else None,
        )
        record = own_fleet.submit(spec, backend=backend)
        entry = {
            "job_id": record.id,
            "workers": workers,
            "backend": record.backend,
            "profile": profile,
            "resources": (
                {"all": chosen.to_dict()}
                if isinstance(resources, Resources)
                else dict(resources or {})
            ),
            "max_concurrent": max_concurrent,
            "python": python,
            "env": given_env,
            "ended": ended,
            "name": name,
            "at": time.time(),
        }
        with open(run.submissions_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        return record.id
    finally:
        if own:
            own_fleet.close()


def cancel_workers(ids: Sequence[str], *, fleet: Any) -> None:
    """Cancel the worker jobs (their running tasks end with them)."""
    own_fleet, own = _fleet(fleet, None)
    try:
        own_fleet.cancel(list(ids))
    finally:
        if own:
            own_fleet.close()


def worker_jobs_active(ids: Sequence[str], *, fleet: Any, profile: str | None) -> bool:
    """Whether any of the run's worker jobs is still waiting or running."""
    own_fleet, own = _fleet(fleet, profile)
    try:
        return any(not r.state.is_terminal for r in own_fleet.status(list(ids)))
    finally:
        if own:
            own_fleet.close()
