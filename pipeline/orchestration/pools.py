"""Dagster's pools sized from the tracking config: one writer of the DuckDB file, and as many
partitions grading (or running agents) at once as the config's `sandbox_workers`."""

from __future__ import annotations

from typing import Protocol

import dagster as dg

WAREHOUSE_POOL = "warehouse"  # the assets that write the DuckDB file
SANDBOX_POOL = "sandbox"  # the assets that start agent and grading containers


class PoolSettings(Protocol):
    sandbox_workers: int


def size_pools(instance: dg.DagsterInstance, settings: PoolSettings | None) -> dict[str, int]:
    """Set the pools' slots (as `dagster instance concurrency set POOL N` would); returns them.

    Without settings (an unreadable tracking config) the sandbox pool keeps what it has: the
    config's error is reported where the config is used, and dagster.yaml's default applies.
    """
    wanted = {WAREHOUSE_POOL: 1}  # DuckDB has one writer: so does its pool
    if settings is not None:
        wanted[SANDBOX_POOL] = settings.sandbox_workers
    storage = instance.event_log_storage
    for pool, slots in wanted.items():
        if storage.get_concurrency_info(pool).slot_count != slots:
            storage.set_concurrency_slots(pool, slots)
    return wanted
