"""Screenshots of the Dagster UI and the HTML report, taken in headless Chromium.

    python docs/screenshots.py [--home .candlebench]

Starts dagster-webserver on the home's instance (the demo history; built in a temporary home
when --home is not given), loads the `tracker_report` asset page, the asset graph and the HTML
report in Debian's `chromium` (apt-get install chromium), and writes PNGs beside this script.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def shoot(url: str, target: Path, size: str = "1500,1100", wait_ms: int = 20000) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                f"--virtual-time-budget={wait_ms}",
                f"--screenshot={target}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="a candlebench home holding the demo history")
    args = parser.parse_args()
    scratch = None
    if args.home:
        os.environ["CANDLEBENCH_HOME"] = str(Path(args.home).resolve())
    else:
        scratch = tempfile.mkdtemp(prefix="cb-docs-")
        os.environ["CANDLEBENCH_HOME"] = scratch
        os.environ.pop("DAGSTER_HOME", None)
    from pipeline.orchestration.history import build_demo, prepare_dagster_home

    if scratch:
        build_demo(progress=print)
    dagster_home = prepare_dagster_home()
    # Dagster shows a newsletter prompt on an instance's first visit; it would cover the page.
    (dagster_home / ".nux").mkdir(exist_ok=True)
    (dagster_home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(ROOT / "workspace.yaml"), "-p", str(port)],
        cwd=dagster_home,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(1)
        shoot(f"{base}/assets/tracker_report", DOCS / "ui-tracker-report.png")
        shoot(f"{base}/asset-groups", DOCS / "ui-asset-graph.png", size="1500,900")
        report = Path(os.environ["CANDLEBENCH_HOME"]) / "report" / "index.html"
        shoot(report.as_uri(), DOCS / "report.png", size="1100,1800", wait_ms=3000)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
