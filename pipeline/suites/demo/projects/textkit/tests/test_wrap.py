import pytest

from textkit.wrap import fill, truncate, wrap


def test_wrap_basic():
    assert wrap("the quick brown fox jumps over the lazy dog", 10) == [
        "the quick",
        "brown fox",
        "jumps over",
        "the lazy",
        "dog",
    ]


def test_wrap_collapses_whitespace():
    assert wrap("a   b\n\tc", 80) == ["a b c"]


def test_wrap_breaks_long_words():
    assert wrap("ab abcdefghij cd", 4) == ["ab", "abcd", "efgh", "ij", "cd"]


def test_wrap_empty():
    assert wrap("", 10) == []


def test_wrap_invalid_width():
    with pytest.raises(ValueError):
        wrap("abc", 0)


def test_fill_single_paragraph():
    assert fill("one two three four", 9) == "one two\nthree\nfour"


def test_fill_two_paragraphs():
    assert fill("aa bb cc\n\ndd ee", 5) == "aa bb\ncc\n\ndd ee"


def test_truncate_long_text():
    assert truncate("hello world", 8) == "hello..."


def test_truncate_short_text_unchanged():
    assert truncate("hi", 10) == "hi"


def test_truncate_custom_ellipsis():
    assert truncate("abcdefgh", 5, ellipsis="~") == "abcd~"


def test_truncate_length_too_small():
    with pytest.raises(ValueError):
        truncate("abcdef", 2)
