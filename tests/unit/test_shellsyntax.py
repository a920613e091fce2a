"""Tests for jobfleet.shellsyntax: prologue and epilogue lines that are not complete shell
are refused before submission, naming the field and quoting bash; good lines pass."""

from __future__ import annotations

import shutil

import pytest

from jobfleet.environment import Environment
from jobfleet.errors import SpecError
from jobfleet.shellsyntax import check_syntax, syntax_problem

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("if true; then", "syntax error: unexpected end of file"),
        ("echo )", "syntax error near unexpected token `)'"),
        ("echo 'unclosed", "unexpected EOF while looking for matching"),
        ("cat <<EOF", "here-document at line 1 delimited by end-of-file"),
        ("for f in *; do echo $f", "syntax error"),
    ],
)
@pytest.mark.parametrize("field", ["prologue", "epilogue"])
def test_a_line_bash_cannot_parse_is_refused_naming_it(field: str, line: str, said: str) -> None:
    env = Environment.of(**{field: ["true", line]})
    with pytest.raises(SpecError) as err:
        check_syntax(env)
    assert err.value.field == f"environment.{field}[1]"
    assert said in err.value.message
    assert "bash -n" in err.value.message and "here-document" in err.value.message
    assert "/bash:" not in err.value.message  # bash's own path is not shown


@pytest.mark.parametrize(
    "line",
    [
        "echo ok # a comment",
        "sleep 1 &",
        'for f in *; do echo "$f"; done',
        "ls !(core.*)",  # extglob, which an earlier `shopt -s extglob` may turn on
        'export STAGE=$TMPDIR/in; cd "$STAGE" || exit 1',
        'f() { echo "$1"; }',
    ],
)
def test_complete_lines_pass(line: str) -> None:
    assert syntax_problem(line) is None
    check_syntax(Environment.of(prologue=[line], epilogue=[line]))


def test_bash_env_is_not_read(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASH_ENV", "/nonexistent/refused")
    assert syntax_problem("echo bash-env-check") is None
