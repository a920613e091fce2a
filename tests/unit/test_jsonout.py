"""The CLI's JSON: the same data as json.dumps, laid out for reading."""

from __future__ import annotations

import doctest
import json
import math

import pytest

from jobfleet.cli import jsonout

SAMPLES = [
    None,
    0,
    -2.5,
    'é "quoted" \n \x00',
    [],
    {},
    [1, [2, [3, [4, {"five": [6]}]]]],
    {"a": {"b": {"c": {"d": [1, 2]}}}, "e": []},
    [{"id": "7", "elements": {str(i): {"state": "failed", "exit_code": i} for i in range(3)}}],
    {1: "int key", 2.5: "float key", None: "none key", False: "bool key"},
    (1, (2, 3)),
]


def test_doctests() -> None:
    result = doctest.testmod(jsonout)
    assert result.attempted >= 2 and result.failed == 0


@pytest.mark.parametrize("data", SAMPLES, ids=[f"sample{i}" for i in range(len(SAMPLES))])
def test_same_data_as_json_dumps(data: object) -> None:
    assert json.loads(jsonout.dumps(data)) == json.loads(json.dumps(data))


def test_outer_levels_one_item_a_line_deeper_ones_compact() -> None:
    text = jsonout.dumps([{"elements": {"0": {"state": "completed", "when": [1, 2]}}}])
    assert '      "0": {"state": "completed", "when": [1, 2]}' in text.splitlines()
    assert text.count("\n") == 6


def test_ascii_only_and_nan_as_json_dumps_writes_them() -> None:
    assert jsonout.dumps(["é"]) == '[\n  "\\u00e9"\n]'
    assert jsonout.dumps({"x": math.inf}) == '{\n  "x": Infinity\n}'


def test_a_key_json_cannot_write_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="keys must be"):
        jsonout.dumps({(1, 2): "tuple key"})
