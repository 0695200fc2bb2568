import pytest

from iniconf import InterpolationError, parse

TEXT = """\
[DEFAULT]
base = /opt

[app]
home = ${base}/app
logs = ${home}/logs
price = $$5
db = ${database:host}:${database:port}

[database]
host = db.local
port = 5432
"""


def test_same_section_reference():
    cfg = parse(TEXT)
    assert cfg.get("app", "home") == "/opt/app"


def test_cross_section_reference():
    cfg = parse(TEXT)
    assert cfg.get("app", "db") == "db.local:5432"


def test_dollar_escape():
    cfg = parse(TEXT)
    assert cfg.get("app", "price") == "$5"


def test_raw_access():
    cfg = parse(TEXT)
    assert cfg.get("app", "home", raw=True) == "${base}/app"
    assert cfg["app"].get("home", raw=True) == "${base}/app"


def test_missing_reference():
    cfg = parse("[a]\nx = ${nope}\ny = ${other:z}\n")
    with pytest.raises(InterpolationError, match=r"\$\{nope\}"):
        cfg.get("a", "x")
    with pytest.raises(InterpolationError, match="no section"):
        cfg.get("a", "y")


def test_getint_interpolates():
    cfg = parse(TEXT)
    assert cfg.getint("database", "port") == 5432
    cfg.set("app", "port", "${database:port}")
    assert cfg.getint("app", "port") == 5432
