"""Tests for jobfleet.config: search path, layering, errors, and never crashing."""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobfleet.config import (
    SCHEMA,
    Config,
    LocalSettings,
    describe,
    find_config_file,
    load_config,
)
from jobfleet.errors import ConfigError
from jobfleet.spec import Resources

PROPERTY = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **kwargs: Any) -> Config:
    """Load `text` as an explicit file with an empty environment."""
    path = write(tmp_path / "jobfleet.yaml", text)
    return load_config(path, env={}, cwd=tmp_path, **kwargs)


def load_error(tmp_path: Path, text: str, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, **kwargs)
    return info.value


# -- search order -----------------------------------------------------------------


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """A config file in each of the four places, and a working directory."""
    cwd = tmp_path / "work"
    return {
        "cwd": cwd,
        "explicit": write(tmp_path / "explicit.yaml", ""),
        "env": write(tmp_path / "env.yaml", ""),
        "local": write(cwd / "jobfleet.yaml", ""),
        "xdg": write(tmp_path / "xdg" / "jobfleet" / "config.yaml", ""),
        "home": write(tmp_path / "home" / ".config" / "jobfleet" / "config.yaml", ""),
    }


def test_explicit_path_wins_over_everything(places: dict[str, Path]) -> None:
    env = {"JOBFLEET_CONFIG": str(places["env"]), "XDG_CONFIG_HOME": str(places["xdg"].parents[1])}
    found = find_config_file(places["explicit"], env=env, cwd=places["cwd"])
    assert found == places["explicit"]


def test_env_var_wins_over_cwd_and_user_config(places: dict[str, Path]) -> None:
    env = {"JOBFLEET_CONFIG": str(places["env"]), "XDG_CONFIG_HOME": str(places["xdg"].parents[1])}
    assert find_config_file(env=env, cwd=places["cwd"]) == places["env"]


def test_cwd_file_wins_over_user_config(places: dict[str, Path]) -> None:
    env = {"XDG_CONFIG_HOME": str(places["xdg"].parents[1])}
    assert find_config_file(env=env, cwd=places["cwd"]) == places["local"]


def test_xdg_config_home_used_when_set(places: dict[str, Path], tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(places["xdg"].parents[1]), "HOME": str(tmp_path / "home")}
    assert find_config_file(env=env, cwd=tmp_path) == places["xdg"]


def test_home_dot_config_used_without_xdg(places: dict[str, Path], tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home")}
    assert find_config_file(env=env, cwd=tmp_path) == places["home"]


def test_relative_xdg_config_home_is_ignored(places: dict[str, Path], tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": "xdg", "HOME": str(tmp_path / "home")}
    assert find_config_file(env=env, cwd=tmp_path) == places["home"]


def test_no_file_anywhere_gives_defaults(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert find_config_file(env=env, cwd=tmp_path) is None
    config = load_config(env=env, cwd=tmp_path)
    assert config.path is None
    assert config.backend == "auto"  # the scheduler found here, else local
    assert config.resources == Resources()
    assert config.local == LocalSettings()
    assert config.wait.poll_interval_s == 1.0
    assert set(config.sources.values()) == {"default"}
    assert config.profiles == ()


def test_relative_explicit_path_is_taken_from_cwd(places: dict[str, Path]) -> None:
    found = find_config_file("jobfleet.yaml", env={}, cwd=places["cwd"])
    assert found == places["local"]


def test_missing_explicit_file_is_an_error(places: dict[str, Path]) -> None:
    missing = places["cwd"] / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        find_config_file(missing, env={}, cwd=places["cwd"])
    assert info.value.source == str(missing)
    assert str(missing) in str(info.value)


def test_missing_env_file_is_an_error(places: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"JOBFLEET_CONFIG": "/no/such.yaml"}, cwd=places["cwd"])
    assert info.value.source == "$JOBFLEET_CONFIG"
    assert "/no/such.yaml" in str(info.value)


def test_empty_env_var_is_unset(places: dict[str, Path]) -> None:
    assert find_config_file(env={"JOBFLEET_CONFIG": ""}, cwd=places["cwd"]) == places["local"]


def test_defaults_to_os_environ_and_process_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "jobfleet.yaml", "resources: {cores: 3}\n")
    monkeypatch.delenv("JOBFLEET_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_config().resources.cores == 3
    monkeypatch.setenv(
        "JOBFLEET_CONFIG", str(write(tmp_path / "other.yaml", "resources: {cores: 5}"))
    )
    assert load_config().resources.cores == 5


# -- layering ---------------------------------------------------------------------

LAYERED = """\
backend: local
resources:
  cores: 2
  memory: 4G
  queue: short
local:
  cancel_grace: 30s
profiles:
  big:
    resources: {cores: 16, walltime: 2h}
    wait: {poll_interval: 5s}
  gpu:
    resources: {gpus: 1}
"""


def test_merge_order_and_sources(tmp_path: Path) -> None:
    overrides = {"resources.cores": 32, "local.gpus": 2, "resources.account": None}
    config = load(tmp_path, LAYERED, profile="big", overrides=overrides)
    path = str(tmp_path / "jobfleet.yaml")
    profile = f"{path} (profile big)"
    assert config.resources == Resources.of(
        cores=32, memory="4G", walltime="2h", queue="short", gpus=0
    )
    assert config.local == LocalSettings(gpus=2, cancel_grace_s=30)
    assert config.wait.poll_interval_s == 5.0
    assert (config.profile, config.path, config.profiles) == ("big", path, ("big", "gpu"))
    expected = {
        "backend": path,
        "resources.cores": "command line",
        "resources.memory": path,
        "resources.queue": path,
        "resources.walltime": profile,
        "resources.account": "default",  # a None override is ignored
        "resources.gpus": "default",
        "local.cancel_grace": path,
        "local.gpus": "command line",
        "local.cores": "default",
        "wait.poll_interval": profile,
    }
    assert {key: config.sources[key] for key in expected} == expected
    assert config.values["resources"]["memory"] == "4G"
    assert config.values["wait"]["poll_interval"] == "5s"


def test_without_profile_the_profiles_do_not_apply(tmp_path: Path) -> None:
    config = load(tmp_path, LAYERED)
    assert config.resources.cores == 2
    assert config.resources.walltime_s is None
    assert config.profile is None
    assert config.sources["resources.walltime"] == "default"


def test_describe_rows_follow_schema(tmp_path: Path) -> None:
    config = load(tmp_path, LAYERED, profile="gpu")
    rows = describe(config)
    assert [key for key, _, _ in rows] == [s.dotted for s in SCHEMA]
    by_key = {key: (value, source) for key, value, source in rows}
    assert by_key["resources.gpus"] == (1, f"{tmp_path / 'jobfleet.yaml'} (profile gpu)")
    assert by_key["local.idle_exit"] == ("60s", "default")
    json.dumps(config.values)


def test_schema_covers_every_resource_key() -> None:
    assert [s.name for s in SCHEMA if s.section == "resources"] == list(Resources.KEYS)
    assert all(s.doc for s in SCHEMA)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "resources:\nlocal:\n"])
def test_empty_file_or_sections_mean_defaults(tmp_path: Path, text: str) -> None:
    config = load(tmp_path, text)
    assert config.resources == Resources()
    assert config.path == str(tmp_path / "jobfleet.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local: {cores: 4, memory: 16G, gpus: 0}", LocalSettings(4, 16 * 2**30, 0)),
        ("local: {cores: AUTO, memory: auto, gpus: auto}", LocalSettings()),
        (
            "local: {cancel_grace: 1m, idle_exit: 90}",
            LocalSettings(cancel_grace_s=60, idle_exit_s=90),
        ),
    ],
)
def test_local_settings(tmp_path: Path, text: str, expected: LocalSettings) -> None:
    assert load(tmp_path, text).local == expected


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(2, 2.0), (0.5, 0.5), ("0.5s", 0.5), ("2s", 2.0), ("1m", 60.0), ("250ms", 0.25), ("3", 3.0)],
)
def test_poll_interval_forms(tmp_path: Path, value: object, seconds: float) -> None:
    config = load(tmp_path, "", overrides={"wait.poll_interval": value})
    assert config.wait.poll_interval_s == seconds
    assert config.values["wait"]["poll_interval"] == value


def test_lists_and_numeric_account(tmp_path: Path) -> None:
    text = "resources: {account: 12345, extra_args: [--hold], extra_directives: []}"
    config = load(tmp_path, text, overrides={"resources.directives_skip": ("--mem",)})
    assert config.resources.account == "12345"
    assert config.resources.extra_args == ("--hold",)
    assert config.resources.directives_skip == ("--mem",)
    assert config.values["resources"]["directives_skip"] == ["--mem"]


# -- errors -----------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    error = load_error(tmp_path, "resources:\n  memroy: 4G\n")
    assert error.key == "resources.memroy"
    assert error.source == str(tmp_path / "jobfleet.yaml")
    assert "did you mean 'memory'?" in str(error)
    assert "valid keys: cores, memory, walltime" in str(error)
    assert str(error).startswith(f"{tmp_path / 'jobfleet.yaml'}: resources.memroy: unknown key")


def test_unknown_section(tmp_path: Path) -> None:
    error = load_error(tmp_path, "resorces: {cores: 2}\n")
    assert error.key == "resorces"
    assert "unknown section or key" in str(error)
    assert "did you mean 'resources'?" in str(error)
    assert "profiles" in str(error)


def test_dotted_key_at_top_level_is_unknown(tmp_path: Path) -> None:
    error = load_error(tmp_path, "local.cores: 4\n")
    assert error.key == "local.cores"
    assert "unknown section or key" in str(error)


def test_unknown_key_inside_profile(tmp_path: Path) -> None:
    error = load_error(tmp_path, "profiles:\n  big:\n    resources: {coers: 4}\n")
    assert error.key == "profiles.big.resources.coers"
    assert "did you mean 'cores'?" in str(error)


def test_profiles_cannot_nest(tmp_path: Path) -> None:
    error = load_error(tmp_path, "profiles:\n  a:\n    profiles: {}\n")
    assert error.key == "profiles.a.profiles"


def test_unknown_profile_lists_defined_ones(tmp_path: Path) -> None:
    error = load_error(tmp_path, LAYERED, profile="bgi")
    assert "unknown profile 'bgi'" in str(error)
    assert "did you mean 'big'?" in str(error)
    assert "defined: big, gpu" in str(error)
    assert error.source == str(tmp_path / "jobfleet.yaml")


def test_unknown_profile_without_profiles_or_file(tmp_path: Path) -> None:
    assert "defines no profiles" in str(load_error(tmp_path, "backend: local\n", profile="x"))
    with pytest.raises(ConfigError, match="no configuration file was found"):
        load_config(profile="x", env={"HOME": str(tmp_path)}, cwd=tmp_path / "empty")


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "backend: local\nresources:\n  cores: [1, 2\n  memory: 4G\n")
    assert error.source == str(tmp_path / "jobfleet.yaml")
    assert "invalid YAML at line 4" in str(error)
    assert "Traceback" not in str(error)


@pytest.mark.parametrize("text", ["!!bool maybe", "!!timestamp x", "a: 2001-02-30", "[" * 5000])
def test_yaml_that_pyyaml_cannot_construct(tmp_path: Path, text: str) -> None:
    assert "invalid YAML" in str(load_error(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("- a\n- b\n", None, "the file must be a mapping"),
        ("resources: 4\n", "resources", "section 'resources' must be a mapping"),
        ("profiles: [a]\n", "profiles", "must be a mapping"),
        ("profiles: {big: 3}\n", "profiles.big", "must be a mapping"),
        ("profiles: {1: {}}\n", "profiles.1", "profile names must be text"),
    ],
)
def test_structure_errors(tmp_path: Path, text: str, key: str | None, words: str) -> None:
    error = load_error(tmp_path, text)
    assert error.key == key
    assert words in str(error)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("backend", "slrum", "choose one of htcondor, local"),
        ("backend", 3, "unknown backend 3"),
        ("resources.cores", -1, "at least 1"),
        ("resources.cores", "two", "whole number"),
        ("resources.cores", 1.5, "whole number"),
        ("resources.cores", None, "null is not allowed"),
        ("resources.memory", "lots", "'4G'"),
        ("resources.memory", 0, "more than 0 bytes"),
        ("resources.walltime", "10:00", "ambiguous"),
        ("resources.gpus", -1, "at least 0"),
        ("resources.nodes", 0, "at least 1"),
        ("resources.queue", "a\nb", "one line"),
        ("resources.account", ["x"], "expected text"),
        ("resources.extra_args", "--hold", "list of strings"),
        ("resources.extra_directives", {"a": 1}, "list of strings"),
        ("local.cores", 0, "whole number >= 1, got 0; or write 'auto'"),
        ("local.cores", "many", "or write 'auto'"),
        ("local.memory", "lots", "or write 'auto'"),
        ("local.gpus", -1, ">= 0"),
        ("local.gpus", True, "whole number"),
        ("local.cancel_grace", "soon", "duration"),
        ("local.idle_exit", -5, "longer than 0"),
        ("wait.poll_interval", 0, "above 0"),
        ("wait.poll_interval", "fast", "above 0"),
        ("wait.poll_interval", "1d", "above 0"),
        ("wait.poll_interval", 10**400, "at most 1 day"),
        ("wait.poll_interval", math.nan, "above 0"),
    ],
)
def test_bad_values_in_file(tmp_path: Path, key: str, value: object, words: str) -> None:
    section, _, name = key.rpartition(".")
    data = {section: {name: value}} if section else {key: value}
    error = load_error(tmp_path, yaml.safe_dump(data))
    assert error.key == key
    assert error.source == str(tmp_path / "jobfleet.yaml")
    assert words in error.message
    assert str(error).startswith(f"{error.source}: {key}: ")


def test_bad_value_in_list_item_names_the_item(tmp_path: Path) -> None:
    error = load_error(tmp_path, "resources: {extra_args: [ok, 3]}\n")
    assert error.key == "resources.extra_args[1]"


def test_bad_override_value_comes_from_the_command_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, LAYERED, overrides={"resources.memory": "lots"})
    assert (error.source, error.key) == ("command line", "resources.memory")


def test_unknown_override_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, "", overrides={"resources.memroy": "4G"})
    assert (error.source, error.key) == ("command line", "resources.memroy")
    assert "did you mean 'resources.memory'?" in str(error)


def test_override_cannot_set_a_whole_section(tmp_path: Path) -> None:
    error = load_error(tmp_path, "", overrides={"resources": {"cores": 2}})
    assert error.key == "resources"


def test_directory_as_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, env={}, cwd=tmp_path)


# -- never anything but Config or ConfigError --------------------------------------

YAML_PIECES = [*string.punctuation, " ", "\n  ", "\t", "!!", "resources:", "profiles:", "- ", ": "]
KEY_WORDS = sorted({s.section for s in SCHEMA if s.section} | {s.name for s in SCHEMA})
keys = st.sampled_from([*KEY_WORDS, "profiles", "auto"]) | st.text(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["auto", "4G", "1h", "0.5s", "local", "10:00", "-1", "1e400"])
)
yaml_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


def layer(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings shaped like a config layer, so that the value parsers get exercised."""
    sections = {s.section for s in SCHEMA if s.section}
    bodies = {
        section: st.dictionaries(
            st.sampled_from([s.name for s in SCHEMA if s.section == section]), leaves, max_size=4
        )
        for section in sections
    }
    return st.fixed_dictionaries({}, optional={"backend": leaves, **bodies})


shaped_files = st.builds(
    lambda base, profiles: {**base, "profiles": profiles} if profiles else base,
    layer(scalars | st.lists(scalars, max_size=3)),
    st.dictionaries(st.sampled_from(["big", "auto"]), layer(scalars), max_size=2),
)


def check_outcome(load: Any) -> None:
    try:
        config = load()
    except ConfigError as error:
        assert str(error)
        return
    json.dumps(config.values, allow_nan=False)
    assert len(describe(config)) == len(SCHEMA)


@PROPERTY
@given(text=st.lists(st.text() | st.sampled_from(YAML_PIECES)).map("".join))
def test_any_text_file_gives_config_or_config_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "any.yaml", text)
    check_outcome(lambda: load_config(path, env={}, cwd=tmp_path))


@PROPERTY
@given(data=shaped_files | yaml_values, profile=st.none() | st.sampled_from(["big", "auto"]))
def test_any_yaml_value_gives_config_or_config_error(
    tmp_path: Path, data: object, profile: str | None
) -> None:
    path = write(tmp_path / "any.yaml", yaml.safe_dump(data))
    check_outcome(lambda: load_config(path, profile=profile, env={}, cwd=tmp_path))


@PROPERTY
@given(
    overrides=st.dictionaries(
        st.sampled_from([s.dotted for s in SCHEMA]) | st.text(max_size=10),
        yaml_values | st.tuples(scalars, scalars),
        max_size=6,
    )
)
def test_any_override_gives_config_or_config_error(
    tmp_path: Path, overrides: dict[str, Any]
) -> None:
    check_outcome(
        lambda: load_config(overrides=overrides, env={"HOME": str(tmp_path)}, cwd=tmp_path)
    )
