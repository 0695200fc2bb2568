"""Exceptions raised by iniconf."""
from __future__ import annotations

from typing import Optional


class IniConfError(Exception):
    """Base class of all iniconf errors."""


class ParseError(IniConfError):
    """The text is not valid INI.  ``lineno`` is 1-based."""

    def __init__(self, message: str, lineno: int, line: Optional[str] = None) -> None:
        super().__init__(f"line {lineno}: {message}")
        self.message = message
        self.lineno = lineno
        self.line = line


class MissingSectionError(ParseError):
    """A ``key = value`` line appeared before the first section header."""


class DuplicateSectionError(ParseError):
    """The same section header appears twice."""


class DuplicateOptionError(ParseError):
    """The same key appears twice in one section."""


class NoSectionError(IniConfError, KeyError):
    def __init__(self, section: str) -> None:
        super().__init__(section)
        self.section = section

    def __str__(self) -> str:
        return f"no section [{self.section}]"


class NoOptionError(IniConfError, KeyError):
    def __init__(self, section: str, key: str) -> None:
        super().__init__(section, key)
        self.section = section
        self.key = key

    def __str__(self) -> str:
        return f"no option {self.key!r} in section [{self.section}]"


class InterpolationError(IniConfError):
    """A ``${...}`` reference cannot be resolved."""
