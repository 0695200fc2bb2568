"""The lake: raw per-attempt and per-evaluation records as Parquet, laid out by partition, and
the one place that writes them.

Layout: `<root>/lake/<table>/<key>=<value>/.../part.parquet`. A partition is written to a
temporary name and renamed over the old one, so a killed run leaves the old partition or the
new one, never half of one, and re-running a partition replaces it: no duplicates, ever.

`CANDLEBENCH_LAKE=s3://bucket/prefix` puts the lake on object storage instead (`ObjectLake`),
where there is no rename: each write is a new versioned object, and readers take each
partition's newest version (see `ObjectLake`). Partitions are written by polars, never through
DuckDB, so any number of workers write partitions at once; DuckDB reads them (through fsspec on
object storage) and its one-writer file holds only the aggregates.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
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

    def source(self, table: str, dates: Iterable[str] | None = None) -> str | None:
        """The SQL literal `read_parquet` reads `table` from: a glob of all of it, or the list of
        `dates`' files (all of it when the window has none, so the view keeps its columns);
        None when the table has no file."""
        if dates is not None and "date" in TABLES[table].keys and (files := self.files(table, dates)):
            return _sql_list(files)
        return "'" + self.glob(table).replace("'", "''") + "'" if self.has_files(table) else None

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
        return ObjectLake(uri)
    if "://" in uri:
        from pipeline.config import ConfigError

        raise ConfigError(f"{LAKE_VARIABLE}={uri!r}: a lake is a local path or s3://bucket/prefix")
    return Lake(Path(uri))


def s3_filesystem():
    """An s3fs filesystem from the environment: AWS_ENDPOINT_URL (e.g. a SeaweedFS or MinIO on
    loopback), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or any botocore credential source),
    AWS_REGION. Listings are never cached: a reader must see the newest versions."""
    import s3fs

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
    return s3fs.S3FileSystem(
        endpoint_url=endpoint or None,
        use_listings_cache=False,
        client_kwargs={"region_name": os.environ.get("AWS_REGION", "us-east-1")},
    )


class ObjectLake(Lake):
    """The lake on object storage, with the local lake's guarantees and no rename.

    A partition `<uri>/<table>/<key>=<value>/...` holds versioned objects
    `part-<ns timestamp>-<uuid>.parquet`. A write PUTs a new version (an object store makes an
    object visible whole or not at all, multipart uploads included) and then deletes the versions
    before the previous one; readers take each partition's newest version from one listing. So a
    killed writer leaves the old partition or the new one, never half of one and never both (a
    reader that listed just before a write still finds the version it chose: one previous version
    is kept until the next write or `vacuum`). Writers on several machines order by their clocks.
    """

    KEEP = 2  # versions kept per partition by a write: the newest and the one before it

    def __init__(self, uri: str, fs=None) -> None:
        self.uri = uri.rstrip("/")
        self.root = self.uri  # what messages name
        self.fs = fs or s3_filesystem()

    def _folder(self, table: str, **keys: object) -> str:
        if table not in TABLES:
            raise ValueError(f"unknown lake table {table!r}; expected one of {tuple(TABLES)}")
        return "/".join([self.uri, table, *(f"{k}={v}" for k, v in keys.items())])

    def _versions(self, folder: str) -> list[str]:
        try:
            names = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.rsplit("/", 1)[-1].startswith("part-") and n.endswith(".parquet"))

    def partition_path(self, table: str, **keys: object) -> str:  # type: ignore[override]
        """The partition's newest version (or where its folder is, when it has none)."""
        folder = self._folder(table, **keys)
        versions = self._versions(folder)
        return f"s3://{versions[-1]}" if versions else folder

    def write_partition(self, table: str, frame: pl.DataFrame, **keys: object) -> str:  # type: ignore[override]
        frame = TABLES[table].validate(frame)
        folder = self._folder(table, **keys)
        name = f"{folder}/part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
        with self.fs.open(name, "wb") as out:
            frame.write_parquet(out)
            faults.point(f"lake_upload.{table}")  # written, not yet uploaded: nothing visible
        faults.point(f"lake_publish.{table}")
        self._drop(v for v in self._versions(folder)[: -self.KEEP] if v < name.removeprefix("s3://"))
        return name

    def _drop(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.fs.rm(path)

    def read_partition(self, table: str, **keys: object) -> pl.DataFrame | None:
        versions = self._versions(self._folder(table, **keys))
        if not versions:
            return None
        with self.fs.open(versions[-1], "rb") as source:
            return pl.read_parquet(source)

    def graded_consistently(self, **keys: object) -> bool:
        attempts, evaluations = (self.read_partition(t, **keys) for t in ("attempts", "evaluations"))
        if attempts is None or evaluations is None:
            return False
        return set(attempts["attempt_id"]) == set(evaluations["attempt_id"])

    def files(self, table: str, dates: Iterable[str] | None = None) -> list[str]:
        """Every partition's newest version (of `dates` only, for a table keyed by date), from
        one listing of the table."""
        try:
            names = self.fs.find(f"{self.uri}/{table}", detail=False)
        except FileNotFoundError:
            return []
        wanted = None if dates is None or "date" not in TABLES[table].keys else {f"date={d}" for d in dates}
        newest: dict[str, str] = {}
        for name in names:
            folder, _, leaf = name.rpartition("/")
            if wanted is not None and not wanted & set(folder.split("/")):
                continue
            if leaf.startswith("part-") and leaf.endswith(".parquet") and name > newest.get(folder, ""):
                newest[folder] = name
        return [f"s3://{n}" for _, n in sorted(newest.items())]

    def has_files(self, table: str) -> bool:
        return bool(self.files(table))

    def glob(self, table: str) -> str:
        raise NotImplementedError("an object lake is read by its list of versions: source()")

    def source(self, table: str, dates: Iterable[str] | None = None) -> str | None:
        files = self.files(table, dates) if dates is not None else []
        files = files or self.files(table)
        return _sql_list(files) if files else None

    def register(self, connection) -> None:
        connection.register_filesystem(self.fs)

    def vacuum(self) -> int:
        """Delete every version but each partition's newest; how many were deleted."""
        names = self.fs.find(self.uri, detail=False)
        folders: dict[str, list[str]] = {}
        for name in names:
            folder, _, leaf = name.rpartition("/")
            if leaf.startswith("part-") and leaf.endswith(".parquet"):
                folders.setdefault(folder, []).append(name)
        stale = [v for versions in folders.values() for v in sorted(versions)[:-1]]
        self._drop(stale)
        return len(stale)
