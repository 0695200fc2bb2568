"""Word wrapping and truncation."""


def wrap(text, width=70):
    """Greedily wrap ``text`` into a list of lines at most ``width`` long.

    Whitespace (including newlines) is collapsed.  Words longer than
    ``width`` are broken into chunks of ``width`` characters.
    """
    if width < 1:
        raise ValueError("width must be at least 1")
    lines = []
    current = ""
    for word in text.split():
        if len(word) > width:
            if current:
                lines.append(current)
                current = ""
            while len(word) > width:
                lines.append(word[:width])
                word = word[width:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def fill(text, width=70):
    """Wrap each paragraph of ``text`` and return a single string.

    Paragraphs are separated by one or more blank lines (lines that are
    empty or contain only whitespace).  In the result, paragraphs are
    separated by exactly one empty line.
    """
    paragraphs = text.split("\n\n")
    return "\n\n".join("\n".join(wrap(p, width)) for p in paragraphs)


def truncate(text, length, ellipsis="..."):
    """Shorten ``text`` to at most ``length`` characters.

    Text that already fits is returned unchanged; otherwise it is cut and
    ``ellipsis`` is appended so that the result is exactly ``length``
    characters long.
    """
    if length < len(ellipsis):
        raise ValueError("length must be at least len(ellipsis)")
    if len(text) >= length:
        return text[: length - len(ellipsis)] + ellipsis
    return text
