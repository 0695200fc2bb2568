"""Shared fixtures: a demo suite with a warm grade cache, and one demo history built through Dagster."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from pipeline.demo_suite import DemoSuite
from pipeline.grading import Grader
from pipeline.sandbox import ProcessSandbox

DEMO_END = dt.date(2026, 11, 27)


@pytest.fixture(scope="session")
def suite(tmp_path_factory) -> DemoSuite:
    return DemoSuite(tmp_path_factory.mktemp("repos"))


@pytest.fixture(scope="session")
def grader(suite, tmp_path_factory) -> Grader:
    return Grader(suite.checkout, ProcessSandbox(), tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A candlebench home holding the full 95-day demo history, built through real Dagster runs."""
    from pipeline.history import build_demo

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
