"""AST node types.  ``pos`` is the source offset where the node starts (for
operators: the offset of the operator).  It is ignored when comparing nodes."""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Num:
    value: object
    pos: Optional[int] = field(default=None, compare=False)


@dataclass
class Var:
    name: str
    pos: Optional[int] = field(default=None, compare=False)


@dataclass
class UnaryOp:
    op: str
    operand: object
    pos: Optional[int] = field(default=None, compare=False)


@dataclass
class BinOp:
    op: str
    left: object
    right: object
    pos: Optional[int] = field(default=None, compare=False)


@dataclass
class Call:
    name: str
    args: List[object]
    pos: Optional[int] = field(default=None, compare=False)
