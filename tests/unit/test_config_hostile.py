"""Hostile configuration files: each one a short ConfigError naming the file, or a Config."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobfleet.config import Config, load_config
from jobfleet.configfile import find_config_file
from jobfleet.errors import ConfigError, shorten
from jobfleet.yamlsafe import MAX_BYTES, read_yaml_bounded

NAME = "hostile.yaml"
LONGEST = 500


def bomb(levels: int = 9, width: int = 9) -> str:
    """Billion laughs: ``width`` aliases to the previous level, ``levels`` deep."""
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"a: &a [{','.join(['lol'] * width)}]"]
    for prev, name in itertools.pairwise(names[:levels]):
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * width)}]")
    return "\n".join(lines)


def indent(text: str, by: int) -> str:
    return "\n".join(" " * by + line for line in text.splitlines())


def error_for(tmp_path: Path, text: str, **kwargs: object) -> ConfigError:
    path = tmp_path / NAME
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, cwd=tmp_path, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert len(str(error)) < LONGEST, str(error)[:200]
    assert "\n" not in str(error)
    return error


# -- 1. alias bombs, size, depth -------------------------------------------------------


@pytest.mark.parametrize("section", ["resources:\n  cores:\n", "backend:\n"])
def test_alias_bomb_is_refused_short(tmp_path: Path, section: str) -> None:
    text = section + indent(bomb(), 4 if section.startswith("resources") else 2) + "\n"
    assert len(text.encode()) < 400  # the real few-hundred-byte shape
    error = error_for(tmp_path, text)
    assert error.source == str(tmp_path / NAME)
    assert "too many aliases" in error.message


def test_alias_loop_is_refused(tmp_path: Path) -> None:
    error = error_for(tmp_path, "resources:\n  extra_args: &a [x, *a]\n")
    assert "alias *a" in error.message and "loop" in error.message


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text(
        "resources: &b {cores: 2}\nprofiles: {p: {resources: {<<: *b, gpus: 1}}}\n"
    )
    config = load_config(tmp_path / NAME, profile="p", env={}, cwd=tmp_path)
    assert (config.resources.cores, config.resources.gpus) == (2, 1)


@pytest.mark.parametrize(
    "text", ["[" * 60 + "]" * 60, "a:\n" + "".join(" " * i + "- \n" for i in range(1, 80))]
)
def test_deep_nesting_is_refused(tmp_path: Path, text: str) -> None:
    assert "nested too deeply" in error_for(tmp_path, text).message


def test_depth_counts_aliases(tmp_path: Path) -> None:
    deep = "[" * 30 + "x" + "]" * 30
    text = f"a: &a {deep}\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    assert "nested too deeply" in error_for(tmp_path, text).message


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    text = "resources:\n  extra_args:\n" + "    - --x\n" * (MAX_BYTES // 10 + 1)
    error = error_for(tmp_path, text)
    assert f"larger than {MAX_BYTES} bytes" in error.message


def test_reader_refuses_directly(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(bomb())
    with pytest.raises(ConfigError, match="too many aliases"):
        read_yaml_bounded(path)
    path.write_text("a: [1, 2]\n")
    assert read_yaml_bounded(path, max_nodes=5) == {"a": [1, 2]}  # {}, a, [], 1, 2
    with pytest.raises(ConfigError, match="more than 4"):
        read_yaml_bounded(path, max_nodes=4)


# -- 2. duplicate keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("backend: local\nbackend: slurm\n", "'backend'", ("line 1,", "line 2,")),
        ("resources:\n  cores: 1\n  cores: 2\n", "'cores'", ("line 2,", "line 3,")),
        ("profiles:\n  p: {}\n  q: {}\n  p: {}\n", "'p'", ("line 2,", "line 4,")),
        (
            "profiles:\n  p:\n    local: {cores: 1, cores: 2}\n",
            "'cores'",
            ("column 13", "column 23"),
        ),
        ("resources: {}\nresources: {}\n", "'resources'", ("line 1,", "line 2,")),
    ],
)
def test_duplicate_keys_are_refused(
    tmp_path: Path, text: str, key: str, lines: tuple[str, str]
) -> None:
    message = error_for(tmp_path, text).message
    assert f"key {key} is given twice" in message
    assert all(line in message for line in lines), message


def test_a_merge_key_may_be_overridden(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text(
        "resources: &r {cores: 2}\nprofiles: {p: {resources: {<<: *r, cores: 3}}}\n"
    )
    assert load_config(tmp_path / NAME, profile="p", env={}, cwd=tmp_path).resources.cores == 3


# -- 3. bounded lists --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["extra_args", "extra_directives", "directives_skip"])
def test_list_settings_are_bounded(tmp_path: Path, key: str) -> None:
    ok = f"resources:\n  {key}: [{', '.join(['x'] * 1000)}]\n"
    (tmp_path / NAME).write_text(ok)
    assert len(getattr(load_config(tmp_path / NAME, env={}, cwd=tmp_path).resources, key)) == 1000
    error = error_for(tmp_path, ok.replace("[x,", "[x, x,"))
    assert error.key == f"resources.{key}"
    assert "1001 entries; at most 1000" in error.message


def test_override_lists_are_bounded_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at most 1000"):
        load_config(overrides={"resources.extra_args": ["x"] * 1001}, env={}, cwd=tmp_path)


# -- 4. paths that cannot be looked up ----------------------------------------------------


def test_too_long_config_path_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("a" * 5000, env={}, cwd=tmp_path)
    text = str(info.value)
    assert "--config" in text and "5000" not in text[:60]
    assert "(50" in text and len(text) < LONGEST  # shortened, its length said


@pytest.mark.parametrize("kind", ["directory", "loop", "long"])
def test_unreadable_jobfleet_config_names_the_variable(tmp_path: Path, kind: str) -> None:
    if kind == "directory":
        named = str(tmp_path)
    elif kind == "loop":
        (tmp_path / "loop").symlink_to("loop")
        named = str(tmp_path / "loop")
    else:
        named = "b" * 5000
    with pytest.raises(ConfigError) as info:
        load_config(env={"JOBFLEET_CONFIG": named}, cwd=tmp_path)
    assert "$JOBFLEET_CONFIG" in str(info.value)
    assert len(str(info.value)) < LONGEST


def test_explicit_directory_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config: Is a directory"):
        load_config(tmp_path, env={}, cwd=tmp_path)


def test_default_place_that_cannot_be_looked_up_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "jobfleet.yaml").symlink_to("jobfleet.yaml")
    with pytest.raises(ConfigError) as info:
        find_config_file(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert info.value.source == str(tmp_path / "jobfleet.yaml")
    assert "symbolic links" in info.value.message


def test_nul_in_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config"):
        load_config("a\x00b", env={}, cwd=tmp_path)


# -- 5, 6. bad values name the file, in every section and in profiles ---------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("resources: {cores: " + "9" * 4000 + "}", "resources.cores"),
        ("resources: {gpus: 99999999999999999999}", "resources.gpus"),
        ("resources: {memory: 1.5e+300}", "resources.memory"),
        ("resources: {walltime: .inf}", "resources.walltime"),
        ("resources: {nodes: [1]}", "resources.nodes"),
        ("resources: {queue: {a: 1}}", "resources.queue"),
        ("wait: {poll_interval: 1e+400}", "wait.poll_interval"),
        ("wait: {lost_after: " + "9" * 300 + "}", "wait.lost_after"),
        ("local: {cores: 99999999999999999999}", "local.cores"),
        ("slurm: {submit_retries: " + "9" * 100 + "}", "slurm.submit_retries"),
        ("sge: {parallel_environment: [x]}", "sge.parallel_environment"),
        ("profiles: {p: {resources: {cores: " + "9" * 4000 + "}}}", "profiles.p.resources.cores"),
        ("profiles: {p: {local: {cancel_grace: -1}}}", "profiles.p.local.cancel_grace"),
        ("profiles: {p: {wait: {min_gap: .nan}}}", "profiles.p.wait.min_gap"),
    ],
)
def test_bad_value_names_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    error = error_for(tmp_path, text + "\n")
    assert error.source == str(tmp_path / NAME)
    assert error.key == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("resources: {cores: '٣'}", "resources.cores"),
        ("resources: {memory: '٣G'}", "resources.memory"),
        ('resources: {walltime: "4\\n"}', "resources.walltime"),
        ("resources: {walltime: '\u0663\u0660s'}", "resources.walltime"),
        ("wait: {poll_interval: '٣s'}", "wait.poll_interval"),
        ('wait: {poll_interval: "1\\n"}', "wait.poll_interval"),
        ('local: {cancel_grace: "4\\t"}', "local.cancel_grace"),
        ("local: {memory: '\uff14G'}", "local.memory"),
        ("local: {cores: '4'}", "local.cores"),
    ],
)
def test_numbers_must_be_ascii(tmp_path: Path, text: str, key: str) -> None:
    assert error_for(tmp_path, text + "\n").key == key


def test_plain_values_still_read(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text(
        "resources: {memory: 4G, walltime: '1h30m'}\nwait: {poll_interval: 0.5s}\n"
        "local: {cores: auto, cancel_grace: 10s}\n"
    )
    config = load_config(tmp_path / NAME, env={}, cwd=tmp_path)
    assert config.resources.walltime_s == 5400
    assert config.wait.poll_interval_s == 0.5


# -- 7. long values are shortened -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "resources: {queue: '" + "q" * 100_000 + "\x01'}",
        "resources: {" + "k" * 100_000 + ": 1}",
        "resources: {extra_args: [" + ", ".join(["'" + "x" * 900 + "'"] * 999) + ", 1]}",
        "profiles: {" + "p" * 50_000 + ": 3}",
        "'" + "x" * 100_000 + "': 1",
        "resources: {cores: -" + "9" * 4000 + "}",
        "resources: {memory: '" + "9" * 100_000 + "'}",
    ],
)
def test_long_values_are_cut(tmp_path: Path, text: str) -> None:
    error_for(tmp_path, text + "\n")  # checks the length


def test_shorten_says_how_long() -> None:
    cut = shorten("x" * 5000, 60)
    assert len(cut) <= 60 and cut.endswith("(5000 characters)")
    assert shorten(cut, 60) == cut
    assert shorten("short") == "short"


# -- property: whatever the file, a Config or a short ConfigError naming it ------------------

_EXAMPLES = 50_000 if os.environ.get("JOBFLEET_SOAK") else 300
_KEYS = st.sampled_from(
    ["backend", "resources", "wait", "local", "slurm", "sge", "profiles", "p", "cores",
     "memory", "walltime", "gpus", "nodes", "queue", "account", "extra_args",
     "extra_directives", "directives_skip", "poll_interval", "lost_after", "cancel_grace",
     "submit_retries", "<<"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(0, 4200).map(lambda n: 10**n),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["4G", "1h", "0.5s", "auto", "٣", "4\n", "1e400", "local", "-1", "\x00"]),
    st.text(min_size=200, max_size=2000),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(_KEYS, st.text(max_size=10)), inner, max_size=6),
    ),
    max_leaves=40,
)
_DOCS = st.dictionaries(_KEYS, _VALUES, max_size=6)


@st.composite
def hostile_text(draw: st.DrawFn) -> str:
    """A YAML text: a dumped random document, perhaps mangled with aliases, bombs,
    duplicated lines or raw bytes."""
    text = yaml.safe_dump(draw(_DOCS), allow_unicode=draw(st.booleans()))
    edit = draw(st.sampled_from(["none", "bomb", "dup", "insert", "alias", "deep"]))
    lines = text.splitlines()
    if edit == "bomb":
        text += indent(bomb(draw(st.integers(2, 9)), draw(st.integers(2, 9))), 0) + "\n"
    elif edit == "dup" and lines:
        text += draw(st.sampled_from(lines)) + "\n"
    elif edit == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=20)) + text[at:]
    elif edit == "alias":
        text = f"x: &x {draw(st.sampled_from(['[1, 2]', '{cores: 2}', '9' * 50]))}\n" + text
        text += f"{draw(_KEYS)}: *x\n"
    elif edit == "deep":
        depth = draw(st.integers(1, 120))
        text += f"{draw(_KEYS)}: " + "[" * depth + "]" * depth + "\n"
    return text


@settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=hostile_text(), profile=st.sampled_from([None, "p"]))
def test_any_file_loads_or_fails_short(tmp_path: Path, text: str, profile: str | None) -> None:
    path = tmp_path / NAME
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(path, profile=profile, env={}, cwd=tmp_path)
    except ConfigError as exc:
        message = str(exc)
        assert len(message) < LONGEST, message[:200]
        assert NAME in message, message
    else:
        assert isinstance(config, Config)
