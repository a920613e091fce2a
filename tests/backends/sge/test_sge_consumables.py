"""GPUs and licences on Grid Engine: consumables, per slot (YES) or per job (JOB).

Grid Engine multiplies a consumable YES by the job's slots (sge_complex(5); observed on
the live cluster, docs/sge-notes.md): ``-pe smp 4 -l gpu=2`` takes 8 GPUs. So a whole
job's count is divided by the slots, unless the site says its complex is JOB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobfleet.backends.sge import SgeSettings, sge_directives
from jobfleet.config import load_config
from jobfleet.errors import ConfigError, SpecError
from jobfleet.spec import JobSpec, Resources

JOB = SgeSettings(gpu_consumable="job", license_consumable="job")


def requests(settings: SgeSettings | None = None, **resources: object) -> list[str]:
    """The -pe and -l directives of a job with these resources."""
    spec = JobSpec(["true"], resources=Resources.of(**resources))
    return [d for d in sge_directives(spec, settings) if d.startswith(("-pe", "-l"))]


def refusal(settings: SgeSettings | None = None, **resources: object) -> SpecError:
    with pytest.raises(SpecError) as err:
        requests(settings, **resources)
    return err.value


def test_gpus_are_divided_by_the_slots_of_a_consumable_yes() -> None:
    assert requests(cores=4, gpus=4) == ["-pe smp 4", "-l gpu=1"]  # not 4 x 4 = 16
    assert requests(tasks=2, cores=2, gpus=8) == ["-pe smp 4", "-l gpu=2"]
    assert requests(gpus=2) == ["-l gpu=2"]  # one slot: as asked


def test_gpus_that_do_not_divide_by_the_slots_are_refused_saying_how_to_fix() -> None:
    err = refusal(cores=4, gpus=2)
    assert err.field == "resources.gpus"
    assert "multiple of 4" in str(err) and "sge.gpu_consumable: JOB" in str(err)


def test_a_consumable_job_is_asked_for_once() -> None:
    assert requests(JOB, cores=4, gpus=2) == ["-pe smp 4", "-l gpu=2"]
    assert requests(JOB, cores=4, licenses=["matlab:3"]) == ["-pe smp 4", "-l matlab=3"]


def test_gpus_on_several_nodes_per_slot_or_refused() -> None:
    # 2 hosts x 4 tasks x 2 cores: 16 slots, 8 per host; 1 GPU per host is not per slot.
    layout = {"nodes": 2, "tasks_per_node": 4, "cores": 2}
    err = refusal(**layout, gpus=1)
    assert err.field == "resources.gpus"
    assert requests(**layout, gpus=16) == ["-pe mpi8 16", "-l gpu=1"]
    assert requests(**layout, gpus_per_node=8) == ["-pe mpi8 16", "-l gpu=1"]
    assert refusal(**layout, gpus_per_node=2).field == "resources.gpus_per_node"
    err = refusal(JOB, **layout, gpus=2)  # JOB: taken from the master host only
    assert err.field == "resources.gpus" and "one node" in str(err)


def test_licences_are_divided_by_the_slots_of_a_consumable_yes() -> None:
    assert requests(cores=2, licenses=["fluent:4", "matlab:2"]) == [
        "-pe smp 2",
        "-l fluent=2,matlab=1",
    ]
    err = refusal(cores=2, licenses=["matlab"])
    assert err.field == "resources.licenses" and "sge.license_consumable: JOB" in str(err)


@pytest.mark.parametrize("value", ["JOB", "job", "j"])
def test_the_setting_takes_the_consumable_column_as_qconf_shows_it(
    tmp_path: Path, value: str
) -> None:
    config = tmp_path / "jobfleet.yaml"
    config.write_text(f"backend: sge\nsge:\n  gpu_consumable: {value}\n  license_consumable: YES\n")
    loaded = load_config(env={"HOME": str(tmp_path), "JOBFLEET_CONFIG": str(config)}, cwd=tmp_path)
    settings = loaded.settings_for("sge")
    assert isinstance(settings, SgeSettings)
    assert (settings.gpu_consumable, settings.license_consumable) == ("job", "yes")


def test_a_wrong_consumable_setting_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "jobfleet.yaml"
    config.write_text("backend: sge\nsge:\n  gpu_consumable: maybe\n")
    with pytest.raises(ConfigError) as err:
        load_config(env={"HOME": str(tmp_path), "JOBFLEET_CONFIG": str(config)}, cwd=tmp_path)
    assert err.value.key == "sge.gpu_consumable"
    assert "YES" in str(err.value) and "JOB" in str(err.value)
