"""Parse INI text into a :class:`~iniconf.config.Config`.

Syntax
------
* ``[section]`` starts a section; ``[DEFAULT]`` holds defaults for all.
* ``key = value`` or ``key: value``; the first ``=`` or ``:`` on the line
  separates key and value.  Keys are case-insensitive.
* Lines starting with ``#`` or ``;`` are comments.  A ``#`` or ``;`` that
  follows whitespace starts an inline comment, except inside double quotes.
* A value wrapped in double quotes keeps its surrounding whitespace; inside
  the quotes ``\\"`` is a quote and ``\\\\`` a backslash.
* An indented line continues the value of the previous key; the lines of
  such a multi-line value are joined with newlines.  A blank line ends it.
"""
from __future__ import annotations

import re
from typing import Optional, TextIO, Tuple

from .config import DEFAULT_SECTION, Config
from .errors import DuplicateOptionError, DuplicateSectionError, MissingSectionError, ParseError

_SECTION = re.compile(r"^\[(?P<name>[^\[\]]+)\]\s*(?:[#;].*)?$")


def _split_key_value(line: str) -> Optional[Tuple[str, str]]:
    """Split ``key = value`` / ``key: value`` at the first separator."""
    for separator in ("=", ":"):
        index = line.find(separator)
        if index != -1:
            return line[:index], line[index + 1:]
    return None


def _strip_inline_comment(value: str) -> str:
    """Drop a trailing ``# ...`` / ``; ...`` comment that follows whitespace."""
    for index, char in enumerate(value):
        if char in "#;" and index > 0 and value[index - 1].isspace():
            return value[:index]
    return value


def _unquote(value: str) -> str:
    """Remove the double quotes around a quoted value."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def parse(text: str) -> Config:
    """Parse *text* and return a new :class:`Config`.

    Raises :class:`ParseError` (or a subclass) with the 1-based line number
    of the first offending line.
    """
    config = Config()
    section: Optional[str] = None
    seen_default = False
    last_key: Optional[str] = None

    for lineno, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if not stripped:
            last_key = None
            continue
        if stripped[0] in "#;":
            continue

        if line[0].isspace() and last_key is not None:
            values = config._values(section)
            previous = values[last_key]
            values[last_key] = f"{previous} {stripped}" if previous else stripped
            continue

        match = _SECTION.match(stripped)
        if match:
            name = match.group("name").strip()
            if name == DEFAULT_SECTION:
                if seen_default:
                    raise DuplicateSectionError(f"duplicate section [{name}]", lineno, line)
                seen_default = True
            elif config.has_section(name):
                raise DuplicateSectionError(f"duplicate section [{name}]", lineno, line)
            else:
                config.add_section(name)
            section = name
            last_key = None
            continue

        pair = _split_key_value(stripped)
        if pair is None:
            raise ParseError(f"expected 'key = value' or '[section]', got {stripped!r}", lineno, line)
        if section is None:
            raise MissingSectionError("key/value pair before the first [section] header", lineno, line)
        key = pair[0].strip().lower()
        if not key:
            raise ParseError("empty key", lineno, line)
        values = config._values(section)
        if key in values:
            raise DuplicateOptionError(f"duplicate key {key!r} in section [{section}]", lineno, line)
        values[key] = _unquote(_strip_inline_comment(pair[1]).strip())
        last_key = key

    return config


def load(fh: TextIO) -> Config:
    """Parse the contents of an open text file."""
    return parse(fh.read())
