"""Error type shared by the tokenizer, parser and evaluator."""


class CalcError(Exception):
    """A problem with an expression.

    ``pos`` is the 0-based offset in the source text where the problem was
    found (or ``None`` when it is not tied to a location).
    """

    def __init__(self, message, pos=None):
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self):
        if self.pos is None:
            return self.message
        return f"{self.message} at position {self.pos}"
