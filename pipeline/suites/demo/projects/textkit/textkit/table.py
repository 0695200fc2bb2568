"""Plain-text tables."""

import numbers


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_number(value):
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _default_align(rows, ncols):
    align = ""
    for c in range(ncols):
        values = [r[c] for r in rows if r[c] is not None]
        align += "r" if values and all(_is_number(v) for v in values) else "l"
    return align


def format_table(rows, headers=None, align=None):
    """Format ``rows`` (a sequence of sequences) as an aligned text table.

    ``align`` has one character per column: ``"l"`` (left), ``"r"``
    (right) or ``"c"`` (centre).  By default numeric columns are
    right-aligned and all others left-aligned.  Column widths are measured
    in terminal columns (see :func:`textkit.width.display_width`), so wide
    CJK characters and combining accents line up.  Trailing spaces are
    stripped from every line.

    >>> print(format_table([["apple", 3], ["fig", 12]], headers=["fruit", "qty"]))
    fruit | qty
    ------+----
    apple |   3
    fig   |  12
    """
    rows = [list(r) for r in rows]
    headers = list(headers) if headers else []
    ncols = max([len(r) for r in rows] + [len(headers)])
    if ncols == 0:
        return ""
    for r in rows:
        r.extend([None] * (ncols - len(r)))
    if align is None:
        align = _default_align(rows, ncols)
    if len(align) != ncols or set(align) - set("lrc"):
        raise ValueError(f"align must have {ncols} characters from 'l', 'r', 'c'")

    text_rows = [[_cell(v) for v in r] for r in rows]
    header_row = [str(h) for h in headers] + [""] * (ncols - len(headers)) if headers else None
    all_rows = ([header_row] if header_row else []) + text_rows
    widths = [max(len(r[c]) for r in all_rows) for c in range(ncols)]

    def fmt(cells):
        return " | ".join(_pad(cells[c], widths[c], align[c]) for c in range(ncols)).rstrip()

    lines = []
    if header_row:
        lines.append(fmt(header_row))
        lines.append("-+-".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in text_rows)
    return "\n".join(lines)


def _pad(text, width, how):
    fill = width - len(text)
    if how == "r":
        return " " * fill + text
    if how == "c":
        left = fill // 2
        return " " * left + text + " " * (fill - left)
    return text + " " * fill
