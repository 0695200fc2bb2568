"""calcexpr - parse, evaluate and pretty-print arithmetic expressions.

>>> from calcexpr import calc
>>> calc("2 * (x + 1)", x=3)
8
"""

from .errors import CalcError
from .evaluator import FUNCTIONS, evaluate
from .nodes import BinOp, Call, Num, UnaryOp, Var
from .parser import parse
from .printer import to_source
from .tokens import Token, tokenize


def calc(src, variables=None, **kwargs):
    """Parse and evaluate ``src``; variables come from ``variables`` and ``kwargs``."""
    env = dict(variables or {})
    env.update(kwargs)
    return evaluate(parse(src), env)


__all__ = [
    "BinOp",
    "CalcError",
    "Call",
    "FUNCTIONS",
    "Num",
    "Token",
    "UnaryOp",
    "Var",
    "calc",
    "evaluate",
    "parse",
    "to_source",
    "tokenize",
]
