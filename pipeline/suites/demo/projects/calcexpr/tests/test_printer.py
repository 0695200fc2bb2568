from calcexpr.nodes import BinOp, Call, Num, UnaryOp, Var
from calcexpr.parser import parse
from calcexpr.printer import to_source


def test_spacing():
    assert to_source(parse("a+b*c")) == "a + b * c"


def test_parentheses_kept_when_needed():
    assert to_source(parse("(a + b) * c")) == "(a + b) * c"


def test_redundant_parentheses_dropped():
    assert to_source(parse("(a * b) + (c)")) == "a * b + c"


def test_left_associative_chain():
    assert to_source(parse("a - b - c")) == "a - b - c"


def test_negated_sum():
    assert to_source(parse("-(a + b)")) == "-(a + b)"
    assert to_source(parse("-x")) == "-x"


def test_numbers_and_calls():
    tree = Call("max", [Num(2), BinOp("*", Num(1.5), Var("x"))])
    assert to_source(tree) == "max(2, 1.5 * x)"


def test_unary_inside_product():
    assert to_source(BinOp("*", UnaryOp("-", Var("a")), Var("b"))) == "-a * b"
