"""Serialise a :class:`~iniconf.config.Config` back to INI text.

The output parses back to the same raw values: values that the parser would
otherwise change (surrounding whitespace, quotes, comment characters) are
written in double quotes with ``\\`` and ``"`` escaped, and the lines of a
multi-line value after the first are indented.
"""
from __future__ import annotations

from typing import Dict, TextIO

from .config import DEFAULT_SECTION, Config


def _needs_quotes(value: str) -> bool:
    if not value:
        return False
    if '"' in value or value[0] in "#;":
        return True
    return any(
        char in "#;" and value[index - 1].isspace() for index, char in enumerate(value) if index
    )


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_value(value: str) -> str:
    if _needs_quotes(value):
        return _quote(value)
    return value


def _format_section(name: str, values: Dict[str, str]) -> str:
    lines = [f"[{name}]"]
    for key, value in values.items():
        text = _format_value(value)
        lines.append(f"{key} = {text}" if text else f"{key} =")
    return "\n".join(lines) + "\n"


def dumps(config: Config) -> str:
    """Return *config* as INI text (raw values, no interpolation)."""
    chunks = []
    if config.defaults():
        chunks.append(_format_section(DEFAULT_SECTION, config.defaults()))
    for name in config.sections():
        chunks.append(_format_section(name, config._values(name)))
    return "\n".join(chunks)


def dump(config: Config, fh: TextIO) -> None:
    """Write *config* to the open text file *fh*."""
    fh.write(dumps(config))
