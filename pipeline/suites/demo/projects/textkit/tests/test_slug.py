import pytest

from textkit.slug import slugify


def test_basic():
    assert slugify("Hello World") == "hello-world"


def test_punctuation_collapses_to_single_separator():
    assert slugify("Hello,   World!!  Again") == "hello-world-again"


def test_strips_leading_and_trailing_separators():
    assert slugify("  --Hello World--  ") == "hello-world"


def test_accents_are_folded():
    assert slugify("Crème Brûlée à la carte") == "creme-brulee-a-la-carte"


def test_custom_separator():
    assert slugify("Hello big World", sep="_") == "hello_big_world"


def test_max_length_cuts_at_word_boundary():
    assert slugify("the quick brown fox", max_length=12) == "the-quick"
    assert slugify("the quick brown fox", max_length=15) == "the-quick-brown"


def test_max_length_single_long_word():
    assert slugify("abcdefghijkl", max_length=5) == "abcde"


def test_empty_separator_rejected():
    with pytest.raises(ValueError):
        slugify("x", sep="")
