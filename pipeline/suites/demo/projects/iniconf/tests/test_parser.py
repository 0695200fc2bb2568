import io

import pytest

from iniconf import (
    DuplicateOptionError,
    DuplicateSectionError,
    MissingSectionError,
    ParseError,
    load,
    parse,
)

SAMPLE = """\
# global comment
; another comment
[DEFAULT]
timeout = 30

[server]
host = example.org
Port=8080
user: admin

[paths]
root = /srv/app
"""


def test_sections_and_values():
    cfg = parse(SAMPLE)
    assert cfg.sections() == ["server", "paths"]
    assert cfg.get("server", "host") == "example.org"
    assert cfg.get("server", "port") == "8080"
    assert cfg.get("server", "user") == "admin"
    assert cfg.get("paths", "root") == "/srv/app"


def test_keys_are_case_insensitive():
    cfg = parse(SAMPLE)
    assert cfg.get("server", "PORT") == "8080"
    assert cfg.options("server") == ["host", "port", "user", "timeout"]


def test_defaults_section():
    cfg = parse(SAMPLE)
    assert cfg.defaults() == {"timeout": "30"}
    assert cfg.get("paths", "timeout") == "30"
    assert "DEFAULT" not in cfg.sections()


def test_colon_separator():
    cfg = parse("[a]\nname: value with spaces\n")
    assert cfg.get("a", "name") == "value with spaces"


def test_equals_in_value():
    cfg = parse("[db]\ndsn = postgres://u@h/db?sslmode=require\n")
    assert cfg.get("db", "dsn") == "postgres://u@h/db?sslmode=require"


def test_comments_are_ignored():
    cfg = parse("[a]\n  # indented comment\nx = 1 ; inline\ny = 2 # inline too\nz = a#b\n")
    assert cfg.get("a", "x") == "1"
    assert cfg.get("a", "y") == "2"
    assert cfg.get("a", "z") == "a#b"
    assert cfg.options("a") == ["x", "y", "z"]


def test_empty_value():
    cfg = parse("[a]\nempty =\nblank = ; only a comment\n")
    assert cfg.get("a", "empty") == ""
    assert cfg.get("a", "blank") == ""


def test_quoted_values_keep_whitespace():
    cfg = parse('[a]\npadded = "  two spaces  "\nplain = "text" ; comment\n')
    assert cfg.get("a", "padded") == "  two spaces  "
    assert cfg.get("a", "plain") == "text"


def test_section_header_with_comment_and_spaces():
    cfg = parse("[ my section ] # comment\nk = v\n")
    assert cfg.sections() == ["my section"]


def test_key_before_section():
    with pytest.raises(MissingSectionError) as info:
        parse("x = 1\n[a]\n")
    assert isinstance(info.value, ParseError)


def test_line_without_separator():
    with pytest.raises(ParseError, match="expected 'key = value'"):
        parse("[a]\njust some words\n")


def test_duplicate_section():
    with pytest.raises(DuplicateSectionError, match=r"duplicate section \[a\]"):
        parse("[a]\nx = 1\n[b]\n[a]\n")


def test_duplicate_key():
    with pytest.raises(DuplicateOptionError, match="duplicate key 'x'"):
        parse("[a]\nx = 1\nX = 2\n")


def test_empty_key():
    with pytest.raises(ParseError, match="empty key"):
        parse("[a]\n = 1\n")


def test_parse_error_keeps_the_line():
    with pytest.raises(ParseError) as info:
        parse("[a]\nbroken line\n")
    assert info.value.line == "broken line"
    assert info.value.message.startswith("expected")


def test_load_from_file_object():
    cfg = load(io.StringIO("[a]\nx = 1\n"))
    assert cfg.getint("a", "x") == 1
