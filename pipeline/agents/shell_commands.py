"""What an agent's shell command does, read from its text alone (nothing is run, no file is
looked at): whether it runs tests, which files it reads, whether it writes files.

These are heuristics over the command line, tested on the commands agents write: a test runner
at the start of a simple command (after `&&`, `;`, `|`, environment assignments and wrappers
such as `timeout 60`), a file operand of cat/head/tail/sed/grep/..., an in-place edit or a
redirection into a file. A Python one-liner that opens a file is neither read nor edit.
"""

from __future__ import annotations

import posixpath
import re
import shlex

# A command that runs tests: a test runner at the start of a simple command.
TEST_RUN = re.compile(
    r"""(?x)
    (?:^|&&|\|\||[;|&(\n`]|\$\()\s*                  # the start of a simple command
    (?:\w+=\S*\s+)*                                   # FOO=1 BAR=2
    (?:(?:timeout(?:\s+-\S+)*\s+\S+|time|nice|env|xvfb-run(?:\s+-a)?|stdbuf\s+\S+
        |(?:uv|poetry|pipenv|hatch|pdm|rye)\s+run|npx|bunx|(?:ba|z)?sh)\s+)*
    (?:\S*/)?                                         # ./, .venv/bin/, /app/
    (?:py\.?test|nosetests|nose2|tox|nox|ctest|rspec|phpunit|jest|vitest|mocha|ava|tap
      |python[\d.]*\s+(?:[^\s;&|]+\s+)*?-m\s+(?:pytest|unittest|nose2?|tox|nox)
      |python[\d.]*\s+(?:-\S+\s+)*\S*(?:manage\.py\s+test|runtests?\.py|setup\.py\s+test)
      |(?:npm|pnpm|yarn|bun)\s+(?:run\s+)?test(?::\S+)?
      |go\s+test|cargo\s+(?:test|nextest)|make\s+(?:test|check)\w*|dotnet\s+test|deno\s+test
      |(?:mvn|mvnw|gradle|gradlew)\b[^\n;&|]*\btest
      |\S*run_script\.sh|\S*runtests?\.sh|bundle\s+exec\s+(?:rspec|rake\s+test))
    (?![\w.-])
    """
)
# A command that writes files: in place, a patch, or output redirected into a file.
SHELL_EDIT = re.compile(
    r"""(?x)
    \bsed\s+(?:-[^\s-]*\s+)*-[a-zA-Z]*i | \bsed\b[^\n|;&]*\s--in-place
    | \bperl\s+(?:-\S+\s+)*-\w*i | \bgit\s+apply\b | \bapply_patch\b
    | \bpatch\s+(?:-\S+\s+)*(?:-p|<|\S+\.(?:diff|patch)\b)
    | \b(?:cat|printf|echo)\b[^\n|;&]*?(?<![\d&>])>>?\s*(?!/dev/null|&)['"]?[\w~.$/-]
    | \btee\s+(?:-a\s+)?(?!/dev/null)[\w~.$/-]
    """
)
SHELLS = ("bash", "sh", "zsh", "dash")
READERS = ("cat", "head", "tail", "less", "more", "nl", "bat", "batcat", "view", "sed", "awk")
SEARCHERS = ("grep", "egrep", "fgrep", "rg", "ag")
# options that take the next word as their value
VALUED = {
    "head": ("-n", "-c"),
    "tail": ("-n", "-c"),
    "sed": ("-e", "-f", "-l"),
    "awk": ("-f", "-v", "-F"),
    **dict.fromkeys(SEARCHERS, ("-e", "-f", "-m", "-A", "-B", "-C", "-g", "-t", "--max-count", "--glob")),
}
SEPARATORS = ("|", "||", "&&", ";", "&", "|&", "(", ")")


def unwrap(command: str) -> str:
    """The script of `bash -lc '...'` / `/bin/bash -c '...'` (how codex reports commands)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if len(words) == 3 and posixpath.basename(words[0]) in SHELLS and re.fullmatch(r"-l?i?c", words[1]):
        return words[2]
    return command


def runs_tests(command: str) -> bool:
    return TEST_RUN.search(command) is not None


def edits_files(command: str) -> bool:
    return SHELL_EDIT.search(command) is not None


def files_read(command: str) -> list[str]:
    """The files a command reads with cat, head, tail, less, sed (not in place), awk or grep-like
    searches of named files, in order; a recursive search and its folders are not reading a file."""
    found = []
    for words in simple_commands(command):
        while words and re.fullmatch(r"\w+=.*", words[0]):  # FOO=1 cat x
            words = words[1:]
        if not words:
            continue
        name = posixpath.basename(words[0])
        if name in READERS or name in SEARCHERS:
            found += _operands(name, words[1:])
    return [
        f for f in found if f not in ("-", ".", "..") and not f.endswith("/") and not f.startswith("/dev/")
    ]


def _operands(name: str, words: list[str]) -> list[str]:
    valued, operands = VALUED.get(name, ()), []
    scripted = skip = done = False  # a script or pattern given by -e/-f; an option's value next; after --
    for word in words:
        if skip:
            skip = False
        elif done or not word.startswith("-") or word == "-":
            operands.append(word)
        elif word == "--":
            done = True
        elif name == "sed" and re.fullmatch(r"-[a-zA-Z]*i\S*|--in-place\S*", word):
            return []  # an edit, not a read
        else:
            skip = word in valued
            scripted |= word in ("-e", "-f")
    if name in ("sed", "awk", *SEARCHERS) and not scripted:
        operands = operands[1:]  # the script or pattern comes first
    recursive = name in ("rg", "ag") or any(re.fullmatch(r"-\w*[rR]\w*|--recursive", w) for w in words)
    if name in SEARCHERS and recursive:
        operands = [o for o in operands if posixpath.splitext(o)[1]]  # files, not folders
    return operands


def simple_commands(command: str) -> list[list[str]]:
    """The words of each simple command, redirections and heredoc bodies left out."""
    out: list[list[str]] = [[]]
    for line in _lines(command):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes: read it as plain words
            words = line.split()
        redirect = False
        for i, word in enumerate(words):
            if redirect:
                redirect = False
            elif word in SEPARATORS:
                out.append([])
            elif set(word) <= set("<>&|") and ("<" in word or ">" in word):
                redirect = not word.endswith("&") or word == "&>"
            elif word.isdigit() and i + 1 < len(words) and words[i + 1][:1] in "<>":
                continue  # the 2 of 2>/dev/null
            else:
                out[-1].append(word)
        out.append([])
    return [words for words in out if words]


def _lines(command: str) -> list[str]:
    """The command's lines, heredoc bodies dropped (`cat > f <<'EOF' ... EOF`)."""
    lines, ending = [], None
    for line in command.splitlines():
        if ending is not None:
            if line.strip() == ending:
                ending = None
            continue
        lines.append(line)
        heredoc = re.search(r"<<-?\s*(['\"]?)([\w.-]+)\1", line)
        if heredoc and "<<<" not in line:
            ending = heredoc.group(2)
    return lines
