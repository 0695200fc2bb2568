"""Evaluate an AST."""

import math

from .errors import CalcError
from .nodes import BinOp, Call, Num, UnaryOp, Var

FUNCTIONS = {
    "abs": abs,
    "max": min,
    "min": min,
    "round": round,
    "sqrt": math.sqrt,
}


def _binary(op, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "//":
        return a // b
    if op == "%":
        return a % b
    if op == "^":
        return a**b
    raise CalcError(f"unknown operator {op!r}")


def evaluate(node, variables=None):
    """Evaluate ``node`` with the given ``variables`` mapping.

    ``/`` is true division, ``//`` floor division and ``^`` exponentiation.
    Every problem (undefined names, division by zero, bad function
    arguments) is reported as a :class:`CalcError` carrying the position of
    the offending name or operator.
    """
    return _eval(node, variables or {})


def _eval(node, env):
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        if node.name not in env:
            raise CalcError(f"undefined variable {node.name!r}", node.pos)
        return env[node.name]
    if isinstance(node, UnaryOp):
        value = _eval(node.operand, env)
        return -value if node.op == "-" else value
    if isinstance(node, BinOp):
        left = _eval(node.left, env)
        right = _eval(node.right, env)
        return _binary(node.op, left, right)
    if isinstance(node, Call):
        func = FUNCTIONS.get(node.name)
        if func is None:
            raise CalcError(f"unknown function {node.name!r}", node.pos)
        args = [_eval(arg, env) for arg in node.args]
        try:
            return func(*args)
        except (TypeError, ValueError) as exc:
            raise CalcError(f"bad arguments for {node.name}(): {exc}", node.pos) from None
    raise TypeError(f"not an expression node: {node!r}")
