"""iniconf - read and write INI-style configuration files.

>>> from iniconf import parse
>>> cfg = parse("[server]\nhost = example.org\nport = 8080\n")
>>> cfg.getint("server", "port")
8080
"""
from .config import DEFAULT_SECTION, Config, SectionProxy
from .errors import (
    DuplicateOptionError,
    DuplicateSectionError,
    IniConfError,
    InterpolationError,
    MissingSectionError,
    NoOptionError,
    NoSectionError,
    ParseError,
)
from .parser import load, parse
from .writer import dump, dumps

__version__ = "1.2.0"

__all__ = [
    "DEFAULT_SECTION", "Config", "SectionProxy",
    "DuplicateOptionError", "DuplicateSectionError", "IniConfError", "InterpolationError",
    "MissingSectionError", "NoOptionError", "NoSectionError", "ParseError",
    "load", "parse", "dump", "dumps",
]
