"""``jobfleet submit``'s environment options: the configuration's set-up first, then the
command line's, in the script it would submit (--dry-run); bad values exit 2 naming them."""

from __future__ import annotations

import os
from pathlib import Path

from support.cli import jf


def test_config_first_then_the_command_line(jf_home: Path) -> None:
    config = Path(os.environ["JOBFLEET_CONFIG"])
    config.write_text(
        config.read_text() + "environment:\n"
        "  modules: [from-config/1]\n"
        "  setup: ['echo config-prologue']\n"
        "  epilogue: ['echo config-epilogue']\n"
        "  env_files: [config.sh]\n"
    )
    script = jf(
        "submit", "--dry-run",
        "--module", "cli/2", "--module", "cli/3",
        "--prologue", "echo cli-prologue",
        "--epilogue", "echo cli-epilogue",
        "--env-file", "cli.sh",
        "--scratch", "--keep-scratch",
        "--", "true",
    ).stdout  # fmt: skip
    order = [
        "config.sh ]",
        "cli.sh ]",
        "module load from-config/1 ",
        "module load cli/2 ",
        "module load cli/3 ",
        "mktemp -d",
        "echo config-prologue",
        "echo cli-prologue",
        "( 'true' )",
        "echo config-epilogue",
        "echo cli-epilogue",
        "scratch directory kept",
    ]
    at = [script.index(text) for text in order]
    assert at == sorted(at), script
    assert 'rm -rf -- "$__jf_scratch"' not in script  # kept


def test_bad_module_name_exits_2_naming_it(jf_home: Path) -> None:
    proc = jf("submit", "--dry-run", "--module", "gcc 12", "--", "true", expect=2)
    assert "environment.modules[0]" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_prologue_line_that_is_not_shell_exits_2_naming_it(jf_home: Path) -> None:
    proc = jf(
        "submit", "--dry-run", "--prologue", "true", "--prologue", "if true; then",
        "--", "true",
        expect=2,
    )  # fmt: skip
    assert "environment.prologue[1]" in proc.stderr
    assert "syntax error" in proc.stderr


def _with_config(text: str) -> None:
    config = Path(os.environ["JOBFLEET_CONFIG"])
    config.write_text(config.read_text() + text)


def test_scratch_flags_layer_over_the_configuration(jf_home: Path) -> None:
    _with_config("environment:\n  scratch: /big/$USER\n  keep_scratch: true\n")

    def dry(*flags: str) -> str:
        return jf("submit", "--dry-run", *flags, "--", "true").stdout

    configured = dry()
    assert '__jf_base=/big/"${USER}"' in configured and "scratch directory kept" in configured
    # --scratch says "yes": the configured directory stays, not ${TMPDIR:-/tmp}.
    assert '__jf_base=/big/"${USER}"' in dry("--scratch")
    assert "mktemp" not in dry("--no-scratch")
    unkept = dry("--no-keep-scratch")
    assert 'rm -rf -- "$__jf_scratch"' in unkept and "scratch directory kept" not in unkept


def test_scratch_flag_without_a_configured_directory(jf_home: Path) -> None:
    script = jf("submit", "--dry-run", "--scratch", "--keep-scratch", "--", "true").stdout
    assert '__jf_base="${TMPDIR:-/tmp}"' in script and "scratch directory kept" in script
    assert "mktemp" not in jf("submit", "--dry-run", "--", "true").stdout
