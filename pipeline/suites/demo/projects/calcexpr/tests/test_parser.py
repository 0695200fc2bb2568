import pytest

from calcexpr import calc
from calcexpr.errors import CalcError
from calcexpr.nodes import BinOp, Call, Num, UnaryOp, Var
from calcexpr.parser import parse


def test_precedence():
    assert calc("1 + 2 * 3") == 7
    assert calc("10 - 4 - 3") == 3


def test_parentheses():
    assert calc("(1 + 2) * 3") == 9


def test_ast_shape():
    assert parse("a + b * c") == BinOp("+", Var("a"), BinOp("*", Var("b"), Var("c")))


def test_unary_minus():
    assert calc("-3") == -3
    assert calc("--3") == 3
    assert calc("2 * -3") == -6


def test_power():
    assert calc("2 ^ 10") == 1024
    assert calc("2 ^ -1") == 0.5


def test_function_call_ast():
    assert parse("max(a, 1)") == Call("max", [Var("a"), Num(1)])
    assert parse("f()") == Call("f", [])


def test_unary_ast():
    assert parse("-x") == UnaryOp("-", Var("x"))


def test_unexpected_token_position():
    with pytest.raises(CalcError) as info:
        parse("1 + 2 3")
    assert info.value.pos == 6
    with pytest.raises(CalcError) as info:
        parse("a foo")
    assert info.value.pos == 2
    assert str(info.value) == "unexpected 'foo' at position 2"


def test_unexpected_operator_position():
    with pytest.raises(CalcError) as info:
        parse("1 + * 2")
    assert info.value.pos == 4


def test_unexpected_end_of_input():
    with pytest.raises(CalcError) as info:
        parse("1 +")
    assert str(info.value) == "unexpected end of input at position 3"


def test_missing_close_paren():
    with pytest.raises(CalcError) as info:
        parse("(1 + 2")
    assert info.value.pos == 6
    assert info.value.message == "expected ')'"
