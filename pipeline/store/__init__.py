"""Storage: the Parquet lake (`lake`, the one writer of partitions), the DuckDB warehouse over
it (`warehouse`), one declaration per table (`tables`), and the candles' SQL (`candles`)."""

from pipeline.store.lake import Lake
from pipeline.store.tables import TABLES, Table
from pipeline.store.warehouse import Warehouse

__all__ = ["TABLES", "Lake", "Table", "Warehouse"]
