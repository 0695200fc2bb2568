"""The lake: raw per-attempt and per-evaluation records as Parquet, laid out by partition, and
the one place that writes them.

Layout: `<root>/lake/<table>/<key>=<value>/.../part.parquet`. A partition is written to a
temporary name and renamed over the old one, so a killed run leaves the old partition or the
new one, never half of one, and re-running a partition replaces it: no duplicates, ever.

`CANDLEBENCH_LAKE=s3://bucket/prefix` puts the lake on object storage instead
(`pipeline/store/objects.py`), where there is no rename: each write is a new versioned object,
and readers take each partition's newest version. Partitions are written by polars, never through
DuckDB, so any number of workers write partitions at once; DuckDB reads them (through fsspec on
object storage) and its one-writer file holds only the aggregates.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from pipeline import faults
from pipeline.store.tables import TABLES


class DiskFull(OSError):
    """No space left for a partition: named as such, never as a corrupt file."""


LOW_SPACE = 16 * 2**20  # below this, SQLite's "disk I/O error" is taken for the full disk it is


def is_disk_full(err: BaseException, where: Path | None = None) -> bool:
    """Whether `err`, or what caused it, is a full disk, however the library that met it words it
    (ENOSPC, SQLite's "database or disk is full", DuckDB's and Rust's "No space left", os error 28;
    SQLite's "disk I/O error" too when the disk under `where` is nearly full)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, DiskFull) or getattr(seen, "errno", None) == errno.ENOSPC:
            return True
        text = str(seen).lower()
        if any(s in text for s in ("database or disk is full", "no space left", "os error 28")):
            return True
        if "disk i/o error" in text and where is not None and free_bytes(where) < LOW_SPACE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def free_bytes(where: Path) -> int:
    """Free bytes on the disk holding `where` (its nearest existing folder)."""
    where = Path(where)
    while not where.exists() and where != where.parent:
        where = where.parent
    return shutil.disk_usage(where).free


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def partition_path(self, table: str, **keys: object) -> Path:
        if table not in TABLES:
            raise ValueError(f"unknown lake table {table!r}; expected one of {tuple(TABLES)}")
        folder = self.root / table
        for name, value in keys.items():
            folder = folder / f"{name}={value}"
        return folder / "part.parquet"

    def write_partition(self, table: str, frame: pl.DataFrame, **keys: object) -> Path:
        """Validate `frame` against the table's declaration and atomically replace the partition."""
        frame = TABLES[table].validate(frame)
        path = self.partition_path(table, **keys)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".part-{uuid.uuid4().hex}.parquet")
        try:
            frame.write_parquet(tmp)
            faults.point(f"lake_rename.{table}")
            os.replace(tmp, path)
        except (OSError, pl.exceptions.PolarsError) as err:
            if is_disk_full(err):
                raise DiskFull(
                    f"disk full: cannot write {table} partition {path.parent} "
                    f"({shutil.disk_usage(path.parent).free} bytes free); the stored "
                    "partition is unchanged"
                ) from None
            raise
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def write_rows(self, table: str, rows: list[dict], **keys: object) -> Path:
        """Rows built with the table's declaration (`TABLES[table].row`), written as one partition."""
        return self.write_partition(table, TABLES[table].frame(rows), **keys)

    def graded_consistently(self, **keys: object) -> bool:
        """Whether a partition's evaluations grade exactly its stored attempts: a re-run killed
        between its two writes leaves evaluations of attempts that are no longer stored."""
        attempts, evaluations = (self.partition_path(t, **keys) for t in ("attempts", "evaluations"))
        if not attempts.exists() or not evaluations.exists():
            return False

        def ids(path: Path) -> set[str]:
            return set(pl.read_parquet(path, columns=["attempt_id"])["attempt_id"])

        return ids(attempts) == ids(evaluations)

    def read_partition(self, table: str, **keys: object) -> pl.DataFrame | None:
        path = self.partition_path(table, **keys)
        return pl.read_parquet(path) if path.exists() else None

    def has_files(self, table: str) -> bool:
        return any((self.root / table).rglob("part.parquet"))

    def glob(self, table: str) -> str:
        return str(self.root / table / "**" / "part.parquet")

    def files(self, table: str, dates: Iterable[str] | None = None) -> list[str]:
        """The table's partition files; only those of `dates` (ISO days) for a table keyed by date."""
        keys = TABLES[table].keys
        if dates is None or "date" not in keys:
            return sorted(str(p) for p in (self.root / table).rglob("part.parquet"))
        found: list[str] = []
        for day in sorted(set(dates)):
            pattern = "/".join(f"date={day}" if k == "date" else f"{k}=*" for k in keys) + "/part.parquet"
            found += sorted(str(p) for p in (self.root / table).glob(pattern))
        return found

    def relation(self, table: str, dates: Iterable[str] | None = None) -> str | None:
        """The SELECT a view of `table` is: a glob of all of it, or the list of `dates`' files
        (all of it when the window has none, so the view keeps its columns); None when the table
        has no file."""
        if dates is not None and "date" in TABLES[table].keys and (files := self.files(table, dates)):
            source = _sql_list(files)
        elif self.has_files(table):
            source = "'" + self.glob(table).replace("'", "''") + "'"
        else:
            return None
        return f"SELECT * FROM read_parquet({source}, union_by_name = true)"

    def register(self, connection) -> None:
        """Make this lake readable by a DuckDB connection (a local lake needs nothing)."""


LAKE_VARIABLE = "CANDLEBENCH_LAKE"


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def open_lake(home: Path) -> Lake:
    """The home's lake: `$CANDLEBENCH_LAKE` when it is an `s3://` URI or a path, else `<home>/lake`."""
    uri = os.environ.get(LAKE_VARIABLE, "").strip()
    if not uri:
        return Lake(Path(home) / "lake")
    if uri.startswith("s3://"):
        from pipeline.store.objects import ObjectLake

        return ObjectLake(uri)
    if "://" in uri:
        from pipeline.config import ConfigError

        raise ConfigError(f"{LAKE_VARIABLE}={uri!r}: a lake is a local path or s3://bucket/prefix")
    return Lake(Path(uri))
