import math

import pytest

from calcexpr import calc
from calcexpr.errors import CalcError


def test_variables():
    assert calc("2 * x + y", x=3, y=1) == 7
    assert calc("a", {"a": 5}) == 5


def test_true_and_floor_division():
    assert calc("7 / 2") == 3.5
    assert calc("7 // 2") == 3
    assert calc("-7 // 2") == -4
    assert calc("7 % 3") == 1


def test_functions():
    assert calc("abs(-4)") == 4
    assert calc("min(3, 1, 2)") == 1
    assert calc("sqrt(16)") == 4
    assert calc("round(2.5)") == 2


def test_nested_calls():
    assert calc("abs(min(-2, 5)) + 1") == 3


def test_float_arithmetic():
    assert calc("0.5 * 4") == 2.0
    assert math.isclose(calc("1 / 3"), 1 / 3)


def test_undefined_variable():
    with pytest.raises(CalcError, match="undefined variable 'z'"):
        calc("z + 1")


def test_unknown_function():
    with pytest.raises(CalcError, match="unknown function 'nope'"):
        calc("nope(1)")


def test_bad_function_arguments():
    with pytest.raises(CalcError, match=r"bad arguments for sqrt\(\)"):
        calc("sqrt(-1)")
