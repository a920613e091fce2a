"""The backend catalog: entry points, a backend from another package, broken plugins.

The toy backend is the code of docs/backends.md, installed as a throwaway
distribution (a ``*.dist-info`` directory with ``entry_points.txt``) on sys.path:
the real catalog scan finds it, as it would find a package installed by pip.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobfleet import backends as catalog
from jobfleet.backends.base import BackendType, Capabilities, PollTarget
from jobfleet.backends.command import PollContext
from jobfleet.backends.slurm import accounting as slurm_accounting
from jobfleet.backends.slurm import queue as slurm_queue
from jobfleet.cli.main import cli
from jobfleet.config import describe, load_config, schema
from jobfleet.engine.fleet import Fleet
from jobfleet.errors import ConfigError
from jobfleet.runner import CommandResult
from jobfleet.settings import options
from jobfleet.spec import JobSpec
from jobfleet.states import JobState

DOC = Path(__file__).resolve().parents[2] / "docs" / "backends.md"


def toy_backend_source() -> str:
    """The one Python block of docs/backends.md: the toy backend."""
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    return block


def install(where: Path, entry_points: str, modules: dict[str, str]) -> None:
    """A distribution as pip leaves it: modules plus NAME.dist-info with entry points."""
    info = where / "jf_echo-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: jf-echo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, text in modules.items():
        (where / f"{module}.py").write_text(text)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    install(
        site,
        "[jobfleet.backends]\n"
        "echo = jf_echo_backend:BACKEND\n"
        "broken = jf_missing_module:BACKEND\n"
        "impostor = jf_echo_backend:EchoSettings\n",
        {"jf_echo_backend": toy_backend_source()},
    )
    monkeypatch.syspath_prepend(str(site))
    catalog.refresh()
    yield site
    monkeypatch.undo()
    catalog.refresh()


def test_builtin_backends_come_from_entry_points() -> None:
    found = catalog.available()
    assert list(found)[:7] == ["htcondor", "local", "lsf", "pbs", "sge", "slurm", "torque"]
    for name, backend in found.items():
        assert isinstance(backend, BackendType) and backend.name == name
        # Each settings field's default is its YAML default, converted.
        for field_name, opt in options(backend.settings):
            default = getattr(backend.settings(), field_name)
            assert default == (None if opt.default is None else opt.convert(opt.default, ""))


def test_the_builtin_names_are_the_builtin_entry_points() -> None:
    """catalog.BUILTIN lets the configuration and find() skip the entry points for
    jobfleet's own backends: it must name exactly those the package registers, and
    find() must give the same descriptor from the module as the scan does."""
    from importlib.metadata import entry_points

    ours = {ep.name for ep in entry_points(group=catalog.GROUP) if ep.value.startswith("jobfleet.")}
    assert ours == catalog.BUILTIN
    catalog.refresh()  # nothing scanned: find() reads each module
    for name in sorted(catalog.BUILTIN):
        assert catalog.known(name) and catalog.find(name) is catalog.available()[name]
        catalog.refresh()
    assert not catalog.known("no-such-scheduler")


def test_builtin_capabilities_as_docs_backends_md_lists_them(tmp_path: Path) -> None:
    from jobfleet.backends.sge import SgeSettings
    from jobfleet.backends.slurm import SlurmSettings
    from jobfleet.spec import DepKind

    found = catalog.available()
    slurm = found["slurm"].create(SlurmSettings(command_timeout_s=7), runner=None, home=tmp_path)
    sge = found["sge"].create(SgeSettings(), runner=None, home=tmp_path)
    local = found["local"].create(found["local"].settings(), runner=None, home=tmp_path)
    htcondor = found["htcondor"].create(found["htcondor"].settings(), runner=None, home=tmp_path)
    try:
        assert htcondor.capabilities == Capabilities(
            max_array_size=20000,  # MAX_JOBS_PER_SUBMISSION's default
            dependencies=frozenset({DepKind.AFTER_ANY}),
            signals=False,
            submit_in_flight_s=60.0,
        )
        assert slurm.capabilities == Capabilities(submit_in_flight_s=7.0, usage_settles_s=120.0)
        assert sge.capabilities == Capabilities(
            listed_indices=False,
            dependencies=frozenset({DepKind.AFTER_ANY}),
            signals=False,
            submit_in_flight_s=60.0,
            usage_settles_s=60.0,
        )
        assert local.capabilities == Capabilities(
            accounting=False,
            shared_queue=False,
            polls_scheduler=False,
            peak_memory_per_process=True,  # wait4's ru_maxrss
            bulk_submit=True,  # one queue transaction
        )
        pbs = found["pbs"].create(found["pbs"].settings(), runner=None, home=tmp_path)
        assert pbs.capabilities == Capabilities(listed_indices=False, submit_in_flight_s=60.0)
        torque = found["torque"].create(found["torque"].settings(), runner=None, home=tmp_path)
        assert torque.capabilities == Capabilities(submit_in_flight_s=60.0)
    finally:
        local.close()


def test_an_unknown_backend_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        catalog.get("slrum")
    assert "did you mean 'slurm'?" in str(info.value)
    assert "choose one of htcondor, local, lsf, pbs, sge, slurm, torque" in str(info.value)


def test_a_backend_from_another_package_runs_jobs_end_to_end(
    plugin: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobfleet.backends"):
        found = catalog.available()
    assert "echo" in found and "broken" not in found and "impostor" not in found
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "'broken'" in messages and "jf_missing_module" in messages
    assert "'impostor'" in messages

    (tmp_path / "c.yaml").write_text("backend: echo\necho: {shell: bash}\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.echo.shell == "bash"  # its section, read like the built-in ones
    assert ("echo.shell", "bash", str(tmp_path / "c.yaml")) in describe(config)
    with Fleet(config, home=tmp_path / "home") as fleet:
        job = fleet.submit(JobSpec(["echo", "hello from echo"], workdir=str(tmp_path)))
        (done,) = fleet.wait([job.id], timeout_s=30)
        assert (done.backend, done.state, done.exit_code) == ("echo", JobState.COMPLETED, 0)
        assert fleet.log_path(job.id).read_text() == "hello from echo\n"


def test_config_show_lists_a_plugin_section(plugin: Path, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("echo: {shell: dash}\n")
    args = ["config", "show", "--config", str(tmp_path / "c.yaml")]
    shown = CliRunner().invoke(cli, [*args, "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["values"]["echo.shell"] == "dash"
    assert data["sources"]["echo.shell"] == str(tmp_path / "c.yaml")
    text = CliRunner().invoke(cli, args).output
    assert re.search(r"^echo\.shell +\"dash\" +# ", text, re.MULTILINE), text


def test_a_plugin_key_is_checked_like_any_other(plugin: Path, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("echo: {shel: bash}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yaml")
    assert info.value.key == "echo.shel"
    assert "did you mean 'shell'?" in str(info.value)
    assert [s.dotted for s in schema() if s.section == "echo"] == ["echo.shell"]


# -- pure parsers: a poll's findings are its own -------------------------------------------


def test_two_polls_in_two_threads_do_not_share_findings() -> None:
    """squeue's "ended" notes of one poll never reach another poll's sacct rows."""
    squeue = CommandResult(("squeue",), 0, "7|7|7|N/A|CANCELLED|DependencyNeverSatisfied|x\n", "")
    sacct = CommandResult(("sacct",), 0, "7|7|PENDING|0:0\n", "")
    results: dict[str, object] = {}

    def poll(name: str, with_queue: bool) -> None:
        ctx = PollContext({"7": PollTarget("j7", "7", "/nonexistent", 0.0)}, ["7"])
        for _ in range(200):
            if with_queue:
                _, ended = slurm_queue.parse_queue(squeue, ctx)
                ctx.ended.update(ended)
            seen, _ = slurm_accounting.parse_accounting(sacct, ctx)
        results[name] = seen["7"][None]

    threads = [
        threading.Thread(target=poll, args=("after-squeue", True)),
        threading.Thread(target=poll, args=("sacct-only", False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Accounting lagging behind a cancel squeue saw: cancelled as squeue said, in that
    # poll only.
    assert results["after-squeue"] == (
        JobState.CANCELLED,
        None,
        "cancelled: a dependency can never be met (DependencyNeverSatisfied)",
    )
    assert results["sacct-only"] == (JobState.PENDING, 0, None)  # as sacct says
