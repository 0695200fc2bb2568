"""What running an agent CLI in the task's container costs per attempt, against the host.

    python benchmarks/agent_overhead.py [--runs 5] [--clis claude-code,codex] [--tasks demo,pro]
        [--out benchmarks/results/agent_overhead.json]

Each attempt is the real, pinned CLI (from the CLI cache) solving one task against the scripted
model (same script, same responses) through `WorkspaceAgent.solve`: workspace, the CLI's run,
patch extraction. `host` runs the CLI as a process in the workspace; `container` runs it in a
fresh container of the task's image (the demo image, or the SWE-Bench-Pro fixture's own) with
network none and the relay. Runs alternate host/container, so both see the same machine load;
"difference" is the median of the paired differences, "ratio" the median of the paired ratios.

The difference is not all overhead: in the container the CLI's test step really runs the task's
tests (on the host a Pro task's cannot: no toolchain), and the CLI itself may do less with nothing
reachable. The container's fixed cost is its own breakdown from the runtime's timings: "prepare"
(the workspace handed to the sandbox uid), "start" (container created and started, the relay
listening); "fixed" = prepare + start. Patch extraction (`git diff` of /app on the host) is timed
on its own for both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from record import UNAVAILABLE, result_path, write_result  # benchmarks/record.py (its folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from pipeline.agents import AgentWorld, build_agent  # noqa: E402
from pipeline.agents import scripted_model as sm  # noqa: E402
from pipeline.agents.workspace import Workspace  # noqa: E402
from pipeline.config import PROJECT_ROOT, load_config  # noqa: E402

VERSIONS = {"claude-code": "2.1.328", "codex": "0.171.0"}
MODELS = {"claude-code": "claude-sonnet-4-5", "codex": "gpt-5.5"}
FIXTURE = PROJECT_ROOT.parent / "shared" / "fixtures" / "swe-bench-pro"
KEY = "sk-bench-0123456789"


def _subject(cli: str, url: str, runtime: str, folder: Path):
    if cli == "claude-code":
        settings = {"cli_version": VERSIONS[cli], "base_url": url, "runtime": runtime}
    else:
        settings = {
            "cli_version": VERSIONS[cli],
            "runtime": runtime,
            "config": {
                "model_provider": "scripted",
                "model_providers.scripted.name": "scripted",
                "model_providers.scripted.base_url": f"{url}/v1",
                "model_providers.scripted.wire_api": "responses",
                "model_providers.scripted.env_key": "OPENAI_API_KEY",
            },
        }
    entry = {"name": f"{cli}-{runtime}", "adapter": cli, "model": MODELS[cli], "settings": settings}
    path = folder / f"{cli}-{runtime}.yaml"
    prices = {MODELS["codex"]: {"input": 1.25, "cached_input": 0.125, "output": 10.0}}
    path.write_text(yaml.safe_dump({"trials": 1, "prices": prices, "subjects": [entry]}))
    return load_config(path).subjects[0]


def _tasks(which: list[str], scratch: Path, daemon):
    from pipeline.tasks.demo import DemoSuite

    out = {}
    if "demo" in which:
        suite = DemoSuite(scratch / "repos")
        task = next(t for t in suite.tasks() if t.instance_id == "demo__calcexpr-001")
        out["demo"] = (suite, task)
    if "pro" in which:
        from pipeline.tasks.pro import RowSuite

        if not (FIXTURE / "rows.jsonl").is_file():
            print(f"pro: fixture not found at {FIXTURE}: skipped")
        else:
            suite = RowSuite(FIXTURE / "rows.jsonl", scratch / "pro-home", daemon=daemon)
            out["pro"] = (suite, suite.tasks()[0])
    return out


def _one(cli, runtime, suite, task, sandbox, scratch: Path, n: int) -> dict:
    with sm.ScriptedModel(sm.script_for_task(task)) as server:
        spec = _subject(cli, server.url, runtime, scratch)
        world = AgentWorld(
            suite.checkout, scratch / "transcripts", image_of=suite.image, sandbox=lambda: sandbox
        )
        agent = build_agent(spec, world)
        folder = scratch / f"{cli}-{runtime}-{task.instance_id[:24]}-{n}"
        started = time.monotonic()
        attempt = agent.solve(task, dt.date(2026, 11, 20), 0, folder=folder)
        wall = time.monotonic() - started
    clock = time.monotonic()
    Workspace(folder, folder / "workspace", folder / "home", task.base_commit).diff()
    diff_s = time.monotonic() - clock
    if release := getattr(suite.checkout, "release", None):  # a Pro work tree is an overlay mount
        release(folder / "workspace")
    row = {"wall_s": wall, "exit_class": attempt.exit_class, "diff_s": diff_s, "turns": attempt.turns}
    if runtime == "container":
        timings = agent.runtime.last
        row |= {"prepare_s": timings.prepare_s, "start_s": timings.start_s, "cli_s": timings.run_s}
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clis", default="claude-code,codex")
    parser.add_argument("--tasks", default="demo,pro")
    parser.add_argument("--quick", action="store_true", help="1 run, codex only, the demo task")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = result_path("agent_overhead", args.quick, args.out)
    if args.quick:
        args.runs, args.clis, args.tasks = 1, "codex", "demo"
    os.environ.setdefault("CANDLEBENCH_CLIS", str(PROJECT_ROOT / ".candlebench" / "clis"))
    os.environ["ANTHROPIC_API_KEY"] = os.environ["OPENAI_API_KEY"] = KEY
    from pipeline.sandbox import SandboxUnavailable
    from pipeline.sandbox.docker import DockerSandbox

    clis = Path(os.environ["CANDLEBENCH_CLIS"])
    if not clis.is_dir() or not any(clis.iterdir()):
        print(f"no agent CLIs in the CLI cache {clis} (candlebench agents install ...)", file=sys.stderr)
        return UNAVAILABLE
    try:
        sandbox = DockerSandbox()
    except SandboxUnavailable as err:
        print(f"docker sandbox unavailable: {err}", file=sys.stderr)
        return UNAVAILABLE
    rows = []
    with tempfile.TemporaryDirectory(prefix="cb-agent-overhead-", ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp)
        tasks = _tasks(args.tasks.split(","), scratch, sandbox.daemon)
        for name, (suite, task) in tasks.items():
            for cli in args.clis.split(","):
                pairs = []
                for n in range(args.runs + 1):  # the first pair warms caches (image, checkout) and is dropped
                    host = _one(cli, "host", suite, task, sandbox, scratch, n)
                    box = _one(cli, "container", suite, task, sandbox, scratch, n)
                    if n:
                        pairs.append((host, box))
                rows.append(_summary(name, cli, pairs))
                print(_line(rows[-1]), flush=True)
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "rows": rows,
    }
    print(_table(rows))
    print(f"load average {result['load_average'][0]:.1f} on {result['cpus']} CPUs")
    print(f"wrote {write_result(args.out, result)}")
    return 0


def _median(values) -> float:
    return round(statistics.median(values), 3)


def _summary(task: str, cli: str, pairs: list[tuple[dict, dict]]) -> dict:
    return {
        "task": task,
        "cli": cli,
        "host_s": _median(h["wall_s"] for h, _ in pairs),
        "container_s": _median(b["wall_s"] for _, b in pairs),
        "overhead_s": _median(b["wall_s"] - h["wall_s"] for h, b in pairs),
        "ratio": _median(b["wall_s"] / h["wall_s"] for h, b in pairs),
        "prepare_s": _median(b["prepare_s"] for _, b in pairs),
        "start_s": _median(b["start_s"] for _, b in pairs),
        "cli_in_container_s": _median(b["cli_s"] for _, b in pairs),
        "fixed_s": _median(b["prepare_s"] + b["start_s"] for _, b in pairs),
        "patch_extraction_s": _median(b["diff_s"] for _, b in pairs),
        "patch_extraction_host_s": _median(h["diff_s"] for h, _ in pairs),
        "exit_classes": sorted({h["exit_class"] for h, _ in pairs} | {b["exit_class"] for _, b in pairs}),
    }


HEADER = (
    f"{'task':<5} {'cli':<12} {'host':>7} {'container':>9} {'difference':>10} {'ratio':>6} "
    f"{'prepare':>7} {'start':>6} {'fixed':>6} {'patch (host)':>13}"
)


def _line(r: dict) -> str:
    patch = f"{r['patch_extraction_s']:.2f}s ({r['patch_extraction_host_s']:.2f}s)"
    return (
        f"{r['task']:<5} {r['cli']:<12} {r['host_s']:>6.2f}s {r['container_s']:>8.2f}s "
        f"{r['overhead_s']:>9.2f}s {r['ratio']:>5.2f}x {r['prepare_s']:>6.2f}s {r['start_s']:>5.2f}s "
        f"{r['fixed_s']:>5.2f}s {patch:>13}"
    )


def _table(rows: list[dict]) -> str:
    return "\n".join([HEADER, "-" * len(HEADER), *map(_line, rows)])


if __name__ == "__main__":
    raise SystemExit(main())
