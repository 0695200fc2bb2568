"""English pluralization."""

IRREGULAR = {
    "child": "children",
    "foot": "feet",
    "goose": "geese",
    "man": "men",
    "mouse": "mice",
    "person": "people",
    "tooth": "teeth",
    "woman": "women",
}

UNCOUNTABLE = {"equipment", "fish", "information", "news", "rice", "series", "sheep", "species"}

_VOWELS = "aeiou"


def pluralize(word, count=None):
    """Return the plural form of ``word``.

    If ``count`` is given and equals 1, ``word`` is returned unchanged.
    The capitalisation of ``word`` is preserved: ``"Box"`` becomes
    ``"Boxes"``, ``"Person"`` becomes ``"People"`` and ``"CHILD"`` becomes
    ``"CHILDREN"``.
    """
    if count == 1 or not word:
        return word
    lower = word.lower()
    if lower in UNCOUNTABLE:
        return word
    if lower in IRREGULAR:
        return IRREGULAR[lower]
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        suffix = "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in _VOWELS:
        word, suffix = word[:-1], "ies"
    else:
        suffix = "s"
    if word.isupper():
        suffix = suffix.upper()
    return word + suffix
