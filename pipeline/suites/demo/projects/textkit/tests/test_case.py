from textkit.case import split_words, to_camel, to_kebab, to_pascal, to_snake


def test_split_words_camel():
    assert split_words("helloWorld") == ["hello", "world"]


def test_split_words_mixed_separators():
    assert split_words("hello_big-World now") == ["hello", "big", "world", "now"]


def test_split_words_digits():
    assert split_words("version2Update") == ["version", "2", "update"]


def test_all_caps_word():
    assert to_snake("XML") == "xml"
    assert to_snake("getURL") == "get_url"


def test_to_snake():
    assert to_snake("HelloWorld") == "hello_world"


def test_to_kebab():
    assert to_kebab("some_variable_name") == "some-variable-name"


def test_to_camel():
    assert to_camel("some-variable name") == "someVariableName"
    assert to_camel("") == ""


def test_to_pascal():
    assert to_pascal("hello_world") == "HelloWorld"
