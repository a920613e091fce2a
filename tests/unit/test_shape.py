"""The package's shape holds: no import cycles, modules of a readable size, one-way
data flow (a backend never imports the registry or the engine; the engine never
branches on a backend's name), and a monitor that needs no Fleet."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from jobfleet.engine.monitor import Monitor, Pace
from jobfleet.errors import UnknownJobError
from jobfleet.states import JobRecord, JobState

SRC = Path(__file__).resolve().parents[2] / "src" / "jobfleet"
#: "About 500 lines": the most any module of the package may have.
MAX_LINES = 520


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Module -> the jobfleet modules it imports (at any level, TYPE_CHECKING included)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("jobfleet") and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, ignoring a package's imports of its own submodules'
    parents (``a.b`` importing ``a`` for a name ``a/__init__`` re-exports)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    assert _cycle(_imports()) is None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: _module_name(p))
def test_modules_stay_readable(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by what it does"


def test_data_flows_one_way() -> None:
    graph = _imports()
    for module, imported in graph.items():
        if module.startswith("jobfleet.backends"):
            wrong = {
                i
                for i in imported
                if i.startswith(("jobfleet.registry", "jobfleet.engine", "jobfleet.cli"))
            }
            assert not wrong, f"{module} (a backend) imports {wrong}"
        if module.startswith("jobfleet.engine"):
            assert not any(i.startswith("jobfleet.cli") for i in imported), module
        if module.startswith("jobfleet.registry"):
            wrong = {i for i in imported if i.startswith(("jobfleet.engine", "jobfleet.backends"))}
            assert not wrong, f"{module} (the registry) imports {wrong}"


def test_the_engine_never_branches_on_a_backend_name() -> None:
    names = re.compile(
        r"""(==|!=|\bin\b)\s*\(?\s*["'](local|slurm|sge|pbs|torque|lsf|htcondor)["']"""
    )
    for path in (SRC / "engine").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not names.search(text), f"{path.name}: {names.search(text)}"


class _Source:
    """A JobSource over a dict: the monitor needs nothing more than this."""

    def __init__(self, records: dict[str, JobRecord]) -> None:
        self.board = records
        self.refreshed = 0

    def records(self, job_ids: Sequence[str]) -> list[JobRecord]:
        missing = [i for i in job_ids if i not in self.board]
        if missing:
            raise UnknownJobError(missing[0])
        return [self.board[i] for i in job_ids]

    def refresh(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        self.refreshed += 1
        return [self.board[r.id] for r in records]

    def unfinished(self, backend: str | None = None) -> list[JobRecord]:
        return [r for r in self.board.values() if not r.state.is_terminal]


class _Ledger:
    """A CallbackLedger in memory: first claim wins, for ever."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], str] = {}
        self.done: list[tuple[str, str, str]] = []

    def claim_callbacks(
        self, wanted: Sequence[tuple[str, str]], claimant: str
    ) -> list[tuple[str, str]]:
        won = [w for w in wanted if self.claims.setdefault(w, claimant) == claimant]
        return [w for w in won if not any(d[:2] == w for d in self.done)]

    def release_callbacks(self, claimed: Sequence[tuple[str, str]], claimant: str) -> None:
        for key in claimed:
            self.claims.pop(key, None)

    def callbacks_done(self, done: Sequence[tuple[str, str, str]]) -> None:
        self.done += done


def _record(job_id: str, state: JobState, exit_code: int | None = None) -> JobRecord:
    return JobRecord(
        id=job_id,
        name="t",
        backend="toy",
        native_id=job_id,
        state=state,
        exit_code=exit_code,
        reason=None,
        submitted=True,
        job_dir="/nonexistent",
        created_at=0.0,
        updated_at=0.0,
        spec={"command": ["true"]},
    )


def test_a_monitor_needs_only_a_source_and_a_ledger() -> None:
    source = _Source({"1": _record("1", JobState.RUNNING), "2": _record("2", JobState.PENDING)})
    ledger = _Ledger()
    monitor = Monitor("toy", source, ledger, Pace(0.0, 0.0, 0.0))
    seen: list[tuple[str, JobState]] = []
    monitor.watch(["1", "2"], on_exit=lambda r: seen.append((r.id, r.state)), key="seen")
    monitor.poll()
    assert seen == []
    source.board["1"] = _record("1", JobState.FAILED, 3)
    source.board["2"] = _record("2", JobState.COMPLETED, 0)
    records = monitor.wait()
    assert [(r.id, r.state, r.exit_code) for r in records] == [
        ("1", JobState.FAILED, 3),
        ("2", JobState.COMPLETED, 0),
    ]
    assert sorted(seen) == [("1", JobState.FAILED), ("2", JobState.COMPLETED)]
    assert sorted(d[:2] for d in ledger.done) == [("1", "exit:seen"), ("2", "exit:seen")]
    monitor.poll()  # ended jobs are not asked about again, nor fired twice
    assert len(seen) == 2


def test_the_architecture_doc_names_what_is_there() -> None:
    """Every file and folder docs/architecture.md names exists, and every module and
    package of the package is named there: the map cannot drift from the house."""
    doc = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\b([a-z_]+(?:\.py|/))", doc))
    tree = {p.name for p in SRC.rglob("*.py")} | {
        p.name + "/" for p in SRC.rglob("*") if p.is_dir()
    }
    repo = SRC.parents[1]
    tree |= {"src/", "jobfleet/", *(p.name + "/" for p in repo.iterdir() if p.is_dir())}
    tests = repo / "tests"
    tree |= {p.name + "/" for p in tests.rglob("*") if p.is_dir()}
    tree |= {p.name for p in tests.rglob("*.py")}
    assert sorted(n for n in named if n not in tree and n != "__pycache__/") == []
    # The top-level modules, the engine's, and every package by its folder.
    modules = {p.name for p in [*SRC.glob("*.py"), *(SRC / "engine").glob("*.py")]}
    modules -= {"__init__.py", "__main__.py"}
    packages = {p.parent.name + "/" for p in SRC.glob("*/**/__init__.py")}
    assert sorted((modules | packages) - named) == []
