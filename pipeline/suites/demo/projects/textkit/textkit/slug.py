"""URL slugs."""

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text, sep="-", max_length=None):
    """Turn ``text`` into a lowercase ASCII slug.

    Accented letters are folded to their ASCII base letter, every run of
    other characters becomes a single ``sep`` and the result never starts
    or ends with ``sep``.  When ``max_length`` is given the slug is cut at
    a word boundary so that it is at most ``max_length`` characters long.
    """
    if not sep:
        raise ValueError("sep must be a non-empty string")
    normalized = unicodedata.normalize("NFKD", text)
    ascii_text = normalized.encode("ascii", "ignore").decode("ascii")
    slug = _NON_ALNUM.sub(sep, ascii_text.lower()).strip("-")
    if max_length is not None and len(slug) > max_length:
        cut = slug[: max_length + len(sep)]
        if sep in cut:
            slug = cut[: cut.rindex(sep)]
        else:
            slug = slug[:max_length]
    return slug
