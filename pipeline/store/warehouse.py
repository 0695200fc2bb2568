"""The warehouse: the DuckDB file for aggregates (candles, changepoints, verdicts), whose views
read the lake's Parquet directly; one writer at a time, readers open it read-only."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import polars as pl

from pipeline.store.lake import Lake
from pipeline.store.tables import TABLES


class Warehouse:
    """A candlebench home's stored state: the lake, the DuckDB file, artifacts and the report."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.lake = Lake(self.root / "lake")
        self.db_path = self.root / "warehouse.duckdb"
        self.artifacts = self.root / "artifacts"
        self.reports = self.root / "report"

    # --- DuckDB -----------------------------------------------------------------------------

    def connect(self, read_only: bool = False, wait_s: float = 60.0) -> duckdb.DuckDBPyConnection:
        """Open the DuckDB file. Writers wait for the single-writer lock instead of failing."""
        self.root.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                connection = duckdb.connect(str(self.db_path), read_only=read_only)
                break
            except duckdb.IOException as err:
                if "lock" not in str(err).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        if not read_only:
            self._create_views(connection)
        return connection

    def _create_views(self, connection: duckdb.DuckDBPyConnection) -> None:
        for table in TABLES:
            if self.lake.has_files(table):
                connection.execute(
                    f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM "
                    f"read_parquet('{self.lake.glob(table)}', union_by_name = true)"
                )

    def scan(self, sql: str, params: list | dict | None = None) -> pl.DataFrame:
        """Query the lake's tables without opening the DuckDB file: safe while a writer holds it."""
        with duckdb.connect() as connection:
            self._create_views(connection)
            return connection.sql(sql, params=params).pl()

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """Run a read query and return a polars frame."""
        if not self.db_path.exists():
            self.connect().close()
        with self.connect(read_only=True) as connection:
            return connection.sql(sql, params=params).pl()
