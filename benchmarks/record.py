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
