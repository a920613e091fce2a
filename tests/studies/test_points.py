"""One point (jobfleet.studies.points): its command, its identity and its directory."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from jobfleet.errors import SpecError
from jobfleet.studies.points import (
    MAX_DIRNAME,
    point_dirname,
    point_key,
    render_argv,
    render_shell,
    text,
)

# render_argv


def test_each_template_element_is_one_argv_element() -> None:
    params = {"a": 3, "name": "two words; rm -rf ~", "q": 'it\'s "$HOME"'}
    argv = render_argv(["prog", "--a", "{a}", "--name={name}", "{q}", "lit"], params)
    assert argv == ["prog", "--a", "3", "--name=two words; rm -rf ~", 'it\'s "$HOME"', "lit"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("x", "x"),
        ("", ""),
        (7, "7"),
        (-7, "-7"),
        (10**30, "1" + "0" * 30),
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (2.0, "2.0"),
        (1e16, "1e+16"),
        (-0.0, "-0.0"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_values_have_one_text_form(value: object, shown: str) -> None:
    assert text(value) == shown
    assert render_argv(["<{v}>"], {"v": value}) == [f"<{shown}>"]


def test_braces_escape_and_several_placeholders_share_an_element() -> None:
    got = render_argv(["{{a}}={a}", "{a}{b}{a}", "{{{a}}}"], {"a": 1, "b": "x"})
    assert got == ["{a}=1", "1x1", "{1}"]


def test_format_specs_apply_to_numbers_and_to_the_text_of_strings_and_booleans() -> None:
    params = {"lr": 0.001234, "n": 7, "s": "ab", "flag": True}
    got = render_argv(["{lr:.2e}", "{n:03d}", "{lr:.3f}", "{s:>4}", "{flag:<6}|"], params)
    assert got == ["1.23e-03", "007", "0.001", "  ab", "true  |"]


def test_parameters_the_template_does_not_name_are_allowed() -> None:
    assert render_argv(["prog"], {"unused": 1}) == ["prog"]


def test_an_unknown_placeholder_is_named_with_its_element_and_the_parameters() -> None:
    with pytest.raises(SpecError) as info:
        render_argv(["prog", "--out={outdir}/x"], {"a": 1, "b": 2})
    assert str(info.value) == (
        "command[1]: unknown parameter {outdir} in '--out={outdir}/x'; the parameters are: a, b"
    )
    with pytest.raises(SpecError, match=r"the parameters are: \(none\)"):
        render_argv(["{a}"], {})


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("{a.real}", r"\{a.real\} in '\{a.real\}': attribute and index access are not allowed"),
        ("{a[0]}", r"attribute and index access are not allowed"),
        ("{a!r}", r"\{a!r\} in .*conversions \(!r, !s, !a\) are not allowed"),
        ("{a!s:>3}", r"conversions"),
        ("{}", r"\{\} in .*positions are not allowed"),
        ("{0}", r"\{0\} in .*positions are not allowed"),
        ("{a:{b}}", r"a format spec cannot hold another placeholder"),
        ("x{a", r"expected '\}' before end of string \(write \{\{ and \}\} for a literal brace\)"),
        ("x}", r"Single '\}' encountered"),
        ("{a:.3q}", r"\{a:.3q\} in '\{a:.3q\}' cannot format 1: Unknown format code 'q'"),
        ("a\0b", r"NUL character"),
    ],
)
def test_refused_placeholders_say_why(element: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected) as info:
        render_argv(["prog", element], {"a": 1, "b": 2})
    assert info.value.field == "command[1]"


def test_a_string_spec_on_a_string_is_refused_clearly() -> None:
    with pytest.raises(SpecError, match=r"cannot format 'x': Unknown format code 'f'"):
        render_argv(["{s:.3f}"], {"s": "x"})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("prog {a}", r"^command: 'prog \{a\}' is not a list.*use render_shell"),
        ([], r"^command: is empty"),
        (["prog", 3], r"^command\[1\]: 3 is not a string"),
        (None, r"^command: None is not a list"),
    ],
)
def test_the_template_is_a_list_of_strings(template: object, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        render_argv(template, {"a": 1})  # type: ignore[arg-type]


def test_the_parameters_are_checked_when_rendering() -> None:
    with pytest.raises(SpecError, match=r"^a: None has no text form"):
        render_argv(["{a}"], {"a": None})
    with pytest.raises(SpecError, match="cannot name a parameter"):
        render_argv(["x"], {"a.b": 1})
    with pytest.raises(SpecError, match="is not a mapping"):
        render_argv(["x"], [("a", 1)])  # type: ignore[arg-type]


# render_shell


def test_render_shell_quotes_values_and_not_the_template() -> None:
    params = {"name": "it's a $HOME; `x`", "n": 3, "empty": ""}
    line = render_shell("prog --n {n} --name {name} {empty} | tee out-{n}.log", params)
    assert line == ("prog --n 3 --name 'it'\"'\"'s a $HOME; `x`' '' | tee out-3.log")
    words = shlex.split(line.split("|")[0])
    assert words == ["prog", "--n", "3", "--name", "it's a $HOME; `x`", ""]


def test_render_shell_runs_in_a_real_shell_with_each_value_intact(tmp_path: Path) -> None:
    params = {"a": "two  spaces", "b": "$(touch pwned)", "c": "*", "d": "new\nline"}
    line = render_shell("printf '[%s]' {a} {b} {c} {d}", params)
    proc = subprocess.run(
        ["sh", "-c", line], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stdout == "[two  spaces][$(touch pwned)][*][new\nline]"
    assert not (tmp_path / "pwned").exists()


def test_render_shell_follows_the_argv_rules() -> None:
    assert render_shell("echo {x:.1f}", {"x": 0.25}) == "echo 0.2"
    with pytest.raises(SpecError, match=r"^command: unknown parameter \{y\}"):
        render_shell("echo {y}", {"x": 1})
    with pytest.raises(SpecError, match=r"^command: \{x!r\}"):
        render_shell("echo {x!r}", {"x": 1})
    with pytest.raises(SpecError, match="is not a shell command line"):
        render_shell(["echo"], {})  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^command: is empty"):
        render_shell("  ", {})


# point_key


def test_point_key_is_16_hex_characters_and_ignores_the_order_of_the_parameters() -> None:
    key = point_key({"a": 1, "b": "x"}, ["prog", "1"])
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert point_key({"b": "x", "a": 1}, ["prog", "1"]) == key


def test_point_key_has_a_fixed_value() -> None:
    # Written once: a change would make every resumed study redo every point.
    assert point_key({"a": 1, "b": "x"}, ["prog", "1"]) == KEY_A1_BX
    assert point_key({"a": 1}, "prog 1") == KEY_SHELL


KEY_A1_BX = "781803c7f750d4cc"
KEY_SHELL = "a4ba5fd70bdc1d90"


def test_values_of_different_types_are_different_points() -> None:
    argv = ["prog"]
    keys = {point_key({"a": v}, argv) for v in (1, 1.0, "1", True, "true", 0, False, -0.0, 0.0)}
    assert len(keys) == 9


def test_the_command_is_part_of_the_point() -> None:
    params = {"a": 1}
    keys = {
        point_key(params, ["prog", "1"]),
        point_key(params, ["prog", "1", ""]),
        point_key(params, ["prog 1"]),
        point_key(params, "prog 1"),
        point_key(params, ["prog", "2"]),
        point_key({"a": 1, "b": 2}, ["prog", "1"]),
        point_key({}, ["prog", "1"]),
    }
    assert len(keys) == 7


def test_point_key_is_the_same_in_other_processes() -> None:
    code = (
        "from jobfleet.studies.points import point_key; "
        "print(point_key({'a': 1, 'z': 'é', 'f': 0.1, 'b': True}, ['p', '{x}', 'ü']))"
    )
    keys = set()
    for hashseed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        keys.add(proc.stdout.strip())
    assert keys == {point_key({"a": 1, "z": "é", "f": 0.1, "b": True}, ["p", "{x}", "ü"])}


def test_point_key_checks_its_input() -> None:
    with pytest.raises(SpecError, match="is not an argv"):
        point_key({"a": 1}, ["prog", 1])  # type: ignore[list-item]
    with pytest.raises(SpecError, match="is not an argv"):
        point_key({"a": 1}, None)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^a: nan is not a usable value"):
        point_key({"a": float("nan")}, ["prog"])


# point_dirname


def _safe(name: str) -> None:
    assert len(name) <= MAX_DIRNAME
    assert re.fullmatch(r"[0-9]{4,}(-[A-Za-z0-9._+=,~_-]*)?", name), name
    assert "/" not in name and name not in (".", "..")


def test_point_dirname_is_the_index_then_the_parameters() -> None:
    assert point_dirname(7, {"a": 1, "b": "x"}) == "0007-a=1,b=x"
    assert point_dirname(12345, {"lr": 0.001, "fast": True}) == "12345-lr=0.001,fast=true"
    assert point_dirname(0, {}) == "0000"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a/b", "a_b"),
        ("../..", ".._.."),
        ("two words", "two_words"),
        ("tab\there", "tab_here"),
        ("héllo wörld", "h_llo_w_rld"),
        ("日本", "__"),
        ("", ""),
        ("a=b,c", "a_b_c"),
        ("$(x);`y`*?", "__x___y___"),
        ("new\nline", "new_line"),
        (-1.5e-10, "-1.5e-10"),
    ],
)
def test_point_dirname_replaces_unsafe_characters(value: object, shown: str) -> None:
    name = point_dirname(3, {"v": value})
    assert name == f"0003-v={shown}"
    _safe(name)


def test_long_names_are_cut_and_keep_a_digest_that_tells_them_apart() -> None:
    a = point_dirname(1, {"s": "x" * 500 + "a"})
    b = point_dirname(1, {"s": "x" * 500 + "b"})
    for name in (a, b):
        _safe(name)
        assert len(name) == MAX_DIRNAME and name.startswith("0001-s=xxxx")
        assert re.search(r"~[0-9a-f]{8}$", name)
    assert a != b
    assert point_dirname(1, {"s": "x" * 500 + "a"}) == a  # stable
    many = point_dirname(2, {f"p{k}": k for k in range(100)})
    _safe(many)
    assert many.startswith("0002-p0=0,p1=1,")


def test_a_name_that_fits_is_not_cut() -> None:
    value = "y" * (MAX_DIRNAME - len("0001-s="))
    assert point_dirname(1, {"s": value}) == f"0001-s={value}"
    assert "~" in point_dirname(1, {"s": value + "y"})


def test_point_dirnames_can_be_made_on_disk(tmp_path: Path) -> None:
    awkward = ["a/b", "..", ".", "", " ", "x" * 1000, "é" * 300, "\\", "-rf", "*"]
    names = {point_dirname(i, {"v": v}) for i, v in enumerate(awkward)}
    for name in names:
        (tmp_path / name).mkdir()
    assert {p.name for p in tmp_path.iterdir()} == names and len(names) == len(awkward)


def test_point_dirname_checks_its_input() -> None:
    for index in (-1, True, 1.0, "1"):
        with pytest.raises(SpecError, match="is not a point number"):
            point_dirname(index, {})  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"^v: None has no text form"):
        point_dirname(0, {"v": None})
