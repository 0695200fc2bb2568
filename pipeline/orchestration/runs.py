"""Runs whose process died (kill -9, OOM, a closed terminal, a reboot) are failed and their pool
slots freed, so that the next run never waits forever on a slot nobody holds.

Every run that opens the tracker tags itself with its owner, `<host>:<pid>` (in the run worker,
whichever launched it: `candlebench backfill` in process, the daemon's run launcher, `dagster
asset materialize`). A run still STARTING, STARTED or CANCELING whose owner on this host is gone
is reported failed with the reason, and the slots it held are released. Dagster's own run
monitoring (dagster.yaml) covers the daemon's runs the same way when the daemon is up.
"""

from __future__ import annotations

import os
import socket

import dagster as dg

from pipeline.store.sweep import alive

OWNER_TAG = "candlebench/owner"
UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the unfinished runs whose owning process is gone; return their ids."""
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        host, _, pid = run.tags.get(OWNER_TAG, "").rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            f"the process running it (pid {pid} on {host}) is gone: killed, "
            "out of memory or rebooted; its pool slots are freed",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped
