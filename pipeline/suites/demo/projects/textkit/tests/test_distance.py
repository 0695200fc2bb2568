import pytest

from textkit.distance import levenshtein, similarity


def test_levenshtein_classic():
    assert levenshtein("kitten", "sitting") == 3


def test_levenshtein_identical():
    assert levenshtein("abc", "abc") == 0


def test_levenshtein_symmetric():
    assert levenshtein("flaw", "lawn") == levenshtein("lawn", "flaw") == 2


def test_levenshtein_empty_operand():
    assert levenshtein("", "abc") == 3
    assert levenshtein("abc", "") == 3


def test_similarity_identical():
    assert similarity("abc", "abc") == 1.0


def test_similarity_partial():
    assert similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)


def test_similarity_disjoint():
    assert similarity("abc", "xyz") == 0.0
