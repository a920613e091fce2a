"""The command line only parses, calls the library and prints: a cheap guard that
none of its modules reads the registry or parses or matches what schedulers say."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import jobfleet.cli

#: Modules the command line must not import: the registry is the library's to
#: read, and scheduler names and output are the library's to parse and match.
FORBIDDEN_MODULES = ("jobfleet.registry", "jobfleet.naming", "jobfleet.sqlite")
#: Of the backends, only their neutral records (QueueEntry, user_name) are for the CLI.
ALLOWED_BACKEND_MODULES = ("jobfleet.backends.base",)
#: Attributes that reach past Fleet into the registry or a backend's parsing.
FORBIDDEN_ATTRIBUTES = ("registry", "token", "find_native", "list_queue")

CLI_MODULES = pkgutil.iter_modules(jobfleet.cli.__path__, prefix="jobfleet.cli.")
MODULES = ["jobfleet.cli", *sorted(m.name for m in CLI_MODULES)]


def imported(tree: ast.AST) -> list[str]:
    """Every module a source imports, by absolute name (``from X import y``: X and X.y)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "jobfleet imports are absolute"
            module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_every_cli_module_is_checked() -> None:
    assert {"jobfleet.cli.main", "jobfleet.cli.common", "jobfleet.cli.queue"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_the_cli_reads_no_registry_and_parses_no_scheduler_output(module: str) -> None:
    path = Path(importlib.import_module(module).__file__ or "")
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for name in imported(tree):
        assert not name.startswith(FORBIDDEN_MODULES), f"{module} imports {name}"
        if name.startswith("jobfleet.backends."):
            assert name.startswith(ALLOWED_BACKEND_MODULES), f"{module} imports {name}"
    reached = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    used = sorted(reached.intersection(FORBIDDEN_ATTRIBUTES))
    assert not used, f"{module} uses {used}"
