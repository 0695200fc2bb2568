"""The one place that writes partitions: a Parquet lake for raw records, DuckDB for aggregates.

Lake layout: `<root>/lake/<table>/<key>=<value>/.../part.parquet`. A partition is written to a
temporary name and renamed over the old one, so a killed run leaves the old partition or the
new one, never half of one, and re-running a partition replaces it: no duplicates, ever.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import duckdb
import polars as pl

from pipeline.schemas import SCHEMAS

LAKE_TABLES = ("tasks", "samples", "attempts", "evaluations", "controls", "decisions")


class Warehouse:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.lake = self.root / "lake"
        self.db_path = self.root / "warehouse.duckdb"
        self.artifacts = self.root / "artifacts"
        self.reports = self.root / "report"

    # --- the lake ---------------------------------------------------------------------------

    def partition_path(self, table: str, **keys: object) -> Path:
        if table not in LAKE_TABLES:
            raise ValueError(f"unknown lake table {table!r}; expected one of {LAKE_TABLES}")
        folder = self.lake / table
        for name, value in keys.items():
            folder = folder / f"{name}={value}"
        return folder / "part.parquet"

    def write_partition(self, table: str, frame: pl.DataFrame, **keys: object) -> Path:
        """Validate `frame` against the table's schema and atomically replace the partition."""
        frame = SCHEMAS[table].validate(frame)
        path = self.partition_path(table, **keys)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".part-{uuid.uuid4().hex}.parquet")
        try:
            frame.write_parquet(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def read_partition(self, table: str, **keys: object) -> pl.DataFrame | None:
        path = self.partition_path(table, **keys)
        return pl.read_parquet(path) if path.exists() else None

    def has_files(self, table: str) -> bool:
        return any((self.lake / table).rglob("part.parquet"))

    def glob(self, table: str) -> str:
        return str(self.lake / table / "**" / "part.parquet")

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
        for table in LAKE_TABLES:
            if self.has_files(table):
                connection.execute(
                    f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM "
                    f"read_parquet('{self.glob(table)}', union_by_name = true)"
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
