"""The hot-path JSON helper: orjson's speed, never a stricter meaning than the standard library."""

from __future__ import annotations

import json
import math

import pytest

from ponder.core import fastjson


@pytest.mark.parametrize("obj", [
    {"a": 1, "b": [1.5, None, True], "c": "naïve ✓"},
    {"big": 2**70},  # beyond 64 bits: orjson refuses, json does not
    {1: "int key"},  # non-string key: orjson refuses, json turns it into "1"
])
def test_dumps_means_what_json_means(obj):
    assert json.loads(fastjson.dumps(obj)) == json.loads(json.dumps(obj))


def test_dumps_writes_strict_json_for_nan():
    out = fastjson.dumps({"x": float("nan"), "y": math.inf})
    assert json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard token {c}")) == {"x": None, "y": None}


def test_loads_accepts_what_json_accepts_and_rejects_with_value_error():
    assert fastjson.loads(b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert fastjson.loads('{"n": NaN}')["n"] != fastjson.loads('{"n": NaN}')["n"]  # json's NaN extension
    assert fastjson.loads('{"big": 123456789012345678901234567890}')["big"] == pytest.approx(1.2345678901234568e29)
    with pytest.raises(ValueError):
        fastjson.loads(b"data: not json")
