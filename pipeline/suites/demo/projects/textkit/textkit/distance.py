"""Edit distance."""


def levenshtein(a, b):
    """Return the Levenshtein edit distance between ``a`` and ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def similarity(a, b):
    """Return a similarity ratio in ``[0.0, 1.0]`` based on edit distance.

    ``1.0`` means the strings are identical, ``0.0`` that they have nothing
    in common.
    """
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))
