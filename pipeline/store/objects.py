"""The lake on object storage (`CANDLEBENCH_LAKE=s3://bucket/prefix`), with the local lake's
guarantees and no rename, and compaction of closed months.

Versions. A partition `<uri>/<table>/<key>=<value>/...` holds versioned objects
`part-<ns timestamp>-<uuid>.parquet`. A write PUTs a new version (an object store makes an object
visible whole or not at all, multipart uploads included), then deletes the versions before the
previous one; readers take each partition's newest version from a listing. A killed writer
leaves the old partition or the new one, never half of one and never both (a reader that listed
just before a write still finds the version it chose: one previous version is kept until the
next write or `vacuum`). Writers on several machines order by their clocks.

Compaction. A closed month's partitions of a table become one object
`<table>/_compacted/month=YYYY-MM/part-<...>.parquet` (its rows carry `_partition`, the folder
they came from), published after a sidecar `<same>.json` naming every version it covers; then
the covered versions are deleted. A reader takes a partition from the compacted object unless
the partition holds a version the sidecar does not cover (a day re-written after compaction):
then that version, and none of the compacted rows of that partition. So between publishing and
deleting, and after a writer or compactor is killed anywhere, a reader sees each partition once.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from pipeline import faults
from pipeline.store.lake import Lake, _sql_list
from pipeline.store.tables import TABLES

COMPACTED = "_compacted"


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


def _is_part(name: str) -> bool:
    leaf = name.rsplit("/", 1)[-1]
    return leaf.startswith("part-") and leaf.endswith(".parquet")


def _month(folder: str) -> str | None:
    """`YYYY-MM` of a partition folder holding `date=YYYY-MM-DD`, else None."""
    for part in folder.split("/"):
        if part.startswith("date="):
            return part[5:12]
    return None


@dataclass
class View:
    """What a reader opens for one table: live loose versions, and compacted objects with the
    partitions whose compacted rows a newer loose version replaces."""

    loose: list[str] = field(default_factory=list)
    compacted: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    covered: list[str] = field(default_factory=list)  # loose versions a compaction left behind


class ObjectLake(Lake):
    KEEP = 2  # versions kept per partition by a write: the newest and the one before it

    def __init__(self, uri: str, fs=None) -> None:
        self.uri = uri.rstrip("/")
        self.root = self.uri  # what messages name
        self.fs = fs or s3_filesystem()

    def _folder(self, table: str, **keys: object) -> str:
        if table not in TABLES:
            raise ValueError(f"unknown lake table {table!r}; expected one of {tuple(TABLES)}")
        return "/".join([self.uri, table, *(f"{k}={v}" for k, v in keys.items())])

    def _ls(self, folder: str) -> list[str]:
        try:
            return sorted(self.fs.ls(folder, detail=False))
        except FileNotFoundError:
            return []

    def _versions(self, folder: str) -> list[str]:
        return [n for n in self._ls(folder) if _is_part(n)]

    def _compacted_month(self, table: str, month: str) -> tuple[str | None, set[str]]:
        """The month's live compacted object (one with its sidecar) and the versions it covers."""
        names = self._ls(f"{self.uri}/{table}/{COMPACTED}/month={month}")
        for name in reversed([n for n in names if _is_part(n)]):
            if f"{name}.json" in names:
                return name, set(json.loads(self.fs.cat(f"{name}.json"))["covers"])
        return None, set()

    # --- writing ----------------------------------------------------------------------------

    def partition_path(self, table: str, **keys: object) -> str:  # type: ignore[override]
        """The partition's newest version (or where its folder is, when it has none)."""
        folder = self._folder(table, **keys)
        versions = self._versions(folder)
        return f"s3://{versions[-1]}" if versions else folder

    def _put(self, name: str, frame: pl.DataFrame, fault: str) -> None:
        with self.fs.open(name, "wb") as out:
            frame.write_parquet(out)
            faults.point(fault)  # written, not yet uploaded: nothing visible

    @staticmethod
    def _version_name(folder: str) -> str:
        return f"{folder}/part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"

    def write_partition(self, table: str, frame: pl.DataFrame, **keys: object) -> str:  # type: ignore[override]
        frame = TABLES[table].validate(frame)
        folder = self._folder(table, **keys)
        name = self._version_name(folder)
        self._put(name, frame, f"lake_upload.{table}")
        faults.point(f"lake_publish.{table}")
        self._drop(v for v in self._versions(folder)[: -self.KEEP] if v < name.removeprefix("s3://"))
        return name

    def _drop(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        if paths:
            self.fs.rm(paths)

    # --- reading ----------------------------------------------------------------------------

    def read_partition(self, table: str, **keys: object) -> pl.DataFrame | None:
        folder = self._folder(table, **keys).removeprefix("s3://")
        versions = self._versions(folder)
        month = _month(folder)
        compacted, covers = self._compacted_month(table, month) if month else (None, set())
        if versions and versions[-1] not in covers:
            with self.fs.open(versions[-1], "rb") as source:
                return pl.read_parquet(source)
        if compacted is None:
            return None
        with self.fs.open(compacted, "rb") as source:
            rows = pl.read_parquet(source).filter(pl.col("_partition") == folder)
        return rows.drop("_partition") if rows.height else None

    def graded_consistently(self, **keys: object) -> bool:
        attempts, evaluations = (self.read_partition(t, **keys) for t in ("attempts", "evaluations"))
        if attempts is None or evaluations is None:
            return False
        return set(attempts["attempt_id"]) == set(evaluations["attempt_id"])

    def view(self, table: str, dates: Iterable[str] | None = None) -> View:
        """One listing of the table: what a reader opens (of `dates` only, by day for loose
        versions and by month for compacted objects, for a table keyed by date)."""
        try:
            names = self.fs.find(f"{self.uri}/{table}", detail=False)
        except FileNotFoundError:
            return View()
        keyed = dates is not None and "date" in TABLES[table].keys
        days = {str(d) for d in dates} if keyed else set()
        months = {d[:7] for d in days}
        newest: dict[str, str] = {}
        compacted_months: set[str] = set()
        for name in names:
            folder = name.rpartition("/")[0]
            if f"/{COMPACTED}/month=" in folder:
                compacted_months.add(folder.rpartition("month=")[2])
                continue
            if keyed and not any(f"date={d}" in folder.split("/") for d in days):
                continue
            if _is_part(name) and name > newest.get(folder, ""):
                newest[folder] = name
        view = View()
        covered: dict[str, set[str]] = {}
        for month in sorted(compacted_months):
            if keyed and month not in months:
                continue
            compacted, covers = self._compacted_month(table, month)
            if compacted:
                view.compacted.append(f"s3://{compacted}")
                covered[month] = covers
        for folder, version in sorted(newest.items()):
            month = _month(folder)
            if month in covered and version in covered[month]:
                view.covered.append(version)  # its rows are the compacted object's
                continue
            view.loose.append(f"s3://{version}")
            if month in covered:
                view.replaced.append(folder)
        return view

    def files(self, table: str, dates: Iterable[str] | None = None) -> list[str]:
        """The objects a reader of the table opens."""
        view = self.view(table, dates)
        return view.compacted + view.loose

    def has_files(self, table: str) -> bool:
        return bool(self.files(table))

    def glob(self, table: str) -> str:
        raise NotImplementedError("an object lake is read by its list of objects: relation()")

    def relation(self, table: str, dates: Iterable[str] | None = None) -> str | None:
        view = self.view(table, dates) if dates is not None else View()
        if not (view.loose or view.compacted):
            view = self.view(table)
        selects = []
        if view.compacted:
            replaced = _sql_list(view.replaced) + "::VARCHAR[]"
            selects.append(
                f"SELECT * EXCLUDE (_partition) FROM read_parquet({_sql_list(view.compacted)}, "
                f"union_by_name = true, hive_partitioning = false) "
                f"WHERE NOT list_contains({replaced}, _partition)"
            )
        if view.loose:
            selects.append(f"SELECT * FROM read_parquet({_sql_list(view.loose)}, union_by_name = true)")
        return " UNION ALL BY NAME ".join(selects) or None

    def register(self, connection) -> None:
        connection.register_filesystem(self.fs)

    # --- upkeep -----------------------------------------------------------------------------

    def compact(self, table: str, month: str) -> int:
        """Merge the month's partitions of `table` into one object; the partitions it covers
        (0 when there was nothing to compact)."""
        if "date" not in TABLES[table].keys:
            raise ValueError(f"{table} is not partitioned by date: nothing to compact by month")
        view = self.view(table, [f"{month}-{d:02d}" for d in range(1, 32)])
        self._drop(view.covered)  # left by a compaction killed before it deleted them
        if not view.loose:
            return 0  # nothing new since the last compaction
        frames = []
        for compacted in view.compacted:
            with self.fs.open(compacted, "rb") as source:
                rows = pl.read_parquet(source)
            frames.append(rows.filter(~pl.col("_partition").is_in(view.replaced)))
        for version in view.loose:
            with self.fs.open(version, "rb") as source:
                rows = pl.read_parquet(source)
            folder = version.removeprefix("s3://").rpartition("/")[0]
            frames.append(rows.with_columns(_partition=pl.lit(folder)))
        old, covers = self._compacted_month(table, month)
        covers = {v for v in covers if v.rpartition("/")[0] not in view.replaced}
        covers |= {v.removeprefix("s3://") for v in view.loose}
        name = self._version_name(f"{self.uri}/{table}/{COMPACTED}/month={month}")
        self.fs.pipe(f"{name}.json", json.dumps({"covers": sorted(covers)}).encode())
        self._put(name, pl.concat(frames, how="diagonal_relaxed"), f"lake_compact_upload.{table}")
        faults.point(f"lake_compact.{table}")
        stale = [v.removeprefix("s3://") for v in view.loose]
        if old:
            stale += [old, f"{old}.json"]
        self._drop(stale)
        return len({v.rpartition("/")[0] for v in covers})

    def vacuum(self) -> int:
        """Delete every loose version but each partition's newest; how many were deleted."""
        folders: dict[str, list[str]] = {}
        for name in self.fs.find(self.uri, detail=False):
            folder = name.rpartition("/")[0]
            if _is_part(name) and f"/{COMPACTED}/" not in folder:
                folders.setdefault(folder, []).append(name)
        stale = [v for versions in folders.values() for v in sorted(versions)[:-1]]
        self._drop(stale)
        return len(stale)
