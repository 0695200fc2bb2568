"""Display width of strings in a monospaced terminal."""

import unicodedata


def char_width(ch):
    """Return how many terminal columns ``ch`` occupies (0, 1 or 2)."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_width(text):
    """Return the number of terminal columns needed to display ``text``."""
    return sum(char_width(ch) for ch in text)
