"""Study files (jobfleet.studies.studyfile): the model, each form, overrides, errors."""

from __future__ import annotations

import doctest
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobfleet.errors import ConfigError
from jobfleet.studies import plan, sweeps
from jobfleet.studies.plan import describe, describe_text
from jobfleet.studies.points import point_dirname, point_key
from jobfleet.studies.studyfile import load_study

SIMPLEST = """\
name: grid
command: ["python3", "simulate.py", "--a", "{a}", "--b", "{b}"]
parameters:
  a: [1, 2, 3]
  b: [x, y, z, w]
output: results
"""

PIPELINE = """\
name: pipeline
resources: {cores: 2, memory: 4G}
env: {OMP_NUM_THREADS: 1}
steps:
  prep:
    command: [python3, prep.py]
  sweep:
    command: [python3, simulate.py, --a, "{a}", --b, "{b}"]
    parameters: {a: [1, 2, 3], b: [x, y]}
    resources: {memory_per_core: 1G, walltime: 1h}
    env: {SEED: 7}
    max_concurrent: 4
    after: prep
  post:
    shell: python3 post.py {a} {b} > post-{a}.txt
    parameters: sweep
    after: {sweep: each}
  aggregate:
    command: [python3, aggregate.py]
    after: {post: all, prep: all}
"""


def write(directory: Path, text: str, name: str = "study.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> str:
    """The error loading ``text`` gives; it names the file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_study(path, overrides=overrides)
    message = str(info.value)
    assert "study.yaml" in message and "Traceback" not in message
    return message


def test_doctests() -> None:
    result = doctest.testmod(plan)
    assert result.attempted > 0 and result.failed == 0


def test_the_simplest_file_is_a_grid_of_one_step(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, SIMPLEST))
    assert study.name == "grid"
    assert study.path == tmp_path / "study.yaml"
    assert study.output_dir == tmp_path / "results"
    assert study.backend is None and study.profile is None
    (step,) = study.steps
    assert step.name == "main" and not step.shell and step.after == ()
    assert len(step.points) == 12 and not step.runs_once
    assert [p.params for p in step.points] == sweeps.product(a=[1, 2, 3], b=["x", "y", "z", "w"])
    first, last = step.points[0], step.points[-1]
    assert first.command == ("python3", "simulate.py", "--a", "1", "--b", "x")
    assert last.index == 11 and last.command[-3:] == ("3", "--b", "w")
    assert first.key == point_key({"a": 1, "b": "x"}, list(first.command))
    assert first.dirname == point_dirname(0, {"a": 1, "b": "x"}) == "0000-a=1,b=x"
    assert [p.index for p in step.points[2:4]] == [2, 3]
    with pytest.raises(IndexError):
        step.points[12]


def test_output_defaults_to_the_name_and_is_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    study = load_study(write(tmp_path, "name: g\ncommand: [echo, hi]\n"))
    assert study.output_dir == tmp_path / "g"
    assert study.steps[0].runs_once and study.steps[0].points[0].command == ("echo", "hi")
    study = load_study(Path("..") / "study.yaml", overrides=["output=/abs/out"])
    assert study.output_dir == Path("/abs/out")


def test_each_parameter_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def points(parameters: str) -> list[dict[str, object]]:
        text = f"name: s\ncommand: [run, '{{a}}']\nparameters: {parameters}\n"
        return list(load_study(write(tmp_path, text)).steps[0].params)

    assert points("{grid: {a: [1, 2], b: [x]}}") == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert points("{zip: {a: [1, 2], b: [x, y]}}") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert points("{points: [{a: 1, b: x}, {b: y, a: 5}]}") == [
        {"a": 1, "b": "x"},
        {"b": "y", "a": 5},
    ]
    drawn = points(
        "{random: {n: 5, seed: 3, a: {uniform: [0, 1]}, lr: {loguniform: [1e-4, 0.1]}, "
        "k: {randint: [1, 4]}, act: [relu, tanh]}}"
    )
    assert drawn == sweeps.random(
        5,
        seed=3,
        a=sweeps.uniform(0, 1),
        lr=sweeps.loguniform(1e-4, 0.1),
        k=sweeps.randint(1, 4),
        act=["relu", "tanh"],
    )
    (tmp_path / "pts.csv").write_text("a,b\n1,x\n2.5,y\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # csv: relative to the study file
    assert points("{csv: pts.csv}") == [{"a": 1, "b": "x"}, {"a": 2.5, "b": "y"}]


def test_a_shell_step_quotes_each_value(tmp_path: Path) -> None:
    text = "name: s\nshell: echo {a} | tr a b > out\nparameters: {a: ['two words', $HOME]}\n"
    step = load_study(write(tmp_path, text)).steps[0]
    assert step.shell
    assert [p.command for p in step.points] == [
        "echo 'two words' | tr a b > out",
        "echo '$HOME' | tr a b > out",
    ]
    assert step.points[0].key == point_key({"a": "two words"}, "echo 'two words' | tr a b > out")


def test_overrides_set_dotted_keys_with_yaml_values(tmp_path: Path) -> None:
    path = write(tmp_path, SIMPLEST)
    study = load_study(
        path,
        overrides=["parameters.a=[1, 2]", "resources.cores=4", "max_concurrent=10", "name=g2"],
    )
    step = study.steps[0]
    assert len(step.points) == 8 and step.resources == {"cores": 4}
    assert step.max_concurrent == 10 and study.name == "g2"
    assert study.output_dir == tmp_path / "results"
    # Later wins; null is as if the key were absent (output back to the name).
    study = load_study(path, overrides=["parameters.b=[x]", "parameters.b=[q, r]", "output="])
    assert len(study.steps[0].points) == 6 and study.output_dir == tmp_path / "grid"
    steps = load_study(
        write(tmp_path, PIPELINE, "p.yaml"), overrides=["steps.sweep.max_concurrent=10"]
    )
    assert steps.step("sweep").max_concurrent == 10 and steps.step("prep").max_concurrent is None


def test_an_override_does_not_change_what_an_alias_shares(tmp_path: Path) -> None:
    text = (
        "name: s\nsteps:\n  one: {command: [a], resources: &r {cores: 2}}\n"
        "  two: {command: [b], resources: *r}\n"
    )
    study = load_study(write(tmp_path, text), overrides=["steps.one.resources.cores=8"])
    assert study.step("one").resources == {"cores": 8}
    assert study.step("two").resources == {"cores": 2}


@pytest.mark.parametrize(
    ("given", "key", "hint"),
    [
        ("nme=g", "nme", "did you mean 'name'"),  # no such top-level key
        ("resources.cores=0", "resources.cores", "at least 1"),
        ("parameters.a=[]", "parameters.a", "has no values"),
        ("parameters.a=[1", "", "invalid YAML"),
        ("command.0=x", "command.0", "set it whole (--set command=...)"),
        ("max_concurrent=many", "max_concurrent", "expected a whole number from 1"),
    ],
)
def test_a_bad_override_names_the_set_it_came_from(
    tmp_path: Path, given: str, key: str, hint: str
) -> None:
    message = refused(tmp_path, SIMPLEST, (given,))
    assert "--set" in message and hint in message
    assert f": {key}: " in message or not key


@pytest.mark.parametrize("given", ["noequals", "=4", "a..b=1", ".a=1"])
def test_an_override_without_a_dotted_key_says_how_to_write_one(tmp_path: Path, given: str) -> None:
    message = refused(tmp_path, SIMPLEST, (given,))
    assert "expected KEY=VALUE" in message and "resources.cores=4" in message


def test_steps_per_point_and_fan_in(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, PIPELINE))
    assert [s.name for s in study.steps] == ["prep", "sweep", "post", "aggregate"]
    prep, sweep, post, aggregate = study.steps
    assert prep.runs_once and len(prep.points) == 1 and aggregate.runs_once
    assert len(sweep.points) == 6 and post.params == sweep.params
    assert [(d.step, d.kind, d.per_point) for d in sweep.after] == [("prep", "all", False)]
    assert [(d.step, d.per_point) for d in post.after] == [("sweep", True)]
    assert [(d.step, d.kind) for d in aggregate.after] == [("post", "all"), ("prep", "all")]
    assert post.shell and post.points[5].command == "python3 post.py 3 y > post-3.txt"
    # A step's memory_per_core replaces the study's memory (as configuration layers do).
    assert sweep.resources == {"cores": 2, "memory_per_core": "1G", "walltime": "1h"}
    assert prep.resources == {"cores": 2, "memory": "4G"}
    assert sweep.config_overrides()["resources.memory_per_core"] == "1G"
    assert sweep.env == {"OMP_NUM_THREADS": "1", "SEED": "7"} and prep.env == {
        "OMP_NUM_THREADS": "1"
    }
    assert sweep.max_concurrent == 4 and post.max_concurrent is None


def test_steps_come_after_those_they_wait_for(tmp_path: Path) -> None:
    text = (
        "name: s\nsteps:\n  last: {command: [c], after: [mid, first]}\n"
        "  mid: {command: [b], after: first}\n  first: {command: [a]}\n  free: {command: [d]}\n"
    )
    study = load_study(write(tmp_path, text))
    assert [s.name for s in study.steps] == ["first", "mid", "last", "free"]


def test_a_study_can_name_its_backend_and_profile(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, SIMPLEST), overrides=["backend=local", "profile=big"])
    assert study.backend == "local" and study.profile == "big"


STEP = "name: s\nsteps:\n"


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("command: [a]\n", "name", "add e.g. `name: grid`"),
        ("name: a b\ncommand: [a]\n", "name", "letters, digits"),
        ("name: s\ncommand: [a]\nparamters: {a: [1]}\n", "paramters", "did you mean 'parameters'"),
        ("name: s\ncommand: [a]\nshell: b\n", "command", "gives both command: and shell:"),
        ("name: s\nparameters: {a: [1]}\n", "command", "has neither command: and shell:"),
        ("name: s\ncommand: python3 run.py\n", "command", "(for a shell line, use shell:)"),
        ("name: s\ncommand: [run, --n, 10]\n", "command[2]", 'quote it ("10")'),
        ("name: s\ncommand: []\n", "command", "expected an argv list"),
        ("name: s\nshell: [a]\n", "shell", "a shell command line (a string)"),
        ("name: s\ncommand: [a]\nparameters: {}\n", "parameters", "remove `parameters`"),
        ("name: s\ncommand: [a]\nparameters: [1, 2]\n", "parameters", "one of grid:, zip:"),
        ("name: s\ncommand: [a]\nparameters: {a: []}\n", "parameters.a", "has no values"),
        ("name: s\ncommand: [a]\nparameters: {a: 1}\n", "parameters.a", "for one value: [1]"),
        ("name: s\ncommand: [a]\nparameters: {a b: [1]}\n", "parameters.a b", "cannot name"),
        ("name: s\ncommand: [a]\nparameters: {a: [null]}\n", "parameters.a", "'none'"),
        (
            "name: s\ncommand: [a]\nparameters: {grid: {a: [1]}, b: [2]}\n",
            "parameters",
            "put the parameters inside it (e.g. parameters.grid.NAME)",
        ),
        (
            "name: s\ncommand: [a]\nparameters: {zip: {a: [1], b: [1, 2]}}\n",
            "parameters.zip",
            "a has 1, b has 2",
        ),
        ("name: s\ncommand: [a]\nparameters: {zip: [1]}\n", "parameters.zip", "expected a mapping"),
        (
            "name: s\ncommand: [a]\nparameters: {random: {n: 3, a: [1]}}\n",
            "parameters.random",
            "needs seed",
        ),
        (
            "name: s\ncommand: [a]\nparameters: {random: {n: 3, seed: 1, a: {normal: [0, 1]}}}\n",
            "parameters.random.a",
            "{uniform: [lo, hi]}, {loguniform: [lo, hi]}, {randint: [lo, hi]}",
        ),
        (
            "name: s\ncommand: [a]\nparameters: {random: {n: 3, seed: 1, a: {uniform: [2, 1]}}}\n",
            "parameters.random.a.uniform",
            "needs lo < hi",
        ),
        (
            "name: s\ncommand: [a]\nparameters: {random: {n: 0, seed: 1, a: [1]}}\n",
            "parameters.random",
            "draw from 1 to 1,000,000 points",
        ),
        (
            "name: s\ncommand: [a]\nparameters: {points: [{a: 1}, {b: 2}]}\n",
            "parameters.points[1]",
            "every point names the same parameters",
        ),
        ("name: s\ncommand: [a]\nparameters: {csv: no.csv}\n", "parameters.csv", "no.csv"),
        (
            "name: s\ncommand: [a, '{c}']\nparameters: {a: [1]}\n",
            "command[1]",
            "unknown parameter {c}",
        ),
        ("name: s\nshell: echo {c}\n", "shell", "unknown parameter {c}"),
        ("name: s\ncommand: [a, '{a!r}']\nparameters: {a: [1]}\n", "command[1]", "conversions"),
        ("name: s\ncommand: [a]\nresources: {cors: 2}\n", "resources.cors", "did you mean 'cores'"),
        ("name: s\ncommand: [a]\nresources: {memory: lots}\n", "resources.memory", "memory"),
        (
            "name: s\ncommand: [a]\nresources: {tasks: 2, tasks_per_node: 2}\n",
            "resources.tasks",
            "not both",
        ),
        ("name: s\ncommand: [a]\nresources: [1]\n", "resources", "must be a mapping"),
        ("name: s\ncommand: [a]\nenv: {1X: a}\n", "env.1X", "not an environment variable name"),
        ("name: s\ncommand: [a]\nenv: {X: [a]}\n", "env.X", "a string or a number"),
        ("name: s\ncommand: [a]\nmax_concurrent: 0\n", "max_concurrent", "from 1 to"),
        ("name: s\ncommand: [a]\nbackend: slrum\n", "backend", "did you mean 'slurm'"),
        ("name: s\ncommand: [a]\nsteps: {x: {command: [a]}}\n", "command", "move command:"),
        ("name: s\nsteps: []\n", "steps", "a mapping of step names"),
        (STEP + "  a.b: {command: [a]}\n", "steps.a.b", "cannot name a step"),
        (STEP + "  a: [x]\n", "steps.a", "expected a mapping with command:"),
        (STEP + "  a: {command: [x], aftr: b}\n", "steps.a.aftr", "did you mean 'after'"),
        (STEP + "  a: {command: [x], after: bb}\n  b: {command: [y]}\n", "steps.a.after", "'b'"),
        (
            STEP + "  a: {command: [x], after: b}\n  b: {command: [y], after: {a: all}}\n",
            "steps.a.after",
            "loop (a -> b -> a)",
        ),
        (STEP + "  a: {command: [x], after: a}\n", "steps.a.after", "loop (a -> a)"),
        (
            STEP + "  a: {command: [x], parameters: {p: [1, 2]}}\n"
            "  b: {command: [y], parameters: {p: [1, 2, 3]}, after: {a: each}}\n",
            "steps.b.after.a",
            "same points (b has 3, a 2); give b `parameters: a`, or wait for all of it",
        ),
        (
            STEP + "  a: {command: [x], parameters: {p: [1, 2]}}\n"
            "  b: {command: [y], after: {a: each}}\n",
            "steps.b.after.a",
            "same points",
        ),
        (
            STEP + "  a: {command: [x]}\n  b: {command: [y], after: {a: every}}\n",
            "steps.b.after.a",
            "expected each",
        ),
        (STEP + "  a: {command: [x], after: []}\n", "steps.a.after", "a list of step names"),
        (STEP + "  a: {command: [x], parameters: c}\n", "steps.a.parameters", "names no step"),
        (
            STEP + "  a: {command: [x], parameters: b}\n  b: {command: [y], parameters: a}\n",
            "steps.b.parameters",
            "parameters name each other in a loop (a -> b -> a)",
        ),
        (
            STEP + "  a: {command: [x], resources: {memory: 1G, memory_per_core: 1G}}\n",
            "steps.a.resources.memory_per_core",
            "not both",
        ),
    ],
)
def test_every_error_names_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, key: str, hint: str
) -> None:
    message = refused(tmp_path, text)
    assert f"study.yaml: {key}: " in message
    assert hint in message


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("- a\n- b\n", "a study file is a mapping"),
        ("name: s\n  bad: [\n", "invalid YAML"),
        ("name: s\nname: t\ncommand: [a]\n", "given twice"),
    ],
)
def test_a_file_that_is_no_study_says_so(tmp_path: Path, text: str, hint: str) -> None:
    assert hint in refused(tmp_path, text)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_study(tmp_path / "nope.yaml")


def test_a_format_spec_that_does_not_fit_a_later_point_names_it(tmp_path: Path) -> None:
    text = "name: s\ncommand: [run, '{a:d}']\nparameters: {a: [1, 2.5]}\n"
    step = load_study(write(tmp_path, text)).steps[0]
    assert step.points[0].command == ("run", "1")
    with pytest.raises(
        ConfigError, match=r"study\.yaml: command\[1\]: .*\(point 1: \{'a': 2\.5\}\)"
    ):
        step.points[1]


def test_a_million_points_load_without_rendering_each(tmp_path: Path) -> None:
    values = ", ".join(str(i) for i in range(1000))
    path = write(
        tmp_path,
        f"name: s\ncommand: [run, '{{a}}', '{{b}}']\n"
        f"parameters: {{a: [{values}], b: [{values}]}}\n",
    )
    start = time.monotonic()
    step = load_study(path).steps[0]
    assert len(step.points) == 1_000_000
    assert step.points[-1].command == ("run", "999", "999")
    assert time.monotonic() - start < 30
    too_many = f"{values}, 1000"
    path.write_text(f"name: s\ncommand: [run]\nparameters: {{a: [{too_many}], b: [{values}]}}\n")
    with pytest.raises(ConfigError, match="1,001,000 points; a sweep has at most 1,000,000"):
        load_study(path)


def test_describe_says_what_would_run(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, PIPELINE))
    data = describe(study, first=2)
    assert data["name"] == "pipeline" and data["output"] == str(tmp_path / "pipeline")
    sweep = data["steps"][1]
    assert sweep["name"] == "sweep" and sweep["points"] == 6 and sweep["parameters"] == ["a", "b"]
    assert sweep["commands"] == [
        "python3 simulate.py --a 1 --b x",
        "python3 simulate.py --a 1 --b y",
    ]
    assert sweep["after"] == [{"step": "prep", "kind": "all"}]
    assert yaml.safe_load(yaml.safe_dump(data)) == data  # plain data (JSON/YAML)
    text = describe_text(study, first=2).splitlines()
    assert "step sweep: 6 points (a, b), after all of prep, at most 4 at once" in text
    assert "step post: 6 points (a, b), after sweep (point by point)" in text
    assert "  ... 4 more" in text
    assert "step aggregate: 1 point, after all of post, all of prep" in text


# Garbage at every key: a ConfigError, never another exception.

GARBAGE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["{a}", "{", "a.b", "each", "all", "prep", "grid", "1G", "1h", "-1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = [
    ["name"],
    ["output"],
    ["backend"],
    ["profile"],
    ["resources"],
    ["resources", "cores"],
    ["resources", "memory"],
    ["env"],
    ["env", "X"],
    ["max_concurrent"],
    ["steps"],
    ["steps", "sweep"],
    ["steps", "sweep", "command"],
    ["steps", "sweep", "shell"],
    ["steps", "sweep", "parameters"],
    ["steps", "sweep", "parameters", "grid"],
    ["steps", "sweep", "parameters", "random"],
    ["steps", "sweep", "parameters", "points"],
    ["steps", "sweep", "parameters", "zip"],
    ["steps", "sweep", "parameters", "csv"],
    ["steps", "sweep", "after"],
    ["steps", "sweep", "after", "prep"],
    ["steps", "sweep", "resources"],
    ["steps", "sweep", "max_concurrent"],
    ["steps", "post", "parameters"],
    ["steps", "post", "env"],
]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(KEYS), value=GARBAGE)
def test_garbage_at_any_key_is_a_config_error(tmp_path: Path, key: list[str], value: Any) -> None:
    data = yaml.safe_load(PIPELINE)
    node = data
    for part in key[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[key[-1]] = value
    path = tmp_path / "study.yaml"
    try:
        path.write_text(yaml.safe_dump(data))
    except (ValueError, yaml.YAMLError):
        return
    try:
        load_study(path)
    except ConfigError as exc:
        assert "study.yaml" in str(exc)
