"""The in-memory configuration object."""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterator, List, Optional

from .errors import InterpolationError, NoOptionError, NoSectionError

DEFAULT_SECTION = "DEFAULT"

#: Accepted spellings of booleans (compared case-insensitively).
BOOLEAN_STATES = {
    "1": True, "yes": True, "true": True, "on": True,
    "0": False, "no": False, "false": False, "off": False,
}

_MISSING: Any = object()
_REFERENCE = re.compile(r"\$\$|\$\{(?P<ref>[^}]*)\}")


def _to_bool(value: str) -> bool:
    try:
        return BOOLEAN_STATES[value.strip()]
    except KeyError:
        raise ValueError(value) from None


def _split_list(value: str, sep: str) -> List[str]:
    return [part for part in value.split(sep) if part.strip()]


class Config:
    """Sections of string values plus a ``DEFAULT`` section.

    Keys are case-insensitive (stored lower case); section names are case
    sensitive.  Keys of the ``DEFAULT`` section are visible in every section
    unless the section defines the key itself.  Values may refer to other
    values with ``${key}`` (same section or ``DEFAULT``) or
    ``${section:key}``; ``$$`` is a literal dollar sign.
    """

    def __init__(self) -> None:
        self._defaults: Dict[str, str] = {}
        self._sections: Dict[str, Dict[str, str]] = {}

    # -- structure -----------------------------------------------------------
    def sections(self) -> List[str]:
        """Section names in file order, without ``DEFAULT``."""
        return list(self._sections)

    def has_section(self, name: str) -> bool:
        return name in self._sections

    def add_section(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(f"invalid section name {name!r}")
        if name == DEFAULT_SECTION:
            raise ValueError("the DEFAULT section always exists")
        if name in self._sections:
            raise ValueError(f"section [{name}] already exists")
        self._sections[name] = {}

    def remove_section(self, name: str) -> None:
        self._values(name)
        if name == DEFAULT_SECTION:
            self._defaults.clear()
        else:
            del self._sections[name]

    def defaults(self) -> Dict[str, str]:
        """A copy of the raw ``DEFAULT`` values."""
        return dict(self._defaults)

    def options(self, section: str) -> List[str]:
        """Keys visible in *section*: its own first, then inherited defaults."""
        own = self._values(section)
        return list(own) + [key for key in self._defaults if key not in own]

    def has_option(self, section: str, key: str) -> bool:
        try:
            self._raw(section, key)
        except (NoSectionError, NoOptionError):
            return False
        return True

    def set(self, section: str, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"values must be strings, not {type(value).__name__}")
        key = key.strip().lower()
        if not key or any(ch in key for ch in "=:[]"):
            raise ValueError(f"invalid key {key!r}")
        self._values(section)[key] = value

    def remove_option(self, section: str, key: str) -> None:
        values = self._values(section)
        try:
            del values[key.strip().lower()]
        except KeyError:
            raise NoOptionError(section, key) from None

    # -- reading values ----------------------------------------------------
    def _values(self, section: str) -> Dict[str, str]:
        if section == DEFAULT_SECTION:
            return self._defaults
        try:
            return self._sections[section]
        except KeyError:
            raise NoSectionError(section) from None

    def _raw(self, section: str, key: str) -> str:
        key = key.strip().lower()
        values = self._values(section)
        if key in values:
            return values[key]
        if key in self._defaults:
            return self._defaults[key]
        raise NoOptionError(section, key)

    def get(self, section: str, key: str, fallback: Any = _MISSING, *, raw: bool = False) -> Any:
        """The value of *key* in *section*, with references expanded.

        *fallback* is returned instead of raising when the section or the
        key does not exist.
        """
        try:
            value = self._raw(section, key)
        except (NoSectionError, NoOptionError):
            if fallback is _MISSING:
                raise
            return fallback
        if raw:
            return value
        return self._interpolate(section, key.strip().lower(), value)

    def _interpolate(self, section: str, key: str, value: str) -> str:
        """Expand the ``${...}`` references in *value* of ``[section] key``.

        References are expanded recursively, so a referenced value may
        itself contain references; a reference cycle raises
        :class:`InterpolationError` instead of looping forever.
        """

        def replace(match: "re.Match[str]") -> str:
            if match.group(0) == "$$":
                return "$"
            ref = match.group("ref")
            if ":" in ref:
                ref_section, ref_key = ref.split(":", 1)
            else:
                ref_section, ref_key = section, ref
            ref_section = ref_section.strip()
            ref_key = ref_key.strip().lower()
            try:
                return self._raw(ref_section, ref_key)
            except (NoSectionError, NoOptionError) as exc:
                raise InterpolationError(
                    f"cannot resolve ${{{ref}}} in [{section}] {key}: {exc}"
                ) from None

        return _REFERENCE.sub(replace, value)

    def _convert(self, section: str, key: str, fallback: Any, convert: Callable[[str], Any], kind: str) -> Any:
        try:
            value = self.get(section, key)
        except (NoSectionError, NoOptionError):
            if fallback is _MISSING:
                raise
            return fallback
        try:
            return convert(value)
        except ValueError:
            raise ValueError(f"[{section}] {key}: expected {kind}, got {value!r}") from None

    def getint(self, section: str, key: str, fallback: Any = _MISSING) -> int:
        return self._convert(section, key, fallback, lambda v: int(v.strip()), "an integer")

    def getfloat(self, section: str, key: str, fallback: Any = _MISSING) -> float:
        return self._convert(section, key, fallback, lambda v: float(v.strip()), "a number")

    def getbool(self, section: str, key: str, fallback: Any = _MISSING) -> bool:
        """Interpret 1/yes/true/on and 0/no/false/off, in any letter case."""
        return self._convert(section, key, fallback, _to_bool, "a boolean")

    def getlist(self, section: str, key: str, fallback: Any = _MISSING, *, sep: str = ",") -> List[str]:
        """Split the value at *sep* into stripped items; empty items are dropped."""
        return self._convert(section, key, fallback, lambda v: _split_list(v, sep), "a list")

    # -- mapping interface ---------------------------------------------------
    def __getitem__(self, section: str) -> "SectionProxy":
        self._values(section)
        return SectionProxy(self, section)

    def __contains__(self, section: object) -> bool:
        return section == DEFAULT_SECTION or section in self._sections

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def to_dict(self, raw: bool = False) -> Dict[str, Dict[str, str]]:
        """``{section: {key: value}}`` for every section (defaults merged in)."""
        return {name: dict(self[name].items(raw=raw)) for name in self._sections}

    def __repr__(self) -> str:
        return f"<Config sections={self.sections()!r}>"


class SectionProxy:
    """A read-mostly view of one section, as returned by ``config[name]``."""

    def __init__(self, config: Config, name: str) -> None:
        self._config = config
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __getitem__(self, key: str) -> str:
        try:
            return self._config.get(self._name, key)
        except NoOptionError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: str) -> None:
        self._config.set(self._name, key, value)

    def get(self, key: str, fallback: Optional[str] = None, *, raw: bool = False) -> Optional[str]:
        return self._config.get(self._name, key, fallback, raw=raw)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._config.has_option(self._name, key)

    def keys(self) -> List[str]:
        return self._config.options(self._name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def items(self, raw: bool = False) -> List[tuple]:
        """``(key, value)`` pairs of the section, including inherited defaults."""
        merged = dict(self._config._values(self._name))
        merged.update(self._config._defaults)
        if raw:
            return list(merged.items())
        return [(key, self._config._interpolate(self._name, key, value)) for key, value in merged.items()]

    def __repr__(self) -> str:
        return f"<Section [{self._name}]>"
