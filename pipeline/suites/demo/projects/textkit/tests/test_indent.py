from textkit.indent import dedent, indent


def test_dedent_common_margin():
    assert dedent("    a\n    b") == "a\nb"


def test_dedent_keeps_relative_indentation():
    assert dedent("  a\n    b\n  c") == "a\n  b\nc"


def test_dedent_tabs():
    assert dedent("\tx\n\ty") == "x\ny"


def test_dedent_no_common_margin():
    assert dedent("a\n  b") == "a\n  b"


def test_indent_default_skips_blank_lines():
    assert indent("a\n\nb", "> ") == "> a\n\n> b"


def test_indent_predicate():
    assert indent("a\n\nb", "# ", predicate=lambda line: True) == "# a\n# \n# b"
