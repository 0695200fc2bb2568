"""Which files configure or extend pytest, and the test sections of shared config files.

pytest is configured by conftest.py at any depth, pytest.ini/.pytest.ini/pytest.toml, the test
sections of tox.ini, setup.cfg and pyproject.toml, and the plugins those name; the interpreter
is extended at start-up by sitecustomize.py/usercustomize.py and .pth files. These helpers read
those files as data (never import them) so `tamper` can tell a test-section edit from any other.
"""

from __future__ import annotations

import ast
import configparser
import re
import shlex
import tomllib

CONFTEST = "conftest.py"
WHOLE_CONFIGS = frozenset({"pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml"})
SECTIONED_CONFIGS = frozenset({"tox.ini", "setup.cfg", "pyproject.toml"})
INI_SECTIONS = {"tox.ini": ("pytest",), "setup.cfg": ("tool:pytest", "pytest")}
STARTUP_FILES = frozenset({"sitecustomize.py", "usercustomize.py"})
# Top-level names that would shadow the runner or its plugin manager if they were ever importable.
SHADOWING = frozenset({"pytest.py", "pytest", "_pytest", "pluggy", "py.py"})
PLUGIN_ROOTS = ("", "src/")  # where `-p a.b` or `pytest_plugins = ["a.b"]` finds a.b in a repo


def plugin_names(config_text: str, name: str) -> list[str]:
    """Plugins a config file or conftest names: `-p x` in addopts, `pytest_plugins = [...]`."""
    names: list[str] = []
    if name == CONFTEST:
        try:
            tree = ast.parse(config_text)
        except SyntaxError:
            return []
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
            ):
                value = node.value
                items = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
                names += [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
        return names
    for addopts in addopts_of(config_text, name):
        try:
            words = shlex.split(addopts)
        except ValueError:
            words = addopts.split()
        for i, word in enumerate(words):
            if word == "-p" and i + 1 < len(words):
                names.append(words[i + 1])
            elif word.startswith("-p") and len(word) > 2:
                names.append(word[2:].lstrip("="))
    return [n for n in names if not n.startswith("no:")]


def addopts_of(text: str, name: str) -> list[str]:
    """The addopts values of a config file, whatever its format; [] when unreadable."""
    if name.endswith(".toml"):
        section = toml_pytest(text, name)
        values = [section.get("addopts"), (section.get("ini_options") or {}).get("addopts")]
        return [
            " ".join(shlex.quote(v) for v in value) if isinstance(value, list) else str(value)
            for value in values
            if value
        ]
    parser = read_ini(text)
    if parser is None:
        return []
    sections = INI_SECTIONS.get(name, ("pytest",))
    return [parser[s]["addopts"] for s in sections if parser.has_section(s) and "addopts" in parser[s]]


def module_files(module: str) -> list[str]:
    rel = module.replace(".", "/")
    return [f"{root}{rel}{suffix}" for root in PLUGIN_ROOTS for suffix in (".py", "/__init__.py")]


def read_ini(text: str) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return parser


def toml_pytest(text: str, name: str) -> dict:
    """pytest's table of a TOML config: [tool.pytest] (with ini_options), or the whole pytest.toml."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {"<unreadable>": text}
    if name in ("pytest.toml", ".pytest.toml"):
        return data
    tool = data.get("tool")
    return tool.get("pytest", {}) if isinstance(tool, dict) else {}


def runner_section(text: str | None, name: str) -> object:
    """The part of a sectioned config that configures pytest, comparable between two versions."""
    if text is None:
        return None
    if name == "pyproject.toml":
        return toml_pytest(text, name) or None
    parser = read_ini(text)
    if parser is None:
        return {"<unreadable>": text}
    found = {s: dict(parser[s]) for s in INI_SECTIONS[name] if parser.has_section(s)}
    return found or None


def _ini_blocks(text: str, wanted) -> tuple[list[str], list[str], int]:
    """Split INI/TOML text into (lines outside the wanted tables, lines of them, index of the first)."""
    outside, inside, first, keep = [], [], -1, True
    for line in text.splitlines(keepends=True):
        header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:[#;].*)?$", line)
        if header:
            keep = not wanted(header.group(1))
            if not keep and first < 0:
                first = len(outside)
        (outside if keep else inside).append(line)
    return outside, inside, first


def splice_test_section(patched: str, base: str | None, name: str) -> str | None:
    """`patched` with its pytest tables replaced by base's, or None when that cannot be done exactly."""
    if name == "pyproject.toml":

        def wanted(table: str) -> bool:
            return table == "tool.pytest" or table.startswith("tool.pytest.")
    else:
        sections = INI_SECTIONS[name]

        def wanted(table: str) -> bool:
            return table in sections

    outside, _, first = _ini_blocks(patched, wanted)
    _, base_inside, _ = _ini_blocks(base or "", wanted)
    if base_inside and outside and not outside[-1].endswith("\n"):
        outside[-1] += "\n"
    at = first if first >= 0 else len(outside)
    spliced = "".join(outside[:at] + base_inside + outside[at:])
    if runner_section(spliced, name) != runner_section(base, name):
        return None  # dotted keys, inline tables, odd layouts: the caller restores the whole file
    if name == "pyproject.toml" and _without_pytest(spliced) != _without_pytest(patched):
        return None
    return spliced


def _without_pytest(text: str) -> object:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return text
    if isinstance(data.get("tool"), dict):
        data["tool"].pop("pytest", None)
        if not data["tool"]:
            data.pop("tool")
    return data
