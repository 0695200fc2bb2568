from textkit.inflect import pluralize


def test_regular():
    assert pluralize("cat") == "cats"


def test_sibilant_endings():
    assert [pluralize(w) for w in ["bus", "box", "buzz", "church", "dish"]] == [
        "buses",
        "boxes",
        "buzzes",
        "churches",
        "dishes",
    ]


def test_consonant_y():
    assert pluralize("city") == "cities"


def test_vowel_y():
    assert pluralize("day") == "days"


def test_irregular_lowercase():
    assert pluralize("child") == "children"
    assert pluralize("mouse") == "mice"


def test_uncountable():
    assert pluralize("sheep") == "sheep"
    assert pluralize("News") == "News"


def test_regular_case_preserved():
    assert pluralize("Box") == "Boxes"
    assert pluralize("CITY") == "CITIES"


def test_count_one_is_singular():
    assert pluralize("cat", count=1) == "cat"
    assert pluralize("cat", count=0) == "cats"
