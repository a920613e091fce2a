"""Tests for jobfleet.spec: Resources, arrays, dependencies, JobSpec and its dict form."""

from __future__ import annotations

import doctest
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobfleet.arrays
import jobfleet.spec
from jobfleet.arrays import MAX_ARRAY_SIZE
from jobfleet.errors import SpecError, UnitError
from jobfleet.spec import (
    MAX_NAME_LENGTH,
    ArraySpec,
    Dependency,
    DepKind,
    JobSpec,
    Resources,
    parse_array,
    spec_from_dict,
    spec_to_dict,
)


def test_array_doctests() -> None:
    result = doctest.testmod(jobfleet.arrays)
    assert result.failed == 0 and result.attempted > 0


def test_doctests() -> None:
    result = doctest.testmod(jobfleet.spec)
    assert result.attempted > 0
    assert result.failed == 0


# --- Resources -----------------------------------------------------------------


def test_resources_defaults() -> None:
    res = Resources()
    assert (res.cores, res.gpus, res.nodes) == (1, 0, 1)
    assert res.memory_bytes is None and res.walltime_s is None
    assert res.queue is None and res.account is None
    assert res.extra_directives == res.directives_skip == res.extra_args == ()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cores": 0}, "resources.cores"),
        ({"cores": True}, "resources.cores"),
        ({"cores": "4"}, "resources.cores"),
        ({"cores": 2.0}, "resources.cores"),
        ({"gpus": -1}, "resources.gpus"),
        ({"nodes": 0}, "resources.nodes"),
        ({"memory_bytes": 0}, "resources.memory_bytes"),
        ({"memory_bytes": "4G"}, "resources.memory_bytes"),
        ({"walltime_s": 0}, "resources.walltime_s"),
        ({"queue": ""}, "resources.queue"),
        ({"queue": "a\nb"}, "resources.queue"),
        ({"account": 7}, "resources.account"),
        ({"extra_directives": "--x"}, "resources.extra_directives"),
        ({"extra_directives": ["--ok", "--bad\n#SBATCH --x"]}, "resources.extra_directives[1]"),
        ({"directives_skip": [""]}, "resources.directives_skip[0]"),
        ({"extra_args": [3]}, "resources.extra_args[0]"),
    ],
)
def test_resources_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        Resources(**kwargs)
    assert info.value.field == field


def test_resources_lists_become_tuples() -> None:
    res = Resources(extra_directives=["--a"], directives_skip=["--mem"], extra_args=["-v"])
    assert res.extra_directives == ("--a",)
    assert res.directives_skip == ("--mem",)
    assert res.extra_args == ("-v",)
    assert hash(res) == hash(
        Resources(extra_directives=("--a",), directives_skip=("--mem",), extra_args=("-v",))
    )


def test_resources_of_units() -> None:
    res = Resources.of(cores=4, memory="8G", walltime="2h", gpus=1, queue="gpu")
    assert res.memory_bytes == 8 * 2**30
    assert res.walltime_s == 7200
    assert (res.cores, res.gpus, res.queue) == (4, 1, "gpu")
    assert Resources.of(memory="4GB").memory_bytes == 4_000_000_000
    assert Resources.of(walltime=90).walltime_s == 90
    assert Resources.of(memory=None, walltime=None) == Resources()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"memory": "lots"}, "resources.memory"),
        ({"walltime": "10:00"}, "resources.walltime"),
        ({"memory": 0}, "resources.memory"),
    ],
)
def test_resources_of_unit_errors(values: dict[str, Any], field: str) -> None:
    with pytest.raises(UnitError) as info:
        Resources.of(**values)
    assert info.value.field == field


def test_unknown_key_suggests_and_lists() -> None:
    with pytest.raises(SpecError) as info:
        Resources.of(memroy="4G")
    assert info.value.field == "resources.memroy"
    assert "did you mean 'memory'?" in info.value.message
    for key in Resources.KEYS:
        assert key in info.value.message


def test_unknown_key_without_close_match() -> None:
    with pytest.raises(SpecError) as info:
        Resources.of(zzzzzz=1)
    assert "did you mean" not in info.value.message
    assert "valid keys: cores, memory" in info.value.message


def test_canonical_names_are_not_mapping_keys() -> None:
    # memory_bytes is the field, memory the key: the key list is what users write
    with pytest.raises(SpecError, match="did you mean 'memory'"):
        Resources.from_mapping({"memory_bytes": 5})


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"cores": "4"}, "profiles.big.resources.cores"),
        ({"cores": 0}, "profiles.big.resources.cores"),
        ({"memory": "4X"}, "profiles.big.resources.memory"),
        ({"extra_args": "-v"}, "profiles.big.resources.extra_args"),
        ({"queue": ["a"]}, "profiles.big.resources.queue"),
        ({"bogus": 1}, "profiles.big.resources.bogus"),
    ],
)
def test_from_mapping_prefix_in_errors(values: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        Resources.from_mapping(values, prefix="profiles.big.resources")
    assert info.value.field == field


def test_merged_revalidates() -> None:
    res = Resources.of(cores=2)
    assert res.merged(cores=8).cores == 8
    assert res.cores == 2
    with pytest.raises(SpecError):
        res.merged(cores=0)


# --- arrays ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "indices", "limit"),
    [
        ("1-100", tuple(range(1, 101)), None),
        ("1-100%10", tuple(range(1, 101)), 10),
        ("1,3,5-9", (1, 3, 5, 6, 7, 8, 9), None),
        ("0-20:5", (0, 5, 10, 15, 20), None),
        ("0-21:5", (0, 5, 10, 15, 20), None),
        ("7", (7,), None),
        ("0", (0,), None),
        ("5-5", (5,), None),
        ("9,1,5", (1, 5, 9), None),
        ("1-5,3-7", tuple(range(1, 8)), None),
        (" 1-3 ", (1, 2, 3), None),
        ("1-3%1", (1, 2, 3), 1),
        ("0-999999", tuple(range(MAX_ARRAY_SIZE)), None),
    ],
)
def test_parse_array(text: str, indices: tuple[int, ...], limit: int | None) -> None:
    arr = parse_array(text)
    assert arr.indices == indices
    assert arr.max_concurrent == limit
    assert len(arr) == len(indices)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "%5",
        "1-100%0",
        "1-100%",
        "1-100%x",
        "1-100%1%2",
        "1-100%-1",
        "5-1",
        "0-20:0",
        "a",
        "1,,2",
        "1,",
        "-1",
        "1-2-3",
        "1:2",
        "1.5",
        "1-0x10",
        "0-1000000",
        "0-999999,1000000",
        "1234567890",
    ],
)
def test_parse_array_errors(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_array(text)
    assert info.value.field == "array"


def test_parse_array_error_field_and_type() -> None:
    with pytest.raises(SpecError) as info:
        parse_array("x", "profiles.a.array")
    assert info.value.field == "profiles.a.array"
    with pytest.raises(SpecError, match="expected text"):
        parse_array(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("indices", "limit", "text"),
    [
        (tuple(range(1, 101)), 10, "1-100%10"),
        ((1, 3, 6, 7, 8, 9), None, "1,3,6-9"),
        # runs are found greedily: a stepped run may take what a reader would
        # have put in the next range (the docstring's "1,3,5-9" is not canonical)
        ((1, 3, 5, 6, 7, 8, 9), None, "1,3,5-9"),
        ((0, 5, 10, 15, 20), None, "0-20:5"),
        ((1, 2), None, "1-2"),
        ((1, 5), None, "1,5"),
        ((4,), 3, "4%3"),
        ((1, 2, 3, 4, 5, 7, 20, 25, 30), None, "1-5,7,20-30:5"),
    ],
)
def test_array_to_text(indices: tuple[int, ...], limit: int | None, text: str) -> None:
    arr = ArraySpec(indices, limit)
    assert arr.to_text() == text
    assert str(arr) == text


def test_array_spec_validation() -> None:
    assert ArraySpec((3, 1, 3, 2)).indices == (1, 2, 3)
    with pytest.raises(SpecError, match="at least one index"):
        ArraySpec(())
    with pytest.raises(SpecError, match="from 0 to"):
        ArraySpec((-1, 2))
    with pytest.raises(SpecError) as info:
        ArraySpec((1,), 0)
    assert info.value.field == "array.max_concurrent"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="0123456789-,:% ", max_size=20)))
def test_parse_array_total(text: str) -> None:
    try:
        arr = parse_array(text)
    except SpecError:
        return
    assert isinstance(arr, ArraySpec)
    assert list(arr.indices) == sorted(set(arr.indices))
    assert 0 < len(arr) <= MAX_ARRAY_SIZE


def test_superscript_limit_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        parse_array("1-5%²")


# Indices are at most 9 digits in the text form.
INDEX = st.integers(min_value=0, max_value=999_999_999)


@st.composite
def arrays(draw: st.DrawFn) -> ArraySpec:
    indices: set[int] = set()
    for _ in range(draw(st.integers(1, 4))):
        start = draw(INDEX)
        step = draw(st.integers(1, 1000))
        count = draw(st.integers(1, 30))
        indices.update(i for i in range(start, start + step * count, step) if i <= 999_999_999)
    indices.update(draw(st.lists(INDEX, max_size=5)))
    limit = draw(st.none() | st.integers(1, 999_999_999))
    return ArraySpec(tuple(sorted(indices)), limit)


@settings(max_examples=300, deadline=None)
@given(arrays())
def test_array_text_round_trip(arr: ArraySpec) -> None:
    assert parse_array(arr.to_text()) == arr


@settings(max_examples=300, deadline=None)
@given(arrays())
def test_array_ranges_cover_exactly(arr: ArraySpec) -> None:
    covered = [i for start, stop, step in arr.ranges() for i in range(start, stop + 1, step)]
    assert covered == list(arr.indices)


def test_index_bounds_keep_text_round_trip() -> None:
    arr = ArraySpec((999_999_999,))
    assert parse_array(arr.to_text()) == arr
    with pytest.raises(SpecError, match="from 0 to 999999999"):
        ArraySpec((1_000_000_000,))


def test_array_indices_always_a_tuple() -> None:
    assert ArraySpec([1, 2, 3]).indices == (1, 2, 3)  # type: ignore[arg-type]


# --- dependencies ------------------------------------------------------------------


def test_dependency() -> None:
    dep = Dependency("after_ok", ("1", "2", "1"))  # type: ignore[arg-type]
    assert dep.kind is DepKind.AFTER_OK
    assert dep.job_ids == ("1", "2")
    assert str(DepKind.AFTER_ANY) == "after_any"
    assert [k.value for k in DepKind] == ["after_ok", "after_any", "after_not_ok"]


@pytest.mark.parametrize(
    ("kind", "ids", "field"),
    [
        ("after", ("1",), "dependencies.kind"),
        (DepKind.AFTER_OK, (), "dependencies.job_ids"),
        (DepKind.AFTER_OK, "12", "dependencies.job_ids"),
        (DepKind.AFTER_OK, ("1\n",), "dependencies.job_ids[0]"),
    ],
)
def test_dependency_errors(kind: Any, ids: Any, field: str) -> None:
    with pytest.raises(SpecError) as info:
        Dependency(kind, ids)
    assert info.value.field == field
    if field == "dependencies.kind":
        assert "after_ok, after_any, after_not_ok" in info.value.message


# --- JobSpec -----------------------------------------------------------------------


def test_jobspec_basics() -> None:
    spec = JobSpec(["python", "run.py", ""])
    assert spec.command == ("python", "run.py", "")
    assert spec.env == {}
    assert spec.display_name == "python"
    assert JobSpec(["/usr/bin/python3"]).display_name == "python3"
    assert JobSpec(["dir/"]).display_name == "job"
    assert JobSpec(["x"], name="mine").display_name == "mine"
    shell = JobSpec("echo hi | wc", shell=True)
    assert shell.command == ("echo hi | wc",)
    assert shell.display_name == "shell"
    assert JobSpec(["echo hi"], shell=True).command == ("echo hi",)
    assert JobSpec(["x"], name="n" * MAX_NAME_LENGTH).name == "n" * MAX_NAME_LENGTH


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"command": []}, "command", "must not be empty"),
        ({"command": ()}, "command", "must not be empty"),
        ({"command": "python run.py"}, "command", "shell=True"),
        ({"command": ["a", "b"], "shell": True}, "command", "exactly one string"),
        ({"command": [""]}, "command[0]", "must not be empty"),
        ({"command": [5]}, "command[0]", "expected text"),
        ({"command": ["x", "a\x00b"]}, "command[1]", "NUL"),
        ({"command": ["x"], "env": {"1A": "x"}}, "env", "not a valid"),
        ({"command": ["x"], "env": {"A-B": "x"}}, "env", "not a valid"),
        ({"command": ["x"], "env": {"": "x"}}, "env", "not a valid"),
        ({"command": ["x"], "env": {"A B": "x"}}, "env", "not a valid"),
        ({"command": ["x"], "env": {1: "x"}}, "env", "not a valid"),
        ({"command": ["x"], "env": {"A": 1}}, "env.A", "expected text"),
        ({"command": ["x"], "env": {"A": "\x00"}}, "env.A", "NUL"),
        ({"command": ["x"], "env": [("A", "1")]}, "env", "mapping"),
        ({"command": ["x"], "name": "a\nb"}, "name", "one line"),
        ({"command": ["x"], "name": "a\tb"}, "name", "one line"),
        ({"command": ["x"], "name": "a\x7f"}, "name", "one line"),
        ({"command": ["x"], "name": "\x1b[31mred"}, "name", "one line"),
        ({"command": ["x"], "name": ""}, "name", "must not be empty"),
        ({"command": ["x"], "name": "n" * (MAX_NAME_LENGTH + 1)}, "name", "at most"),
        ({"command": ["x"], "workdir": "a\nb"}, "workdir", "one line"),
        ({"command": ["x"], "stdout": "o\r"}, "stdout", "one line"),
        ({"command": ["x"], "stderr": 5}, "stderr", "expected text"),
        ({"command": ["x"], "resources": {"cores": 1}}, "resources", "Resources"),
        ({"command": ["x"], "array": "1-10"}, "array", "parse_array"),
        ({"command": ["x"], "dependencies": ["1"]}, "dependencies", "Dependency"),
    ],
)
def test_jobspec_validation(kwargs: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        JobSpec(**kwargs)
    assert info.value.field == field
    assert fragment in info.value.message


def test_argv_keeps_newlines_and_quotes() -> None:
    # argv is never parsed by a shell, so anything but NUL is a valid argument
    spec = JobSpec(["x", "a\nb", "'", "$(id)", "\t"])
    assert spec.command[1:] == ("a\nb", "'", "$(id)", "\t")


def test_env_name_with_trailing_newline_is_refused() -> None:
    with pytest.raises(SpecError):
        JobSpec(["x"], env={"A\n": "1"})


def test_with_changes_and_dependency_ids() -> None:
    deps = (
        Dependency(DepKind.AFTER_OK, ("3", "1")),
        Dependency(DepKind.AFTER_ANY, ("1", "2")),
    )
    spec = JobSpec(["x"], dependencies=deps)
    assert spec.dependency_ids() == ["3", "1", "2"]
    changed = spec.with_changes(name="y")
    assert changed.name == "y" and spec.name is None
    with pytest.raises(SpecError):
        spec.with_changes(command=[])


# --- dict form ---------------------------------------------------------------------


def test_spec_to_dict_shape() -> None:
    spec = JobSpec(
        ["python", "t.py"],
        name="t",
        env={"A": "1"},
        resources=Resources.of(memory="1G"),
        array=parse_array("1-9:2%3"),
        dependencies=(Dependency(DepKind.AFTER_OK, ("5",)),),
    )
    data = spec_to_dict(spec)
    assert json.loads(json.dumps(data)) == data
    assert data["command"] == ["python", "t.py"]
    assert data["array"] == {"indices": "1-9:2", "max_concurrent": 3}
    assert data["resources"]["memory_bytes"] == 2**30
    assert data["dependencies"] == [{"kind": "after_ok", "job_ids": ["5"]}]
    assert spec_from_dict(data) == spec


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"command": ["x"], "resources": {"bogus": 1}},
        {"command": ["x"], "resources": None},
        {"command": ["x"], "array": {"max_concurrent": 2}},
        {"command": ["x"], "array": [1]},
        {"command": ["x"], "dependencies": [{"kind": "nope", "job_ids": ["1"]}]},
        {"command": ["x"], "dependencies": [{"kind": "after_ok"}]},
        {"command": 5},
    ],
)
def test_spec_from_damaged_dict(data: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(data)
    assert info.value.field == "spec"
    assert "damaged" in info.value.message


def test_spec_from_dict_keeps_field_errors() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict({"command": ["x"], "resources": {"cores": 0}})
    assert info.value.field == "resources.cores"


LINE = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
ARG = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@st.composite
def specs(draw: st.DrawFn) -> JobSpec:
    shell = draw(st.booleans())
    command: str | list[str]
    if shell:
        command = draw(ARG.filter(bool))
    else:
        command = [draw(ARG.filter(bool)), *draw(st.lists(ARG, max_size=4))]
    resources = Resources(
        cores=draw(st.integers(1, 256)),
        memory_bytes=draw(st.none() | st.integers(1, 2**60)),
        walltime_s=draw(st.none() | st.integers(1, 10**9)),
        gpus=draw(st.integers(0, 8)),
        nodes=draw(st.integers(1, 64)),
        queue=draw(st.none() | LINE),
        account=draw(st.none() | LINE),
        extra_directives=tuple(draw(st.lists(LINE, max_size=2))),
        directives_skip=tuple(draw(st.lists(LINE, max_size=2))),
        extra_args=tuple(draw(st.lists(LINE, max_size=2))),
    )
    deps = draw(
        st.lists(
            st.builds(
                Dependency,
                st.sampled_from(DepKind),
                st.lists(LINE, min_size=1, max_size=3).map(tuple),
            ),
            max_size=2,
        )
    )
    return JobSpec(
        command=command,
        shell=shell,
        name=draw(st.none() | LINE),
        workdir=draw(st.none() | LINE),
        env=draw(st.dictionaries(ENV_NAME, ARG, max_size=3)),
        stdout=draw(st.none() | LINE),
        stderr=draw(st.none() | LINE),
        resources=resources,
        array=draw(st.none() | arrays()),
        dependencies=tuple(deps),
    )


@settings(max_examples=300, deadline=None)
@given(specs())
def test_spec_dict_round_trip(spec: JobSpec) -> None:
    data = spec_to_dict(spec)
    assert spec_from_dict(data) == spec
    # and through JSON, as the registry stores it
    assert spec_from_dict(json.loads(json.dumps(data))) == spec
