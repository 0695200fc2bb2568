"""Tokenizer."""

import re
from dataclasses import dataclass

from .errors import CalcError

NUMBER = "NUMBER"
NAME = "NAME"
EOF = "EOF"

# Longest operators first so that "//" wins over "/".
OPERATORS = ("//", "+", "-", "*", "/", "%", "^", "(", ")", ",")

_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass(frozen=True)
class Token:
    """A token.  ``kind`` is NUMBER, NAME, EOF or the operator itself;
    ``pos`` is the offset of the token's first character in the source."""

    kind: str
    text: str
    pos: int
    value: object = None


def tokenize(src):
    """Split ``src`` into a list of tokens ending with an EOF token.

    Integer literals produce ``int`` values, literals with a fraction or
    an exponent produce ``float`` values.
    """
    tokens = []
    i = 0
    n = len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
            continue
        m = _NUMBER.match(src, i)
        if m:
            text = m.group()
            i = m.end()
            tokens.append(Token(NUMBER, text, i, float(text)))
            continue
        m = _NAME.match(src, i)
        if m:
            i = m.end()
            tokens.append(Token(NAME, m.group(), i))
            continue
        for op in OPERATORS:
            if src.startswith(op, i):
                tokens.append(Token(op, op, i))
                i += len(op)
                break
        else:
            raise CalcError(f"unexpected character {ch!r}", i)
    tokens.append(Token(EOF, "", n))
    return tokens
