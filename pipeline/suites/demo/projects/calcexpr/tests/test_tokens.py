import pytest

from calcexpr.errors import CalcError
from calcexpr.tokens import EOF, NAME, NUMBER, tokenize


def kinds(src):
    return [t.kind for t in tokenize(src)]


def test_tokenize_simple_expression():
    assert kinds("1 + x") == [NUMBER, "+", NAME, EOF]


def test_floor_division_is_one_token():
    assert [t.text for t in tokenize("7//2/3")] == ["7", "//", "2", "/", "3", ""]


def test_number_literals():
    assert [t.value for t in tokenize("3 4.5 1e3 2.")[:-1]] == [3, 4.5, 1000.0, 2.0]


def test_names_with_digits_and_underscores():
    assert [t.text for t in tokenize("x_1 + _tmp2")[:-1]] == ["x_1", "+", "_tmp2"]


def test_operator_positions():
    toks = tokenize("( 1+2 )")
    assert [(t.kind, t.pos) for t in toks if t.kind in "()+"] == [("(", 0), ("+", 3), (")", 6)]


def test_eof_position():
    assert tokenize("1 + 2  ")[-1].pos == 7


def test_unexpected_character():
    with pytest.raises(CalcError) as info:
        tokenize("1 + $")
    assert info.value.pos == 4
    assert str(info.value) == "unexpected character '$' at position 4"
