"""Read-only reports over a :class:`~inventory.stock.Stock`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import List

from .models import Lot
from .stock import Stock


@dataclass(frozen=True)
class LowStockRow:
    sku: str
    name: str
    available: int
    reorder_level: int

    @property
    def shortfall(self) -> int:
        return max(0, self.reorder_level - self.available)


def low_stock(stock: Stock) -> List[LowStockRow]:
    """Items that need reordering.

    An item needs reordering when its *available* quantity (on hand minus
    reserved) is at or below its reorder level.  Items with a reorder level
    of 0 are not tracked and never reported.  Rows are sorted by biggest
    shortfall first, then by SKU.
    """
    rows = []
    for item in stock.items():
        if item.reorder_level == 0:
            continue
        available = stock.available(item.sku)
        if available < item.reorder_level:
            rows.append(LowStockRow(item.sku, item.name, available, item.reorder_level))
    rows.sort(key=lambda row: (-row.shortfall, row.sku))
    return rows


def expiring_soon(stock: Stock, today: date, days: int = 30) -> List[Lot]:
    """Lots that are still sellable but expire within *days* days (inclusive)."""
    if days < 0:
        raise ValueError("days must not be negative")
    horizon = today + timedelta(days=days)
    lots = [
        lot
        for item in stock.items()
        for lot in stock.lots(item.sku)
        if lot.expires is not None and today <= lot.expires <= horizon
    ]
    return sorted(lots, key=lambda lot: (lot.expires, lot.sku))


def expired_lots(stock: Stock, today: date) -> List[Lot]:
    """Lots whose expiry date has passed, oldest expiry first."""
    lots = [
        lot for item in stock.items() for lot in stock.lots(item.sku) if lot.is_expired(today)
    ]
    return sorted(lots, key=lambda lot: (lot.expires, lot.sku))
