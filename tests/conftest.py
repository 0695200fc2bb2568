"""Shared fixtures: a demo suite with a warm grade cache, and one demo history built through Dagster.

The code location reads its home's tracking config when it is first imported (where date
partitions start, the cron); a real process serves one home. This test process serves many, so
before any test module imports the definitions it gets a home of its own whose partitions start
early enough for every test's dates.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest

DEMO_END = dt.date(2026, 11, 27)
PARTITIONS_START = DEMO_END - dt.timedelta(days=180)


def _session_home() -> Path:
    from pipeline.config import pin_demo_config

    root = Path(tempfile.mkdtemp(prefix="cb-test-home-"))
    config = pin_demo_config(DEMO_END, root)
    text = config.read_text()
    start = text.split("start_date: ", 1)[1].split()[0]
    config.write_text(text.replace(f"start_date: {start}", f"start_date: {PARTITIONS_START}", 1))
    return root


os.environ["CANDLEBENCH_HOME"] = str(_session_home())
os.environ.pop("CANDLEBENCH_CONFIG", None)

from needs import unavailable  # noqa: E402 (tests/ is on sys.path)

from pipeline.grading import Grader  # noqa: E402
from pipeline.sandbox import DEMO_IMAGE  # noqa: E402
from pipeline.sandbox.process import ProcessSandbox  # noqa: E402
from pipeline.tasks.demo import DemoSuite  # noqa: E402


@pytest.fixture(scope="session")
def suite(tmp_path_factory) -> DemoSuite:
    return DemoSuite(tmp_path_factory.mktemp("repos"))


@pytest.fixture(scope="session")
def grader(suite, tmp_path_factory) -> Grader:
    return Grader(suite.checkout, ProcessSandbox(), tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A candlebench home holding the full 95-day demo history, built through real Dagster runs."""
    from pipeline.orchestration.history import build_demo

    root = tmp_path_factory.mktemp("demo-home")
    saved = {k: os.environ.get(k) for k in ("CANDLEBENCH_HOME", "DAGSTER_HOME", "CANDLEBENCH_CONFIG")}
    os.environ["CANDLEBENCH_HOME"] = str(root)
    os.environ.pop("DAGSTER_HOME", None)
    os.environ.pop("CANDLEBENCH_CONFIG", None)
    build_demo(DEMO_END, progress=lambda _: None)
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def docker_client():
    """docker-py's client of this machine's daemon, with the demo image present."""
    try:
        import docker

        found = docker.from_env(timeout=60)
        found.ping()
        found.images.get(DEMO_IMAGE)
    except Exception as err:  # docker raises several unrelated types here
        unavailable(f"Docker daemon or {DEMO_IMAGE} not available: {err}", ".ci/docker.sh")
    return found
