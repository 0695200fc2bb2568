import pytest

from textkit.table import format_table
from textkit.width import display_width


def test_table_with_headers():
    out = format_table([["apple", 3], ["fig", 12]], headers=["fruit", "qty"])
    assert out == "fruit | qty\n------+----\napple |   3\nfig   |  12"


def test_table_without_headers():
    assert format_table([["a", "bb"], ["ccc", "d"]]) == "a   | bb\nccc | d"


def test_table_ragged_rows_and_none():
    assert format_table([["a", "x"], ["b", None, "c"]]) == "a | x |\nb |   | c"


def test_table_center_alignment():
    assert format_table([["ab"], ["abcdef"]], align="c") == "  ab\nabcdef"


def test_table_float_formatting():
    assert format_table([[1.5], [10.25]]) == "  1.5\n10.25"


def test_table_bad_align():
    with pytest.raises(ValueError):
        format_table([["a", "b"]], align="l")


def test_table_empty():
    assert format_table([]) == ""


def test_display_width():
    assert display_width("abc") == 3
    assert display_width("日本") == 4
    assert display_width("e\u0301") == 1
