"""A small Dockerfile step runner for builds Docker's own builders refuse here.

Debian's Docker 20.10 builders (classic and BuildKit alike) reject the RUN heredocs that
SWE-Bench-Pro's Dockerfiles use, so their instructions are executed here: each RUN in a
container of the previous step, committed with the image config built so far. It knows FROM,
RUN (heredocs included), ENV, WORKDIR, ENTRYPOINT and CMD, and refuses anything else. A caller
may replace a RUN by a script of its own (e.g. a clone filled offline); steps are cached by a
label, as Docker caches them.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.sandbox.daemon import DockerDaemon

STEP_LABEL = "candlebench.build.step"
BUILD_MOUNT = "/mnt"  # empty in every Debian image, so mounting over it commits nothing
STEP_TIMEOUT_S = 3600
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


class DockerfileError(RuntimeError):
    """The image cannot be built from these inputs; the message says why and where."""


Replacement = Callable[["Instruction"], "tuple[str, str] | None"]  # -> (script, what it replaces)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    value: str  # for RUN with heredocs: the command line followed by the heredocs, as BuildKit runs it
    line: int  # where it starts in the Dockerfile, from 1


def _heredoc_bodies(lines: list[str], start: int, command: str) -> tuple[str, int]:
    """`command` with its heredoc bodies appended (BuildKit's shell form), and the next line index."""
    script, i = command, start
    for match in _HEREDOC.finditer(command):
        strip_tabs, name = match.group(1) == "-", match.group(3)
        body = []
        while i < len(lines) and (lines[i].lstrip("\t") if strip_tabs else lines[i]) != name:
            body.append(lines[i] + "\n")
            i += 1
        if i == len(lines):
            raise DockerfileError(f"heredoc {name} opened on line {start} is never closed")
        script += "\n" + "".join(body) + name
        i += 1
    return script, i


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, continuations joined, RUN heredocs kept."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        start, line = i + 1, lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        logical = line
        while logical.endswith("\\"):
            logical = logical[:-1]
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1  # Docker drops comment and blank lines inside a continuation
            if i < len(lines):
                logical += lines[i]
                i += 1
        keyword, _, value = logical.strip().partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "RUN" and not value.startswith("[") and _HEREDOC.search(value):
            value, i = _heredoc_bodies(lines, i, value)
        found.append(Instruction(keyword, value, start))
    return found


def parse_env(value: str) -> list[tuple[str, str]]:
    """(name, value) pairs of an ENV instruction, both forms; variable references are refused."""
    if "$" in value:
        raise DockerfileError(f"ENV {value}: variable references are not supported by this builder")
    words = shlex.split(value)
    if words and "=" not in words[0]:  # legacy `ENV NAME value with spaces`
        name, _, rest = value.partition(" ")
        return [(name, rest.strip())]
    pairs = [word.partition("=") for word in words]
    if not pairs or any(not name or sep != "=" for name, sep, _ in pairs):
        raise DockerfileError(f"ENV {value}: expected NAME=value pairs")
    return [(name, setting) for name, _, setting in pairs]


def command_form(value: str) -> list[str]:
    """argv of a RUN, CMD or ENTRYPOINT: the exec form as written, the shell form under /bin/sh -c."""
    if value.startswith("["):
        try:
            argv = json.loads(value)
        except json.JSONDecodeError as err:
            raise DockerfileError(f"{value}: not a JSON array: {err}") from err
        if not isinstance(argv, list) or not all(isinstance(word, str) for word in argv):
            raise DockerfileError(f"{value}: the exec form must be a list of strings")
        return argv
    return ["/bin/sh", "-c", value]


@dataclass
class Stage:
    """The image config a Dockerfile has built so far, on top of image `image`."""

    image: str
    env: dict[str, str]
    workdir: str
    entrypoint: list[str]
    cmd: list[str] | None
    labels: dict[str, str]
    cmd_set: bool = False  # CMD given in this Dockerfile: ENTRYPOINT then keeps it

    @classmethod
    def of(cls, daemon: DockerDaemon, image: str) -> Stage:
        config = daemon.image_config(image)
        env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
        return cls(
            image,
            env,
            config.get("WorkingDir") or "/",
            list(config.get("Entrypoint") or []),
            config.get("Cmd"),
            dict(config.get("Labels") or {}),
        )

    def config(self, labels: Mapping[str, str] | None = None) -> dict:
        """The config to commit: Docker's merge keeps nothing of the step container's own."""
        return {
            "Env": [f"{k}={v}" for k, v in self.env.items()],
            "WorkingDir": self.workdir,
            "Entrypoint": self.entrypoint,
            "Cmd": self.cmd,
            "Labels": {**self.labels, **(labels or {})},
            "User": "",
        }

    def apply(self, instruction: Instruction) -> None:
        """ENV, WORKDIR, ENTRYPOINT and CMD change only the config, as in Docker."""
        keyword, value = instruction.keyword, instruction.value
        if keyword == "ENV":
            self.env.update(parse_env(value))
        elif keyword == "WORKDIR":  # created by the next step's container, as Docker does
            if "$" in value:
                raise DockerfileError(f"WORKDIR {value}: variable references are not supported")
            self.workdir = posixpath.normpath(posixpath.join(self.workdir, value))
        elif keyword == "ENTRYPOINT":
            self.entrypoint = command_form(value)
            if not self.cmd_set:
                self.cmd = None  # an inherited CMD does not survive a new ENTRYPOINT
        elif keyword == "CMD":
            self.cmd, self.cmd_set = command_form(value), True


@dataclass
class BuildLog:
    """Where each step's output goes: a file, and the last lines kept for an error message."""

    path: Path
    tail: list[str] = field(default_factory=list)

    def add(self, chunk: bytes) -> None:
        with self.path.open("ab") as handle:
            handle.write(chunk)
        self.tail = (self.tail + chunk.decode("utf-8", errors="replace").splitlines())[-40:]


@dataclass
class StepRunner:
    """Runs Dockerfile instructions through DockerDaemon, one committed image per RUN."""

    daemon: DockerDaemon
    context: Path  # mounted read-only at BUILD_MOUNT in every RUN step
    build_env: list[str]  # NAME=value for RUN processes only, never committed
    log: Callable[[str], None]
    output: BuildLog
    replace: Replacement = lambda instruction: None  # noqa: E731 - by default every RUN runs as written
    replaced_inputs: str = ""  # a digest of what replacement scripts read: part of their cache key
    use_cache: bool = True

    def run_dockerfile(self, name: str, instructions: list[Instruction], stage: Stage) -> Stage:
        """Apply `instructions` after their FROM on `stage`; the stage holding the last image."""
        for number, instruction in enumerate(instructions[1:], 2):
            started = time.monotonic()
            shown = instruction.value.splitlines()[0][:90]
            self.log(f"[{name} {number}/{len(instructions)}] {instruction.keyword} {shown}")
            if instruction.keyword == "RUN":
                stage.image = self._run(instruction, stage)
                self.log(f"      {time.monotonic() - started:.0f}s")
            elif instruction.keyword in ("ENV", "WORKDIR", "ENTRYPOINT", "CMD"):
                stage.apply(instruction)
            else:
                raise DockerfileError(
                    f"{name} Dockerfile line {instruction.line}: {instruction.keyword} "
                    "is not supported by this builder"
                )
        return stage

    def _run(self, instruction: Instruction, stage: Stage) -> str:
        """One RUN step's committed image, from the step cache when the same step ran before."""
        replaced = self.replace(instruction)
        if replaced is not None:
            script, note = replaced
            self.log(f"      offline: {note}")
            argv = ["/bin/sh", "-c", script]
        else:
            argv = command_form(instruction.value)
        config = stage.config()
        key = hashlib.sha256(
            json.dumps([stage.image, argv, config, self.replaced_inputs if replaced else ""]).encode()
        ).hexdigest()
        if self.use_cache and (cached := self.daemon.images_labelled({STEP_LABEL: key})):
            self.log("      cached")
            return cached[0]
        config["Labels"][STEP_LABEL] = key
        exit_code, image = self.daemon.commit_step(
            stage.image,
            ["/usr/bin/env", *self.build_env, *argv],
            config,
            {str(self.context): BUILD_MOUNT},
            STEP_TIMEOUT_S,
            self.output.add,
        )
        if image is None:
            status = "timed out" if exit_code is None else f"exited {exit_code}"
            tail = "\n".join(self.output.tail[-25:])
            raise DockerfileError(
                f"line {instruction.line} (RUN {instruction.value.splitlines()[0][:80]}) "
                f"{status}; its last lines:\n{tail}\nfull log: {self.output.path}"
            )
        self.check_config(image, config)
        return image

    def check_config(self, image: str, expected: Mapping) -> None:
        """Docker's commit merges the step container's config in: make sure nothing leaked."""
        found = self.daemon.image_config(image)
        for key in ("Env", "Entrypoint", "Cmd", "WorkingDir", "Labels"):
            if (found.get(key) or None) != (expected.get(key) or None):
                raise DockerfileError(
                    f"committed image {image[7:19]} has {key}={found.get(key)!r}, "
                    f"expected {expected.get(key)!r}"
                )


def host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts, if it has one on file."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def from_of(instructions: list[Instruction], where: str) -> str:
    """The image a Dockerfile starts FROM (its first instruction must be FROM)."""
    if not instructions or instructions[0].keyword != "FROM":
        raise DockerfileError(f"{where}: the first instruction is not FROM")
    if any(i.keyword == "FROM" for i in instructions[1:]):
        raise DockerfileError(f"{where}: multi-stage Dockerfiles are not supported by this builder")
    words = instructions[0].value.split()
    if not words or words[0].startswith("--"):
        raise DockerfileError(f"{where}: FROM {instructions[0].value} is not supported by this builder")
    return words[0]
