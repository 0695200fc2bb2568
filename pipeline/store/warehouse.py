"""The warehouse: the DuckDB file for aggregates (candles, changepoints, verdicts), with the
lake's Parquet as views; one writer at a time, readers on the snapshot of the last write."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import polars as pl

from pipeline import faults
from pipeline.store.lake import Lake, open_lake
from pipeline.store.tables import TABLES

SNAPSHOT = "warehouse.read.duckdb"  # what readers open: a copy published after each write


class WarehouseBusy(RuntimeError):
    """The warehouse is being written and there is no snapshot to read instead."""


class Warehouse:
    """A candlebench home's stored state: the lake, the DuckDB file, artifacts and the report."""

    def __init__(self, root: Path, lake: Lake | None = None) -> None:
        self.root = Path(root)
        self.lake = lake or open_lake(self.root)
        self.db_path = self.root / "warehouse.duckdb"
        self.artifacts = self.root / "artifacts"
        self.reports = self.root / "report"

    # --- DuckDB -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(
        self, wait_s: float = 60.0, dates: Iterable[str] | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one writer: waits for DuckDB's single-writer lock, and on success checkpoints and
        publishes a read snapshot before letting go, so that readers never wait for a writer.
        With `dates`, its lake views hold only those days' files (an incremental refresh reads
        what it recomputes, not all of history)."""
        connection = self.connect(wait_s=wait_s, dates=dates)
        try:
            yield connection
            connection.execute("CHECKPOINT")  # the file alone now holds every committed write
            scratch = self.root / f".{SNAPSHOT}.{os.getpid()}.tmp"
            shutil.copyfile(self.db_path, scratch)  # under the writer's lock: nobody else writes
            faults.point("snapshot_publish")
            os.replace(scratch, self.root / SNAPSHOT)
        finally:
            connection.close()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection that never waits for a writer: the warehouse file when it is
        newer than the last snapshot and free, else the snapshot of the last completed write."""
        snapshot = self.root / SNAPSHOT
        written = self.db_path.stat().st_mtime_ns if self.db_path.exists() else -1
        if snapshot.exists() and snapshot.stat().st_mtime_ns >= written:
            return self._views(duckdb.connect(str(snapshot), read_only=True))
        try:
            return self._views(duckdb.connect(str(self.db_path), read_only=True))
        except (duckdb.IOException, duckdb.ConnectionException) as err:
            if "lock" not in str(err).lower() and "configuration" not in str(err).lower():
                raise
            if snapshot.exists():
                return self._views(duckdb.connect(str(snapshot), read_only=True))
            raise WarehouseBusy(
                f"{self.db_path}: being written by another process and no read snapshot "
                "published yet (the first aggregation is still running); try again when "
                "it ends"
            ) from err

    def connect(
        self, read_only: bool = False, wait_s: float = 60.0, dates: Iterable[str] | None = None
    ) -> duckdb.DuckDBPyConnection:
        """A reader (`read_only`), or a write connection waiting for the single-writer lock;
        writers that should publish what they wrote use `writer()`."""
        if read_only:
            return self.reader()
        self.root.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                connection = duckdb.connect(str(self.db_path))
                break
            except duckdb.IOException as err:
                if "lock" not in str(err).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        stale = connection.execute(  # views of older versions held the home's absolute path
            "SELECT view_name FROM duckdb_views() WHERE NOT temporary AND NOT internal AND view_name IN "
            f"({', '.join('?' for _ in TABLES)})",
            list(TABLES),
        ).fetchall()
        for (name,) in stale:
            connection.execute(f"DROP VIEW {name}")
        return self._views(connection, dates)

    def _views(
        self, connection: duckdb.DuckDBPyConnection, dates: Iterable[str] | None = None
    ) -> duckdb.DuckDBPyConnection:
        """The lake's tables as views of this connection only (temporary), built from where the
        home is now: a copied, moved or restored home reads its own lake."""
        self.lake.register(connection)
        for table in TABLES:
            if (relation := self.lake.relation(table, dates)) is not None:
                connection.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS {relation}")
        return connection

    def scan(self, sql: str, params: list | dict | None = None) -> pl.DataFrame:
        """Query the lake's tables without opening the DuckDB file: safe while a writer holds it."""
        with self._views(duckdb.connect()) as connection:
            return connection.sql(sql, params=params).pl()

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """Run a read query and return a polars frame."""
        if not self.db_path.exists():
            self.connect().close()
        with self.reader() as connection:
            return connection.sql(sql, params=params).pl()
