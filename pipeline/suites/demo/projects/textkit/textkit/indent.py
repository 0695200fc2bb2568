"""Indentation helpers."""

import os


def _common_margin(lines):
    """Return the longest run of leading whitespace shared by ``lines``."""
    margin = None
    for line in lines:
        stripped = line.lstrip(" \t")
        prefix = line[: len(line) - len(stripped)]
        if margin is None:
            margin = prefix
        else:
            margin = os.path.commonprefix([margin, prefix])
    return margin or ""


def dedent(text):
    """Remove the common leading whitespace from every line of ``text``.

    Like :func:`textwrap.dedent`, lines that consist solely of whitespace
    are ignored when computing the margin and are normalised to empty
    lines in the result.
    """
    lines = text.split("\n")
    margin = _common_margin(lines)
    out = []
    for line in lines:
        if line.startswith(margin):
            out.append(line[len(margin) :])
        else:
            out.append(line)
    return "\n".join(out)


def indent(text, prefix, predicate=None):
    """Add ``prefix`` to the beginning of selected lines of ``text``.

    By default ``prefix`` is added to every line that is not empty or
    whitespace-only; pass ``predicate`` to choose the lines yourself.
    """
    if predicate is None:

        def predicate(line):
            return line.strip() != ""

    return "\n".join(prefix + line if predicate(line) else line for line in text.split("\n"))
