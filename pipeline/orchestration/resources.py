"""The Dagster resource that hands assets, sensors and schedules a Tracker."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipeline.config import home, load_config
from pipeline.orchestration.runs import OWNER_TAG, owner
from pipeline.tracker import Tracker


class TrackerResource(dg.ConfigurableResource):
    """Where state lives and which tracking config to use; empty means the defaults.

    Defaults: $CANDLEBENCH_HOME (else ./.candlebench), and $CANDLEBENCH_CONFIG (else the home's
    tracking.yaml, else the packaged demo config).
    """

    home: str = ""
    config_file: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Tag the run with the process running it, so a run whose process died can be told
        from one still working (orchestration/runs.py)."""
        if context.instance is not None and context.run is not None:
            context.instance.add_run_tags(context.run.run_id, {OWNER_TAG: owner()})

    def open(self) -> Tracker:
        config = load_config(Path(self.config_file) if self.config_file else None)
        root = Path(self.home) if self.home else home()
        key = (root, config.path, config.digest)
        if key not in _TRACKERS:
            _TRACKERS[key] = Tracker(root, config)
        return _TRACKERS[key]


# One Tracker per process, home and config version: the suite and sandbox are built once.
_TRACKERS: dict[tuple[Path, Path, str], Tracker] = {}
