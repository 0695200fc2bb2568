"""Guard rails for the package layout: the engine never imports Dagster, the packages import each
other without cycles, and files stay small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipeline"
# The Dagster glue and the command line (which starts Dagster) may import Dagster; nothing else.
GLUE = ("pipeline.definitions", "pipeline.orchestration", "pipeline.cli")
LARGEST_LINES = 330  # "no file much over 300 lines"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PIPELINE.rglob("*.py")):
        if "suites" in path.relative_to(PIPELINE).parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def module_imports(path: Path) -> set[str]:
    """Modules imported when `path` is imported: module level, outside `if TYPE_CHECKING`."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.ClassDef) else []:
            if isinstance(inner, ast.Import):
                names |= {a.name for a in inner.names}
            elif isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                names.add(inner.module)
                names |= {f"{inner.module}.{a.name}" for a in inner.names}
    return names


def all_imports(path: Path) -> set[str]:
    """Every module a file names in an import, wherever the import is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def engine() -> dict[str, Path]:
    return {
        name: path
        for name, path in modules().items()
        if not any(name == glue or name.startswith(glue + ".") for glue in GLUE)
    }


def test_no_engine_module_imports_dagster():
    offenders = {
        name: sorted(i for i in all_imports(path) if i.split(".")[0].startswith("dagster"))
        for name, path in engine().items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_importing_the_whole_engine_loads_no_dagster():
    """Transitively too: no engine module drags Dagster in through another library or module."""
    code = (
        "import importlib, sys\n"
        f"for name in {sorted(engine())!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_no_import_cycles_between_modules():
    known = modules()
    graph = {}
    for name, path in known.items():
        targets = set()
        for imported in module_imports(path):
            while imported and imported not in known:  # `pipeline.x.name` -> `pipeline.x`
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)  # a package importing its own submodules is its job
        graph[name] = targets
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target] if target in stack else [node, target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_module_much_over_300_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > LARGEST_LINES} == {}


EXTENSION = '''
from pipeline.agents.model import Attempt, now
from pipeline.sandbox.process import ProcessSandbox


class EchoAgent:
    """An adapter written outside the engine: it only answers with an empty patch."""

    SETTINGS: dict = {}
    needs_model = needs_price = False
    trusted_patches = True
    paid_work = False

    @classmethod
    def check_settings(cls, values, raw, at, base):
        return values

    @classmethod
    def build(cls, spec, world):
        agent = cls()
        agent.subject = spec.name
        return agent

    def version(self, on=None):
        return "echo/1"

    def solve(self, task, day, trial, folder=None):
        return Attempt(self.subject, task.instance_id, day, trial, now(), "", 0.0, 0, 0, 0, 0, 0.0,
                       "completed", self.version(), "", "")


class LoggedSandbox(ProcessSandbox):
    name = "logged"
'''


def test_an_adapter_and_a_sandbox_backend_are_each_one_file_and_one_registry_line(tmp_path, monkeypatch):
    """The registries are the only place that names implementations: a new file (here outside the
    repository) and one entry in ADAPTERS / BACKENDS make a configurable adapter and backend."""
    import datetime as dt

    import yaml

    from pipeline import agents, sandbox
    from pipeline.config import load_config

    (tmp_path / "cb_extension.py").write_text(EXTENSION)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(agents.ADAPTERS, "echo", "cb_extension:EchoAgent")
    monkeypatch.setitem(sandbox.BACKENDS, "logged", "cb_extension:LoggedSandbox")
    config = tmp_path / "tracking.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "suite": "demo",
                "sandbox": "logged",
                "trials": 1,
                "subjects": [{"name": "echo-1", "adapter": "echo"}],
            }
        )
    )
    loaded = load_config(config)
    (subject,) = loaded.subjects
    agent = agents.build_agent(
        subject, agents.AgentWorld(checkout=lambda task, path: None, transcripts=tmp_path)
    )
    assert agent.version() == "echo/1"
    assert type(sandbox.open_sandbox(loaded.sandbox)).__name__ == "LoggedSandbox"
    attempt = agent.solve(SimpleNamespace(instance_id="calc-1"), dt.date(2026, 12, 1), 1)
    assert (attempt.subject, attempt.exit_class) == ("echo-1", "completed")


def test_the_history_runner_reads_the_partitions_only_after_the_demo_pins_its_config():
    """Date partitions are fixed when `pipeline.orchestration.partitions` is imported (from the
    config's start_date): importing the runner must not import them, or `demo --end <day>` would
    build partitions from the unpinned config and refuse its own first day."""
    probe = (
        "import sys, pipeline.orchestration.history, pipeline.cli.history; "
        "print(sorted(m for m in sys.modules if m in ('pipeline.definitions', "
        "'pipeline.orchestration.partitions')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
