"""Pretty-printer: AST -> source text."""

from .nodes import BinOp, Call, Num, UnaryOp, Var

# Binding strength of each operator; higher binds tighter (see parser.py).
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "^": 4}
UNARY_PRECEDENCE = 3
RIGHT_ASSOCIATIVE = {"^"}


def _precedence(node):
    if isinstance(node, BinOp):
        return PRECEDENCE[node.op]
    if isinstance(node, UnaryOp):
        return UNARY_PRECEDENCE
    return 100


def _needs_parens(child, parent_op, side):
    """Should ``child`` be parenthesised as the ``side`` operand of ``parent_op``?"""
    return _precedence(child) < PRECEDENCE[parent_op]


def to_source(node):
    """Render ``node`` as source text using as few parentheses as possible.

    The result always parses back to an equivalent expression:
    ``parse(to_source(tree))`` evaluates to the same value as ``tree``.
    Binary operators are surrounded by single spaces.
    """
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_source(arg) for arg in node.args)})"
    if isinstance(node, UnaryOp):
        operand = to_source(node.operand)
        if isinstance(node.operand, BinOp) and node.operand.op in ("+", "-"):
            operand = f"({operand})"
        return f"{node.op}{operand}"
    if isinstance(node, BinOp):
        left = to_source(node.left)
        if _needs_parens(node.left, node.op, "left"):
            left = f"({left})"
        right = to_source(node.right)
        if _needs_parens(node.right, node.op, "right"):
            right = f"({right})"
        return f"{left} {node.op} {right}"
    raise TypeError(f"not an expression node: {node!r}")
