import io

from iniconf import Config, dump, dumps, parse


def test_dumps_layout():
    cfg = parse("[DEFAULT]\nd = 1\n[a]\nx = 2\n[b]\ny: 3\n")
    assert dumps(cfg) == "[DEFAULT]\nd = 1\n\n[a]\nx = 2\n\n[b]\ny = 3\n"


def test_dumps_keeps_raw_references():
    cfg = parse("[a]\nx = 1\ny = ${x}\n")
    assert "y = ${x}\n" in dumps(cfg)


def test_dumps_empty_value():
    cfg = Config()
    cfg.add_section("a")
    cfg.set("a", "k", "")
    assert dumps(cfg) == "[a]\nk =\n"


def test_dumps_quotes_comment_characters():
    cfg = Config()
    cfg.add_section("a")
    cfg.set("a", "x", ";starts with semicolon")
    cfg.set("a", "y", "a #b")
    cfg.set("a", "z", "a#b")
    text = dumps(cfg)
    assert 'x = ";starts with semicolon"\n' in text
    assert 'y = "a #b"\n' in text
    assert "z = a#b\n" in text


def test_dumps_escapes_quotes():
    cfg = Config()
    cfg.add_section("a")
    cfg.set("a", "q", 'say "hi"')
    assert dumps(cfg) == '[a]\nq = "say \\"hi\\""\n'


def test_roundtrip_simple():
    text = "[DEFAULT]\nretries = 3\n\n[server]\nhost = example.org\nport = 8080\npath = ${host}/x\n"
    cfg = parse(text)
    again = parse(dumps(cfg))
    assert again.to_dict(raw=True) == cfg.to_dict(raw=True)
    assert dumps(again) == text


def test_roundtrip_leading_semicolon():
    cfg = Config()
    cfg.add_section("a")
    cfg.set("a", "x", ";not a comment")
    assert parse(dumps(cfg)).get("a", "x") == ";not a comment"


def test_dump_to_file():
    cfg = parse("[a]\nx = 1\n")
    out = io.StringIO()
    dump(cfg, out)
    assert out.getvalue() == "[a]\nx = 1\n"
