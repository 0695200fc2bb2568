import pytest

from textkit.template import TemplateError, render


class User:
    def __init__(self, name):
        self.name = name


def test_simple_substitution():
    assert render("Hello {name}!", name="Ada") == "Hello Ada!"


def test_mapping_and_kwargs():
    assert render("{a}-{b}", {"a": 1, "b": 2}, b=3) == "1-3"


def test_whitespace_inside_braces():
    assert render("{ name }", name="x") == "x"


def test_dotted_lookup():
    ctx = {"user": User("Ada"), "items": ["x", "y"], "cfg": {"port": 80}}
    assert render("{user.name} {items.1} {cfg.port}", ctx) == "Ada y 80"


def test_default_value():
    assert render("Hi {name|stranger}", {}) == "Hi stranger"
    assert render("[{x|}]") == "[]"


def test_missing_value():
    with pytest.raises(TemplateError, match="missing value for 'nope'"):
        render("{nope}")


def test_unclosed_placeholder():
    with pytest.raises(TemplateError, match="position 3"):
        render("ab {oops")


def test_empty_placeholder():
    with pytest.raises(TemplateError):
        render("{}")
