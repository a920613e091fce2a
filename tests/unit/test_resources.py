"""The whole job model (issue 11): layouts, launcher and site options.

Validation of :class:`Resources`, its stored form, the configuration's layers,
and each backend's mapping (golden scripts: tests/unit/test_script.py).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from jobfleet.backends.htcondor.submitfile import MAPPING as HTCONDOR_MAPPING
from jobfleet.backends.local import request as local_request
from jobfleet.backends.local.plan import Amount
from jobfleet.backends.local.request import check_local_request, local_amount
from jobfleet.backends.lsf.directives import MAPPING as LSF_MAPPING
from jobfleet.backends.pbs.directives import MAPPING as PBS_MAPPING
from jobfleet.backends.sge import SGE, SgeSettings, sge_directives
from jobfleet.backends.sge.directives import MAPPING as SGE_MAPPING
from jobfleet.backends.slurm import SLURM, slurm_directives
from jobfleet.backends.slurm.directives import MAPPING as SLURM_MAPPING
from jobfleet.backends.torque.directives import MAPPING as TORQUE_MAPPING
from jobfleet.config import load_config
from jobfleet.errors import ConfigError, SpecError, UnitError
from jobfleet.resources import KEY_DOCS, Resources
from jobfleet.script import LOCAL, render_script
from jobfleet.spec import JobSpec
from jobfleet.units import format_sge_begin, format_slurm_begin, parse_begin


def spec(**resources: Any) -> JobSpec:
    return JobSpec(["./mpi_app"], resources=Resources.of(**resources))


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"tasks": 4, "tasks_per_node": 2}, "resources.tasks", "not both"),
        ({"tasks": 2, "nodes": 3}, "resources.tasks", "cannot fill 3 nodes"),
        ({"cores": 2, "cores_per_task": 4}, "resources.cores_per_task", "give one of them"),
        ({"gpus": 1, "gpus_per_node": 1}, "resources.gpus_per_node", "only one of"),
        ({"gpus_per_node": 1, "gpus_per_task": 1}, "resources.gpus_per_task", "only one of"),
        ({"memory": "4G", "memory_per_core": "1G"}, "resources.memory_per_core", "not both"),
        ({"memory_per_core": "lots"}, "resources.memory_per_core", "memory"),
        ({"memory_per_core": 0}, "resources.memory_per_core", ""),
        ({"tasks": 0}, "resources.tasks", "at least 1"),
        ({"tasks_per_node": True}, "resources.tasks_per_node", "whole number"),
        ({"launcher": "aprun"}, "resources.launcher", "none, srun, mpirun, mpiexec"),
        ({"exclusive": "yes"}, "resources.exclusive", "true or false"),
        ({"qos": "two words"}, "resources.qos", "plain name"),
        ({"constraint": "a'b"}, "resources.constraint", "plain name"),
        ({"mail_on": ["end"]}, "resources.mail_on", "set mail_to"),
        ({"mail_to": "a@b", "mail_on": ["done"]}, "resources.mail_on[0]", "begin, end"),
        ({"licenses": ["matlab:0"]}, "resources.licenses[0]", "name:count"),
        ({"licenses": ["two words"]}, "resources.licenses[0]", "name:count"),
        ({"priority": 1025}, "resources.priority", "at most 1024"),
        ({"priority": -1024}, "resources.priority", "at least -1023"),
        ({"begin": "tomorrow"}, "resources.begin", "ISO 8601"),
        ({"begin": "+0s"}, "resources.begin", "longer than 0"),
        ({"name_prefix": "42lab-"}, "resources.name_prefix", "start with a letter"),
        ({"name_prefix": "lab 42"}, "resources.name_prefix", "start with a letter"),
        ({"name_prefix": "a" * 21}, "resources.name_prefix", "at most 19"),
        ({"name_prefix": ["lab"]}, "resources.name_prefix", ""),
    ],
)
def test_contradictions_and_bad_values_name_the_field(
    values: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as info:
        Resources.of(**values)
    assert info.value.field == field
    assert words in info.value.message
    assert "\n" not in str(info.value)


def test_cores_per_task_is_cores() -> None:
    assert Resources.of(cores_per_task=4) == Resources.of(cores=4)
    assert Resources.of(cores=4, cores_per_task=4).cores == 4


def test_layout_totals() -> None:
    assert Resources.of(nodes=3, tasks_per_node=4, cores=2).total_cores == 24
    assert Resources.of(tasks=5).total_tasks == 5
    assert Resources().total_tasks == 1 and not Resources().is_layout
    assert Resources.of(nodes=2, tasks=2).is_layout


def test_begin_and_memory_have_explicit_units() -> None:
    res = Resources.of(begin="+1h30m", memory_per_core="1GB")
    assert res.begin == "+5400s"
    assert res.memory_per_core_bytes == 10**9
    assert Resources(begin="2030-01-31 14:00").begin == "2030-01-31T14:00:00"
    assert parse_begin(datetime(2030, 1, 31, 14)) == "2030-01-31T14:00:00"


def test_begin_in_each_schedulers_form() -> None:
    assert format_slurm_begin("+90s") == "now+90"
    assert format_sge_begin("+90s", datetime(2030, 12, 31, 23, 59)) == "203101010000.30"
    # An offset is turned into this machine's local time (the schedulers' clock).
    utc = parse_begin("2030-01-31T14:00Z")
    local = datetime.fromisoformat(utc).astimezone().replace(tzinfo=None)
    assert format_slurm_begin(utc) == local.isoformat(timespec="seconds")
    assert format_sge_begin(utc, datetime.now()) == local.strftime("%Y%m%d%H%M.%S")


def test_every_key_has_a_doc_and_a_mapping_on_every_backend() -> None:
    assert tuple(KEY_DOCS) == Resources.KEYS
    for mapping in (
        SLURM_MAPPING,
        SGE_MAPPING,
        local_request.MAPPING,
        LSF_MAPPING,
        HTCONDOR_MAPPING,
    ):
        assert set(mapping) == set(Resources.KEYS)


def test_dicts_stored_by_older_versions_read_back() -> None:
    old = {
        "cores": 2,
        "memory_bytes": 2**30,
        "walltime_s": 60,
        "gpus": 0,
        "nodes": 1,
        "queue": None,
        "account": None,
        "extra_directives": [],
        "directives_skip": [],
        "extra_args": [],
    }
    res = Resources.from_dict(old)
    assert res.cores == 2 and res.tasks is None and res.launcher == "none"
    full = Resources.of(tasks=4, mail_to="a@b", mail_on=["end"], licenses=["x:2"], begin="+1h")
    assert Resources.from_dict(full.to_dict()) == full


# -- configuration -----------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_reads_every_new_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "resources:\n  tasks: 4\n  cores_per_task: 2\n  memory_per_core: 1G\n"
        "  exclusive: true\n  launcher: mpirun\n  qos: 12\n  mail_to: a@b\n"
        "  mail_on: [end]\n  licenses: [matlab]\n  priority: -5\n  begin: 2030-01-31T14:00:00\n",
    )
    res = load_config(path, env={}).resources
    assert (res.tasks, res.cores, res.memory_per_core_bytes) == (4, 2, 2**30)
    assert res.exclusive and res.launcher == "mpirun" and res.qos == "12"
    assert res.begin == "2030-01-31T14:00:00"  # YAML read it as a datetime


def test_a_later_layer_replaces_the_alternative_of_an_earlier_one(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "resources: {memory: 4G, tasks: 8, gpus: 1}\n"
        "profiles:\n  mpi:\n    resources:\n"
        "      {memory_per_core: 1G, tasks_per_node: 4, gpus_per_task: 1}\n",
    )
    base = load_config(path, env={}).resources
    assert (base.memory_bytes, base.tasks, base.gpus) == (4 * 2**30, 8, 1)
    mpi = load_config(path, profile="mpi", env={}).resources
    assert (mpi.memory_bytes, mpi.tasks, mpi.gpus) == (None, None, 0)
    assert (mpi.memory_per_core_bytes, mpi.tasks_per_node, mpi.gpus_per_task) == (2**30, 4, 1)
    cli = load_config(path, profile="mpi", overrides={"resources.cores": 3}, env={}).resources
    assert cli.cores == 3


def test_one_layer_contradicting_itself_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "resources: {tasks: 8, tasks_per_node: 4}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.key == "resources.tasks" and "not both" in str(info.value)
    path = write(tmp_path / "c.yaml", "resources: {cores: 2, cores_per_task: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.key == "resources.cores_per_task"


# -- SLURM -------------------------------------------------------------------------------


def test_slurm_one_task_job_is_unchanged() -> None:
    assert slurm_directives(spec()) == ["--cpus-per-task=1"]


def test_slurm_tasks_stay_on_one_node_unless_asked() -> None:
    assert slurm_directives(spec(tasks=4))[:3] == ["--cpus-per-task=1", "--nodes=1", "--ntasks=4"]
    assert "--nodes=2" in slurm_directives(spec(tasks=4, nodes=2))


def test_slurm_gpus_for_the_whole_job() -> None:
    assert "--gres=gpu:2" in slurm_directives(spec(gpus=2))
    assert "--gpus=2" in slurm_directives(spec(gpus=2, nodes=2, tasks=2))


@pytest.mark.parametrize(("priority", "nice"), [(-10, "--nice=10"), (7, "--nice=-7")])
def test_slurm_priority_is_the_negated_nice(priority: int, nice: str) -> None:
    assert nice in slurm_directives(spec(priority=priority))


def test_slurm_mail_defaults_to_end_and_fail() -> None:
    directives = slurm_directives(spec(mail_to="a@b"))
    assert directives[-2:] == ["--mail-user=a@b", "--mail-type=END,FAIL"]


# -- Grid Engine -------------------------------------------------------------------------


def test_sge_slots_are_tasks_times_cores_on_one_host() -> None:
    assert "-pe smp 6" in sge_directives(spec(tasks=3, cores=2))
    assert "-pe smp 4" in sge_directives(spec(tasks_per_node=4))


def test_sge_memory_per_host_is_shared_by_its_slots() -> None:
    assert "-l h_vmem=1024M" in sge_directives(spec(tasks=4, memory="4G"))
    mem_free = SgeSettings(memory_resource="mem_free")
    assert "-l mem_free=4096M" in sge_directives(spec(tasks=4, memory_per_core="1G"), mem_free)
    nodes = sge_directives(spec(nodes=2, tasks_per_node=2, cores=2, memory="8G"))
    assert nodes[2:4] == ["-pe mpi4 8", "-l h_vmem=2048M"]


@pytest.mark.parametrize(
    ("walltime", "grace", "requests"),
    [
        ("1h", "60s", "-l h_rt=1:00:00,h_vmem=1024M,s_rt=0:59:00"),
        ("5m", "60s", "-l h_rt=0:05:00,h_vmem=1024M,s_rt=0:04:30"),  # a tenth at most
        ("9s", "60s", "-l h_rt=0:00:09,h_vmem=1024M"),  # under a second: none
        ("1h", "0", "-l h_rt=1:00:00,h_vmem=1024M"),
    ],
)
def test_sge_warns_with_s_rt_before_h_rt(
    tmp_path: Path, walltime: str, grace: str, requests: str
) -> None:
    # s_rt's SIGUSR1 ends the command before h_rt's SIGKILL: the epilogue and the
    # scratch clean-up run (tests/live/test_environment_live.py).
    path = tmp_path / "c.yaml"
    path.write_text(f"sge: {{walltime_grace: {grace!r}}}\n")
    settings = load_config(path, env={}).sge
    directives = sge_directives(spec(walltime=walltime, memory="1G"), settings)
    assert requests in directives


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"nodes": 2, "tasks": 4}, "resources.nodes", "give tasks_per_node instead of tasks"),
        ({"nodes": 2}, "resources.nodes", "add tasks_per_node (tasks on each host"),
        ({"gpus_per_task": 1}, "resources.gpus_per_task", "no GPUs per task"),
        ({"nodes": 2, "tasks_per_node": 2, "gpus_per_node": 1}, "resources.gpus_per_node", ""),
        ({"qos": "high"}, "resources.qos", "no quality of service"),
        ({"constraint": "ib"}, "resources.constraint", "extra_directives"),
        ({"reservation": "maint"}, "resources.reservation", "numbers"),
    ],
)
def test_sge_refuses_what_it_cannot_express(values: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        sge_directives(spec(**values))
    assert info.value.field == field and words in info.value.message
    if "tasks" not in values:
        assert "instead of tasks" not in info.value.message  # no tasks were given


def test_sge_mpi_pe_must_name_its_slot_count(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "sge: {mpi_parallel_environment: mpi}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.key == "sge.mpi_parallel_environment"
    path = write(tmp_path / "c.yaml", "sge: {mpi_parallel_environment: 'orte_{slots_per_node}'}\n")
    settings = load_config(path, env={}).backends["sge"]
    assert "-pe orte_16 32" in sge_directives(spec(nodes=2, tasks_per_node=16), settings)


def test_sge_relative_begin_counts_from_submission() -> None:
    at = sge_directives(spec(begin="+2h"), now=lambda: datetime(2030, 1, 31, 23, 30))
    assert at[-1] == "-a 203002010130.00"


def test_sge_mail_flags() -> None:
    assert "-m ea" in sge_directives(spec(mail_to="a@b"))
    assert "-m bea" in sge_directives(spec(mail_to="a@b", mail_on=["all"]))
    assert "-m a" in sge_directives(spec(mail_to="a@b", mail_on=["requeue", "fail"]))


# -- the launcher --------------------------------------------------------------------------


def command_line(spec: JobSpec, dialect: Any) -> str:
    lines = render_script(spec, dialect).splitlines()
    line = next(line for line in lines if line.startswith("( "))
    return line.removesuffix(" || __jf_rc=$?")  # its status recorded whatever set -e says


def test_launcher_words_per_backend() -> None:
    mpi = spec(tasks=4, cores=2, launcher="mpirun")
    assert command_line(mpi, SLURM) == "( mpirun -np \"${SLURM_NTASKS:-4}\" './mpi_app' )"
    assert command_line(mpi, SGE) == "( mpirun -np \"$((${NSLOTS:-2} / 2))\" './mpi_app' )"
    assert command_line(mpi, LOCAL) == "( mpirun -np 4 './mpi_app' )"
    assert command_line(spec(tasks=4), SLURM) == "( './mpi_app' )"


@pytest.mark.parametrize("dialect", [SGE, LOCAL], ids=["sge", "local"])
def test_srun_outside_slurm_is_an_error(dialect: Any) -> None:
    with pytest.raises(SpecError) as info:
        render_script(spec(launcher="srun"), dialect)
    assert info.value.field == "resources.launcher" and "mpirun" in info.value.message


# -- local ---------------------------------------------------------------------------------

CAPACITY = Amount(cores=8, memory=16 * 2**30, gpus=2)


def test_local_holds_the_whole_layout() -> None:
    res = Resources.of(tasks=3, cores=2, memory_per_core="1G", gpus_per_task=0)
    assert local_amount(res, 8) == Amount(6, 6 * 2**30, 0)
    assert local_amount(Resources.of(tasks=2, gpus_per_task=1), 8).gpus == 2
    assert local_amount(Resources.of(exclusive=True), 8).cores == 8


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"nodes": 2, "tasks": 2}, "resources.nodes"),
        ({"tasks": 5, "cores": 2}, "resources.tasks"),
        ({"memory_per_core": "4G", "cores": 5}, "resources.memory"),
        ({"tasks": 3, "gpus_per_task": 1}, "resources.gpus"),
        ({"begin": "+1h"}, "resources.begin"),
        ({"launcher": "srun"}, "resources.launcher"),
    ],
)
def test_local_refuses_what_it_cannot_give(values: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        check_local_request(Resources.of(**values), CAPACITY)
    assert info.value.field == field


def test_local_warns_once_about_site_options(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_request, "_warned", set())
    res = Resources.of(qos="high", priority=-3, exclusive=True)
    with caplog.at_level(logging.WARNING, logger=local_request.__name__):
        check_local_request(res, CAPACITY)
        check_local_request(res, CAPACITY)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert any("resources.qos is ignored" in m for m in messages)
    assert any("resources.priority is ignored" in m for m in messages)


#: Each backend's mapping table, by the column it has in docs/job-model.md (a new
#: backend adds its own; regenerate with JOBFLEET_REGENERATE=1).
MAPPINGS = {
    "SLURM": SLURM_MAPPING,
    "Grid Engine": SGE_MAPPING,
    "local": local_request.MAPPING,
    "LSF": LSF_MAPPING,
    "PBS": PBS_MAPPING,
    "Torque": TORQUE_MAPPING,
    "HTCondor": HTCONDOR_MAPPING,
}


def job_model_table() -> str:
    head = ["key", "meaning", *MAPPINGS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("-" * (len(h) + 2) for h in head) + "|"]
    for key in Resources.KEYS:
        cells = [f"`{key}`", KEY_DOCS[key], *(table[key] for table in MAPPINGS.values())]
        # `<PE>` would be read as an HTML tag (and hidden) by GitHub and the docs site.
        lines.append("| " + " | ".join(c.replace("<", "\\<") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_job_model_doc_says_what_the_code_does() -> None:
    path = Path(__file__).parents[2] / "docs" / "job-model.md"
    doc = path.read_text(encoding="utf-8")
    start = doc.index("| key | meaning |")
    end = doc.index("\n\n", start) + 1
    table = job_model_table()
    if os.environ.get("JOBFLEET_REGENERATE"):
        path.write_text(doc[:start] + table + doc[end:], encoding="utf-8")
        doc = path.read_text(encoding="utf-8")
    for table_key in MAPPINGS.values():
        assert set(table_key) == set(Resources.KEYS), "every backend maps every key"
    assert doc[start : start + len(table)] == table, (
        "docs/job-model.md is stale: run JOBFLEET_REGENERATE=1 pytest tests/unit/test_resources.py"
    )


@pytest.mark.parametrize(
    "begin",
    [
        "9999-12-31T23:59:59-01:00",  # 10000-01-01 in UTC
        "0001-01-01T00:30:00+01:00",  # year 0 in UTC
        "0001-01-01T00:00:00",  # "-a 101010000.00" on Grid Engine
        datetime(1, 1, 1),
    ],
)
def test_a_start_time_out_of_range_names_the_field(begin: object) -> None:
    with pytest.raises(UnitError) as err:
        Resources.of(begin=begin)
    assert err.value.field == "resources.begin"
    assert "between the years 1970 and 9999" in str(err.value)
    assert parse_begin("9999-12-31T12:00:00") == "9999-12-31T12:00:00"  # the edge is taken


@pytest.mark.parametrize(
    "key", ["cores", "cores_per_task", "gpus", "gpus_per_node", "gpus_per_task", "nodes", "tasks"]
)
def test_counts_are_capped_in_resources_as_in_the_configuration(key: str) -> None:
    values: dict[str, Any] = {key: 10**15}
    if key == "nodes":
        values["tasks_per_node"] = 1
    with pytest.raises(SpecError) as err:
        Resources.of(**values)
    assert err.value.field == f"resources.{key}"
    assert "is more than any scheduler gives (at most 2147483647)" in str(err.value)
    Resources.of(**{**values, key: 2**31 - 1})  # the cap itself is taken


def test_a_whole_jobs_cores_are_capped_too() -> None:
    with pytest.raises(SpecError) as err:
        Resources.of(tasks=2**20, cores=2**20)
    assert err.value.field == "resources.cores"
    assert "tasks x cores" in str(err.value) and "2147483647" in str(err.value)


def test_cores_per_task_of_the_wrong_type_is_named_as_given() -> None:
    with pytest.raises(SpecError) as err:
        Resources.of(cores_per_task="2")
    assert err.value.field == "resources.cores_per_task"
    assert "expected a whole number, got '2'" in str(err.value)
