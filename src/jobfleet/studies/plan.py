"""What a study would run, without running it: per step, its points, its first
commands and what it waits for (``jobfleet run --dry-run`` prints it).

>>> from jobfleet.studies.model import Step, Study
>>> from pathlib import Path
>>> step = Step("main", ("echo", "{a}"), False, ({"a": 1}, {"a": 2}), {}, {}, None, ())
>>> print(describe_text(Study("s", Path("/s.yaml"), Path("/out"), None, None, (step,))))
study s (/s.yaml), output /out
step main: 2 points (a)
  echo 1
  echo 2
"""

from __future__ import annotations

import shlex
from typing import Any

from jobfleet.studies.model import Step, Study

__all__ = ["describe", "describe_text"]


def _shown(command: tuple[str, ...] | str) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def _step(step: Step, first: int) -> dict[str, Any]:
    points = step.points
    return {
        "name": step.name,
        "points": len(points),
        "parameters": list(step.params[0]),
        "commands": [_shown(p.command) for p in points[:first]],
        "shell": step.shell,
        "after": [{"step": d.step, "kind": d.kind} for d in step.after],
        "max_concurrent": step.max_concurrent,
        "workers": step.workers,
        "resources": dict(step.resources),
        "env": dict(step.env),
    }


def describe(study: Study, *, first: int = 3) -> dict[str, Any]:
    """The plan as JSON-compatible data: the study's name, file, output directory,
    backend and profile, and per step (in the order they would be submitted) its
    number of points, parameter names, first ``first`` commands, dependencies
    (``{"step": ..., "kind": "each" | "all"}``), max_concurrent, resources and env.

    Raises:
        ConfigError: one of the first commands cannot be rendered.
    """
    return {
        "name": study.name,
        "file": str(study.path),
        "output": str(study.output_dir),
        "backend": study.backend,
        "profile": study.profile,
        "steps": [_step(step, first) for step in study.steps],
    }


def describe_text(study: Study, *, first: int = 3) -> str:
    """:func:`describe` as lines for a terminal."""
    plan = describe(study, first=first)
    lines = [f"study {plan['name']} ({plan['file']}), output {plan['output']}"]
    for key in ("backend", "profile"):
        if plan[key] is not None:
            lines[0] += f", {key} {plan[key]}"
    for step in plan["steps"]:
        count = step["points"]
        head = f"step {step['name']}: {count} point" + ("s" if count != 1 else "")
        if step["parameters"]:
            head += f" ({', '.join(step['parameters'])})"
        waits = [
            f"{d['step']} (point by point)" if d["kind"] == "each" else f"all of {d['step']}"
            for d in step["after"]
        ]
        if waits:
            head += ", after " + ", ".join(waits)
        if step["max_concurrent"] is not None:
            head += f", at most {step['max_concurrent']} at once"
        if step["workers"] is not None:
            head += f", as pipe tasks of {step['workers']} workers"
        lines.append(head)
        if step["resources"]:
            lines.append(
                "  resources: " + ", ".join(f"{k}={v}" for k, v in step["resources"].items())
            )
        lines += [f"  {command}" for command in step["commands"]]
        if count > len(step["commands"]):
            lines.append(f"  ... {count - len(step['commands'])} more")
    return "\n".join(lines)
