import pytest

from iniconf import Config, NoOptionError, NoSectionError, parse

TEXT = """\
[DEFAULT]
retries = 3

[app]
debug = yes
verbose = off
workers = 4
ratio = 0.75
hosts = alpha,beta,,gamma
"""


def test_getint_and_getfloat():
    cfg = parse(TEXT)
    assert cfg.getint("app", "workers") == 4
    assert cfg.getint("app", "retries") == 3
    assert cfg.getfloat("app", "ratio") == 0.75


def test_getint_invalid():
    cfg = parse(TEXT)
    with pytest.raises(ValueError, match=r"\[app\] ratio: expected an integer"):
        cfg.getint("app", "ratio")


def test_getbool():
    cfg = parse(TEXT)
    assert cfg.getbool("app", "debug") is True
    assert cfg.getbool("app", "verbose") is False


def test_getbool_invalid():
    cfg = parse("[a]\nflag = maybe\n")
    with pytest.raises(ValueError, match="expected a boolean"):
        cfg.getbool("a", "flag")


def test_getlist():
    cfg = parse(TEXT)
    assert cfg.getlist("app", "hosts") == ["alpha", "beta", "gamma"]
    cfg.set("app", "path", "/bin:/usr/bin")
    assert cfg.getlist("app", "path", sep=":") == ["/bin", "/usr/bin"]


def test_fallbacks():
    cfg = parse(TEXT)
    assert cfg.get("app", "missing", fallback="x") == "x"
    assert cfg.get("nosuch", "key", fallback=None) is None
    assert cfg.getint("app", "missing", fallback=7) == 7
    assert cfg.getbool("app", "missing", fallback=False) is False
    assert cfg.getlist("app", "missing", fallback=[]) == []


def test_missing_section_and_option():
    cfg = parse(TEXT)
    with pytest.raises(NoSectionError) as info:
        cfg.get("nosuch", "key")
    assert str(info.value) == "no section [nosuch]"
    with pytest.raises(NoOptionError) as info:
        cfg.get("app", "nokey")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "no option 'nokey' in section [app]"


def test_set_add_and_remove():
    cfg = Config()
    cfg.add_section("x")
    cfg.set("x", " Key ", "v")
    assert cfg.get("x", "key") == "v"
    cfg.set("DEFAULT", "shared", "s")
    assert cfg.get("x", "shared") == "s"
    cfg.remove_option("x", "key")
    assert not cfg.has_option("x", "key")
    cfg.remove_section("x")
    assert cfg.sections() == []
    with pytest.raises(TypeError):
        cfg.set("DEFAULT", "n", 1)
    with pytest.raises(ValueError):
        cfg.add_section("DEFAULT")


def test_section_proxy_mapping():
    cfg = parse(TEXT)
    app = cfg["app"]
    assert app.name == "app"
    assert app["workers"] == "4"
    assert "retries" in app
    assert "nokey" not in app
    assert app.get("nokey") is None
    assert len(app) == 6
    with pytest.raises(KeyError):
        app["nokey"]
    with pytest.raises(NoSectionError):
        cfg["nosuch"]


def test_section_items_include_defaults():
    cfg = parse(TEXT)
    assert cfg["app"].items()[-1] == ("retries", "3")
    assert dict(cfg["app"])["retries"] == "3"


def test_to_dict():
    cfg = parse("[DEFAULT]\nd = 1\n[a]\nx = 2\n[b]\n")
    assert cfg.to_dict() == {"a": {"x": "2", "d": "1"}, "b": {"d": "1"}}
