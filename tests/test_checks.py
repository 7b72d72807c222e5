"""Tests for fastslow_lib.config.checks: the library's one set of plain-value argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastslow_lib.config.checks import (
    check_bool,
    check_int,
    check_int_fields,
    check_number,
    check_optional_int,
    check_seed,
)


def test_check_int_returns_a_plain_int():
    assert check_int(3, "n") == 3
    assert check_int(0, "n", minimum=0) == 0
    assert check_int(-5, "n", minimum=None) == -5
    value = check_int(np.int64(7), "n", allow_numpy=True)
    assert value == 7 and type(value) is int


@pytest.mark.parametrize(
    ("value", "options", "error", "message"),
    [
        (True, {}, TypeError, r"n must be an int, got bool True"),
        (2.0, {}, TypeError, r"n must be an int, got float 2\.0"),
        ("3", {}, TypeError, r"n must be an int, got str '3'"),
        (np.int64(3), {}, TypeError, r"n must be an int, got int64"),
        (np.bool_(True), {"allow_numpy": True}, TypeError, r"n must be an int, got bool"),
        (2.0, {"type_error": ValueError}, ValueError, r"n must be an int, got float"),
        (0, {}, ValueError, r"n must be at least 1, got 0"),
        (1, {"minimum": 2}, ValueError, r"n must be at least 2, got 1"),
        (0, {"type_error": TypeError}, ValueError, r"n must be at least 1"),
        (5, {"maximum": 4}, ValueError, r"n must be between 1 and 4, got 5"),
        (0, {"maximum": 4}, ValueError, r"n must be between 1 and 4, got 0"),
        (5, {"minimum": None, "maximum": 4}, ValueError, r"n must be at most 4, got 5"),
    ],
)
def test_check_int_rejects(value, options, error, message):
    with pytest.raises(error, match=message):
        check_int(value, "n", **options)


def test_check_optional_int():
    assert check_optional_int(None, "max_items") is None
    assert check_optional_int(4, "max_items") == 4
    with pytest.raises(TypeError, match="max_items must be an int or None, got float"):
        check_optional_int(1.5, "max_items")
    with pytest.raises(ValueError, match="max_items must be at least 1, got 0"):
        check_optional_int(0, "max_items")


def test_check_int_fields_names_the_first_bad_field():
    class Sizes:
        a, b, c = 1, 0, True

    check_int_fields(Sizes, "a")
    with pytest.raises(ValueError, match="b must be at least 1, got 0"):
        check_int_fields(Sizes, "a", "b", "c")
    with pytest.raises(ValueError, match="c must be an int, got bool"):
        check_int_fields(Sizes, "c", type_error=ValueError)


def test_check_number():
    assert check_number(3, "x") == 3.0 and type(check_number(3, "x")) is float
    assert check_number(-0.5, "x") == -0.5
    assert check_number(0.5, "x", positive=True) == 0.5
    with pytest.raises(TypeError, match="x must be a number, got bool True"):
        check_number(True, "x")
    with pytest.raises(ValueError, match="x must be a number, got str"):
        check_number("1", "x", type_error=ValueError)
    with pytest.raises(ValueError, match="x must be finite, got nan"):
        check_number(math.nan, "x")
    with pytest.raises(ValueError, match="x must be finite, got inf"):
        check_number(math.inf, "x", positive=True)
    with pytest.raises(ValueError, match="x must be positive, got 0.0"):
        check_number(0.0, "x", positive=True)


def test_check_bool():
    assert check_bool(False, "flag") is False
    with pytest.raises(TypeError, match="flag must be a bool, got int 1"):
        check_bool(1, "flag")


def test_check_seed():
    assert check_seed(np.uint32(5)) == 5
    assert check_seed(2**32 - 1) == 2**32 - 1
    with pytest.raises(TypeError, match="seed must be an int, got int64"):
        check_seed(np.int64(5), allow_numpy=False)
    with pytest.raises(ValueError, match=r"0 <= seed < 2\*\*32, got 4294967296"):
        check_seed(2**32)
