"""Identifier case conversion (snake_case, kebab-case, camelCase, PascalCase)."""

import re

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_words(text):
    """Split an identifier or phrase into lowercase words.

    >>> split_words("parseHTMLString")
    ['parse', 'html', 'string']
    """
    return [w.lower() for w in _WORD.findall(text)]


def to_snake(text):
    return "_".join(split_words(text))


def to_kebab(text):
    return "-".join(split_words(text))


def to_camel(text):
    words = split_words(text)
    if not words:
        return ""
    return words[0] + "".join(w.capitalize() for w in words[1:])


def to_pascal(text):
    return "".join(w.capitalize() for w in split_words(text))
