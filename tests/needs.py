"""What a test needs from this machine (Docker, an image, a server, a fixture): skip with the
reason printed when it is missing, except under CI=true, where `.ci/run` provides it and a skip
would hide a broken install: there the test fails."""

from __future__ import annotations

import os

import pytest


def unavailable(reason: str, provided_by: str = ".ci/run provides it") -> None:
    print(reason)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: {provided_by})", pytrace=False)
    pytest.skip(reason)
