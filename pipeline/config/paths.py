"""Where candlebench keeps its state and finds its configuration."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import yaml

DEFAULTS = Path(__file__).resolve().parent.parent / "defaults"

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: workspace.yaml, dagster.yaml


def home() -> Path:
    """Where candlebench keeps its state: $CANDLEBENCH_HOME, else the checkout's .candlebench.

    The same from any folder: a command run elsewhere reads the home the demo wrote, not a new
    empty one. An installation without a checkout keeps its state in ~/.candlebench.
    """
    if explicit := os.environ.get("CANDLEBENCH_HOME"):
        return Path(explicit).resolve()
    if (PROJECT_ROOT / "workspace.yaml").is_file():
        return PROJECT_ROOT / ".candlebench"
    return Path.home() / ".candlebench"


def cli_cache_root() -> Path:
    """Where the pinned agent CLIs are kept: $CANDLEBENCH_CLIS (shareable), else the home's clis/."""
    explicit = os.environ.get("CANDLEBENCH_CLIS")
    return Path(explicit).resolve() if explicit else home() / "clis"


def config_path() -> Path:
    """$CANDLEBENCH_CONFIG, else the home's tracking.yaml, else the packaged default."""
    if explicit := os.environ.get("CANDLEBENCH_CONFIG"):
        return Path(explicit).resolve()
    pinned = home() / "tracking.yaml"
    return pinned if pinned.exists() else DEFAULTS / "tracking.yaml"


def pin_demo_config(today: dt.date, target: Path | None = None) -> Path:
    """Copy the packaged config and scenario into the home, pinning the scenario's start date.

    The demo's story is told in day numbers; pinning keeps later days consistent with the
    history built today. An existing pinned config is left alone.
    """
    target = target or home()
    target.mkdir(parents=True, exist_ok=True)
    config = target / "tracking.yaml"
    if config.exists():
        return config
    days = int(yaml.safe_load((DEFAULTS / "tracking.yaml").read_text())["history_days"])
    scenario_text = (DEFAULTS / "scenario.yaml").read_text()
    start = today - dt.timedelta(days=days - 1)
    scenario_text = scenario_text.replace("start_date: null ", f"start_date: {start.isoformat()}", 1)
    (target / "scenario.yaml").write_text(scenario_text)
    config_text = (DEFAULTS / "tracking.yaml").read_text()
    config.write_text(config_text.replace("start_date: null ", f"start_date: {start.isoformat()}", 1))
    return config
