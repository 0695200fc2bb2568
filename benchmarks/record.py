"""Where every benchmark writes its JSON result."""

from __future__ import annotations

import json
from pathlib import Path


def write_result(out: str | Path, result: dict) -> Path:
    """Write `result` as indented JSON to `out` (folders made as needed); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def result_path(name: str, quick: bool = False, out: str | Path | None = None) -> Path:
    """`out` when given, else benchmarks/results/<name>.json (<name>-quick.json in quick mode,
    so a quick run never overwrites the full results)."""
    if out is not None:
        return Path(out)
    return Path(__file__).parent / "results" / f"{name}{'-quick' if quick else ''}.json"


UNAVAILABLE = 3  # exit status of a benchmark that cannot run on this machine (no Docker, no fixture)
