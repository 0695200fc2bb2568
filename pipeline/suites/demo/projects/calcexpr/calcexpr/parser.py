"""Recursive-descent parser.

Grammar, from loosest to tightest binding::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/" | "//" | "%") unary)*
    unary   := ("-" | "+") unary | power
    power   := primary ("^" unary)?          # right-associative
    primary := NUMBER | NAME | NAME "(" args ")" | "(" expr ")"

so ``-2 ^ 2 == -(2 ^ 2)`` and ``2 ^ 3 ^ 2 == 2 ^ (3 ^ 2)``.
"""

from .errors import CalcError
from .nodes import BinOp, Call, Num, UnaryOp, Var
from .tokens import EOF, NAME, NUMBER, tokenize


class Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.index = 0

    def peek(self):
        return self.tokens[self.index]

    def advance(self):
        tok = self.tokens[self.index]
        if tok.kind != EOF:
            self.index += 1
        return tok

    def error(self, tok, message):
        pos = tok.pos
        # NUMBER and NAME tokens carry the offset just past their last
        # character; report where the token starts.
        if tok.kind in (NUMBER, NAME):
            pos -= len(tok.text)
        raise CalcError(message, pos)

    def expect(self, kind):
        tok = self.peek()
        if tok.kind != kind:
            self.error(tok, f"expected {kind!r}")
        return self.advance()

    def parse(self):
        node = self.parse_expr()
        tok = self.peek()
        if tok.kind != EOF:
            self.error(tok, f"unexpected {tok.text!r}")
        return node

    def parse_expr(self):
        node = self.parse_term()
        while self.peek().kind in ("+", "-"):
            op = self.advance()
            node = BinOp(op.kind, node, self.parse_term(), op.pos)
        return node

    def parse_term(self):
        node = self.parse_power()
        while self.peek().kind in ("*", "/", "//", "%"):
            op = self.advance()
            node = BinOp(op.kind, node, self.parse_power(), op.pos)
        return node

    def parse_power(self):
        node = self.parse_unary()
        while self.peek().kind == "^":
            op = self.advance()
            node = BinOp("^", node, self.parse_unary(), op.pos)
        return node

    def parse_unary(self):
        tok = self.peek()
        if tok.kind == "-":
            self.advance()
            return UnaryOp("-", self.parse_unary(), tok.pos)
        return self.parse_primary()

    def parse_primary(self):
        tok = self.peek()
        if tok.kind == NUMBER:
            self.advance()
            return Num(tok.value, tok.pos)
        if tok.kind == NAME:
            self.advance()
            if self.peek().kind == "(":
                return Call(tok.text, self.parse_args(), tok.pos)
            return Var(tok.text, tok.pos)
        if tok.kind == "(":
            self.advance()
            node = self.parse_expr()
            self.expect(")")
            return node
        if tok.kind == EOF:
            self.error(tok, "unexpected end of input")
        self.error(tok, f"unexpected {tok.text!r}")

    def parse_args(self):
        self.expect("(")
        args = []
        if self.peek().kind != ")":
            args.append(self.parse_expr())
            while self.peek().kind == ",":
                self.advance()
                args.append(self.parse_expr())
        self.expect(")")
        return args


def parse(src):
    """Parse ``src`` into an AST (see :mod:`calcexpr.nodes`)."""
    return Parser(tokenize(src)).parse()
