"""Parameter sweeps (jobfleet.studies.sweeps): their points, their order, their errors."""

from __future__ import annotations

import builtins
import doctest
import itertools
import math
import subprocess
import sys
from pathlib import Path
from random import Random

import pytest

import jobfleet.studies
from jobfleet.errors import SpecError
from jobfleet.studies import points, sweeps
from jobfleet.studies.sweeps import (
    from_csv,
    loguniform,
    product,
    randint,
    random,
    shard,
    uniform,
    zip,
)


@pytest.mark.parametrize("module", [sweeps, points])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_the_package_exports_lazily_and_star_import_keeps_the_builtins() -> None:
    assert jobfleet.studies.product is product
    assert jobfleet.studies.zip is zip and jobfleet.studies.random is random
    assert jobfleet.studies.render_argv is points.render_argv
    namespace: dict[str, object] = {}
    exec("from jobfleet.studies import *", namespace)
    assert "zip" not in namespace and "random" not in namespace
    assert "product" in namespace and "point_key" in namespace
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jobfleet.studies.nope  # noqa: B018


def test_importing_the_package_loads_no_module_of_it() -> None:
    code = "import sys, jobfleet.studies; print(sorted(m for m in sys.modules if 'studies.' in m))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


# product


def test_product_varies_the_first_parameter_slowest() -> None:
    got = product(a=[1, 2], b=["x", "y", "z"], c=[True, False])
    want = [
        {"a": a, "b": b, "c": c}
        for a, b, c in itertools.product([1, 2], ["x", "y", "z"], [True, False])
    ]
    assert got == want
    assert got[:3] == [
        {"a": 1, "b": "x", "c": True},
        {"a": 1, "b": "x", "c": False},
        {"a": 1, "b": "y", "c": True},
    ]
    assert [list(p) for p in got] == [["a", "b", "c"]] * 12  # keys in the order given


def test_product_takes_tuples_and_ranges_and_keeps_value_types() -> None:
    got = product(n=range(2), v=(1, 1.0, "1"))
    assert [(p["n"], p["v"], type(p["v"])) for p in got] == [
        (0, 1, int),
        (0, 1.0, float),
        (0, "1", str),
        (1, 1, int),
        (1, 1.0, float),
        (1, "1", str),
    ]


def test_product_of_nothing_is_one_point_without_parameters() -> None:
    assert product() == [{}]


def test_product_names_the_parameter_without_values() -> None:
    with pytest.raises(SpecError, match=r"^b: has no values: every parameter of product\(\)"):
        product(a=[1], b=[], c=[2])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({1, 2}, "a set has no fixed order"),
        ("abc", "is not a list of values"),
        ({"x": 1}, "is not a list of values"),
        (5, "is not a list of values"),
        (iter([1]), "is not a list of values"),
    ],
)
def test_product_wants_lists(given: object, expected: str) -> None:
    with pytest.raises(SpecError, match=expected) as info:
        product(a=[1], b=given)  # type: ignore[arg-type]
    assert info.value.field == "b"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, r"None has no text form.*write a string such as 'none'"),
        ([1], r"\[1\] is a list: a parameter value is a string, an integer, a float or a"),
        (float("nan"), "NaN and the infinities are refused"),
        (float("-inf"), "NaN and the infinities are refused"),
        ("a\0b", "NUL character"),
        (10**400, "too large an integer"),
    ],
)
def test_values_are_checked_naming_the_parameter(value: object, expected: str) -> None:
    with pytest.raises(SpecError, match=expected) as info:
        product(ok=[1], bad=[1, value])
    assert info.value.field == "bad"


@pytest.mark.parametrize("name", ["a b", "1a", "a.b", "a[0]", "", "é", "a=b"])
def test_names_are_checked(name: str) -> None:
    with pytest.raises(SpecError, match="cannot name a parameter: use letters, digits, _ and -"):
        product(**{name: [1]})


def test_names_may_hold_hyphens_and_underscores() -> None:
    assert product(**{"learning-rate": [0.1], "_x2": [1]}) == [{"learning-rate": 0.1, "_x2": 1}]


def test_product_refuses_more_than_the_most_points() -> None:
    with pytest.raises(SpecError, match=r"a \(1000\) x b \(1000\) x c \(2\) make 2,000,000 points"):
        product(a=range(1000), b=range(1000), c=range(2))


# zip


def test_zip_pairs_the_ith_values() -> None:
    assert zip(a=[1, 2, 3], b=("x", "y", "z")) == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 3, "b": "z"},
    ]
    assert zip(only=[0.5]) == [{"only": 0.5}]


def test_zip_names_each_parameter_and_its_length() -> None:
    with pytest.raises(SpecError, match=r"\(a has 3, b has 2, c has 3\)") as info:
        zip(a=[1, 2, 3], b=[1, 2], c=[1, 2, 3])
    assert info.value.field == "zip"


def test_zip_refuses_empty_lists_and_nothing() -> None:
    with pytest.raises(SpecError, match=r"^b: has no values: every parameter of zip\(\)"):
        zip(a=[1], b=[])
    with pytest.raises(SpecError, match="needs at least one parameter"):
        zip()


# random

#: Drawn once (Python 3.11) and written here: a change of any draw is a regression, since
#: a resumed study must find the same points again.
SEED_2024 = [
    {"x": -0.059818563137858716, "n": 93, "kind": "c", "lr": 0.00016406102991514278},
    {"x": 0.7745965380000301, "n": 52, "kind": "c", "lr": 0.010826884346390165},
    {"x": 0.06636095412323839, "n": 81, "kind": "c", "lr": 0.0009844768951962645},
    {"x": -0.16825579811141922, "n": 93, "kind": "c", "lr": 0.07128507174067071},
]


def _drawn(n: int, seed: int) -> list[dict[str, object]]:
    return random(
        n,
        seed=seed,
        x=uniform(-1, 1),
        n=randint(0, 100),
        kind=["a", "b", "c"],
        lr=loguniform(1e-5, 1e-1),
    )


def test_random_draws_the_same_points_for_the_same_seed() -> None:
    got = _drawn(4, 2024)
    # uniform, randint and choices are exact; loguniform goes through the C library's
    # exp and log (its last bit may differ on another platform).
    assert [{k: v for k, v in p.items() if k != "lr"} for p in got] == [
        {k: v for k, v in p.items() if k != "lr"} for p in SEED_2024
    ]
    for point, want in builtins.zip(got, SEED_2024, strict=True):
        assert point["lr"] == pytest.approx(want["lr"], rel=1e-12)
    assert random(3, seed=0, flag=[True, False], v=(1, 1.0, "1")) == [
        {"flag": False, "v": 1.0},
        {"flag": True, "v": 1.0},
        {"flag": False, "v": 1.0},
    ]
    assert random(2, seed=2**70, x=randint(-(10**20), 10**20)) == [
        {"x": 28206599259369767684},
        {"x": 84983235998688286570},
    ]


def test_random_is_the_same_in_another_process() -> None:
    code = (
        "from jobfleet.studies.sweeps import *; "
        "print(random(5, seed=9, s=['p', 'q', 'r', 's'], u=uniform(0, 10), i=randint(1, 3)))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": hashseed},
            check=True,
        ).stdout
        for hashseed in ("0", "1", "12345")
    }
    here = random(5, seed=9, s=["p", "q", "r", "s"], u=uniform(0, 10), i=randint(1, 3))
    assert runs == {f"{here!r}\n"}


def test_random_grows_by_appending_and_differs_by_seed() -> None:
    assert _drawn(10, 5)[:4] == _drawn(4, 5)
    assert _drawn(4, 5) != _drawn(4, 6)


def test_random_stays_within_its_bounds_and_reaches_both_ends_of_randint() -> None:
    drawn = random(
        2000, seed=1, u=uniform(2, 3), g=loguniform(1e-3, 1e3), i=randint(-1, 1), c=[1, "1"]
    )
    assert all(2 <= p["u"] <= 3 for p in drawn)  # type: ignore[operator]
    assert all(1e-3 <= p["g"] <= 1e3 for p in drawn)  # type: ignore[operator]
    assert {p["i"] for p in drawn} == {-1, 0, 1}
    assert {(type(p["c"]), p["c"]) for p in drawn} == {(int, 1), (str, "1")}
    logs = [math.log10(p["g"]) for p in drawn]  # type: ignore[arg-type]
    assert sum(1 for x in logs if x < 0) == pytest.approx(1000, abs=100)  # uniform in log


def test_random_needs_its_seed_as_a_keyword() -> None:
    with pytest.raises(TypeError, match="seed"):
        random(3, x=[1, 2])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        random(3, 1, x=[1, 2])  # type: ignore[misc]


@pytest.mark.parametrize(
    ("n", "seed", "expected"),
    [
        (0, 1, r"n = 0: draw from 1 to 1,000,000 points"),
        (2_000_000, 1, r"n = 2000000"),
        (True, 1, r"n = True"),
        (2.0, 1, r"n = 2.0"),
        (2, -5, r"seed = -5: the seed is an integer, 0 or more"),
        (2, 1.5, r"seed = 1.5"),
        (2, True, r"seed = True"),
        (2, "abc", r"seed = 'abc'"),
        (2, None, r"seed = None"),
    ],
)
def test_random_checks_n_and_seed(n: object, seed: object, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        random(n, seed=seed, x=[1])  # type: ignore[arg-type]


def test_random_checks_its_parameters() -> None:
    with pytest.raises(SpecError, match="needs at least one parameter"):
        random(3, seed=1)
    with pytest.raises(SpecError, match=r"^c: has no values: every parameter of random\(\)"):
        random(3, seed=1, c=[])
    with pytest.raises(SpecError, match=r"^c: 0.5 is not a list of values"):
        random(3, seed=1, c=0.5)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="cannot name a parameter"):
        random(3, seed=1, **{"a b": uniform(0, 1)})


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: uniform(1, 1), r"^uniform\(lo, hi\): needs lo < hi \(got 1.0, 1.0\)"),
        (lambda: uniform(2, 1), r"needs lo < hi"),
        (lambda: uniform(0, float("inf")), r"inf is not a finite number"),
        (lambda: uniform(-1e308, 1e308), r"needs lo < hi"),
        (lambda: uniform("0", 1), r"'0' is not a number"),
        (lambda: uniform(False, 1), r"False is not a number"),
        (lambda: loguniform(0, 1), r"^loguniform\(lo, hi\): needs 0 < lo < hi"),
        (lambda: loguniform(-1, 1), r"needs 0 < lo < hi"),
        (lambda: randint(3, 2), r"^randint\(lo, hi\): needs lo <= hi \(got 3, 2\)"),
        (lambda: randint(0, 2.5), r"2.5 is not an integer"),
        (lambda: randint(True, 2), r"True is not an integer"),
        (lambda: randint(0, 10**400), r"too large an integer"),
    ],
)
def test_distributions_check_their_bounds(make: object, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        make()  # type: ignore[operator]


def test_distributions_are_frozen_values() -> None:
    assert uniform(0, 1) == uniform(0, 1) and randint(1, 2) != randint(1, 3)
    with pytest.raises(AttributeError):
        uniform(0, 1).lo = 5  # type: ignore[misc]
    assert randint(4, 4).draw(Random(0)) == 4


# shard


@pytest.mark.parametrize("length", [0, 1, 2, 3, 7, 10, 11, 100, 101])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 13, 150])
def test_shards_cover_every_item_once_in_order_and_near_equal(length: int, n: int) -> None:
    items = [f"item{k}" for k in range(length)]
    shards = [shard(items, i, n) for i in range(n)]
    assert [x for s in shards for x in s] == items
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger shards first


def test_shard_takes_any_sequence() -> None:
    assert shard(range(10), 1, 3) == [4, 5, 6]
    assert shard(("a", "b"), 1, 2) == ["b"]
    assert shard([1], 2, 3) == []


@pytest.mark.parametrize(
    ("i", "n", "expected"),
    [
        (0, 0, r"^shard: n = 0: the number of shards is 1 or more"),
        (0, -1, r"n = -1"),
        (0, True, r"n = True"),
        (3, 3, r"^shard: i = 3: with 3 shards, i is 0 to 2"),
        (-1, 3, r"i = -1"),
        (1.0, 3, r"i = 1.0"),
    ],
)
def test_shard_checks_i_and_n(i: object, n: object, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        shard([1, 2, 3], i, n)  # type: ignore[arg-type]


def test_shard_wants_a_sequence() -> None:
    with pytest.raises(SpecError, match="is not a list"):
        shard(iter([1, 2]), 0, 1)  # type: ignore[arg-type]


# from_csv


def _csv(tmp_path: Path, text: str | bytes, name: str = "points.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def test_csv_rows_are_points_with_ints_floats_and_text(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,b,c\n1,0.5,x\n-7,1e-3,two words\n42,2.,\n")
    assert from_csv(path) == [
        {"a": 1, "b": 0.5, "c": "x"},
        {"a": -7, "b": 0.001, "c": "two words"},
        {"a": 42, "b": 2.0, "c": ""},
    ]
    assert from_csv(str(path)) == from_csv(path)


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("0", 0),
        ("123", 123),
        ("-5", -5),
        ("007", "007"),  # an identifier, not the number 7
        ("+7", "+7"),
        ("-0", "-0"),
        ("1_000", "1_000"),
        (" 1", " 1"),
        ("1 ", "1 "),
        ("0x10", "0x10"),
        ("1" * 301, "1" * 301),
        ("1.5", 1.5),
        (".5", 0.5),
        ("-2.5e3", -2500.0),
        ("1E5", 100000.0),
        ("1e999", "1e999"),  # would be infinite
        ("nan", "nan"),
        ("inf", "inf"),
        ("Infinity", "Infinity"),
        ("true", "true"),
        ("1.2.3", "1.2.3"),
        ("e5", "e5"),
        (".", "."),
        ("", ""),
    ],
)
def test_csv_cells_become_numbers_only_when_written_as_numbers(
    tmp_path: Path, cell: str, value: object
) -> None:
    got = from_csv(_csv(tmp_path, f'v\n"{cell}"\n'))[0]["v"]
    assert (type(got), got) == (type(value), value)


def test_csv_quoting_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    text = '\ufeffname,note\r\n"a,b","line 1\nline 2"\r\n\r\n"say ""hi""",x\r\n'
    assert from_csv(_csv(tmp_path, text)) == [
        {"name": "a,b", "note": "line 1\nline 2"},
        {"name": 'say "hi"', "note": "x"},
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b\n1,2\n3\n", r"points.csv: line 3: 1 field, but the header names 2 \(a, b\)$"),
        ("a,b\n1,2\n\n3,4,5\n", r"points.csv: line 4: 3 fields, but the header names 2"),
        ("", r"points.csv: line 1: the file is empty"),
        ("\na,b\n1,2\n", r"points.csv: line 1: is empty: the first line must name the parameters"),
        ("a,,b\n1,2,3\n", r"points.csv: line 1: column 2 has no name"),
        ("a,b,a\n1,2,3\n", r"points.csv: line 1: column 'a' appears twice \(columns 1 and 3\)"),
        ("a, b\n1,2\n", r"points.csv: line 1: ' b' cannot name .*a space after a comma"),
        ("a,b\n", r"points.csv: has a header but no rows"),
        ('a,b\n1,"2\n3,4\n', r"points.csv: line 2: unexpected end of data"),
        ('a,b\n1,2\n3,"4"x\n', r"points.csv: line 3: ',' expected after '\"'"),
        ("a,b\n1,x\0y\n", r"points.csv: line 2: b: 'x\\x00y' holds a NUL character"),
    ],
)
def test_csv_errors_name_the_file_and_the_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected) as info:
        from_csv(_csv(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path / "points.csv"))


def test_csv_must_be_utf8(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"points.csv: is not UTF-8 text: save it as UTF-8"):
        from_csv(_csv(tmp_path, "name\ncaf\xe9\n".encode("latin-1")))


def test_csv_must_be_a_readable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"missing.csv: cannot be read: No such file"):
        from_csv(tmp_path / "missing.csv")
    with pytest.raises(SpecError, match=r": is not a file"):
        from_csv(tmp_path)


def test_csv_files_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _csv(tmp_path, "a\n" + "".join(f"{k}\n" for k in range(10)))
    monkeypatch.setattr(sweeps, "MAX_CSV_BYTES", 20)
    with pytest.raises(SpecError, match=r"points.csv: is 22 bytes; a CSV of points is at most 20"):
        from_csv(path)
    monkeypatch.setattr(sweeps, "MAX_CSV_BYTES", 10**6)
    monkeypatch.setattr(sweeps, "MAX_POINTS", 10)
    assert len(from_csv(path)) == 10
    path.write_text("a\n" + "".join(f"{k}\n" for k in range(11)))
    with pytest.raises(SpecError, match=r"points.csv: line 12: more than 10 rows"):
        from_csv(path)


def test_the_real_bounds() -> None:
    assert sweeps.MAX_CSV_BYTES == 100 * 2**20 and sweeps.MAX_POINTS == 1_000_000
