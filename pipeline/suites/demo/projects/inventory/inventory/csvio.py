"""CSV import and export of a whole stock.

One row is written per lot; an item without lots gets a single row with the
lot columns left empty.  Text fields are quoted as the ``csv`` module does.
"""
from __future__ import annotations

import csv
from datetime import date
from typing import Dict, TextIO

from .models import Item, Lot
from .stock import InventoryError, Stock

FIELDS = [
    "sku",
    "name",
    "unit_price",
    "reorder_level",
    "lot_quantity",
    "unit_cost",
    "received",
    "expires",
]


def export_stock(stock: Stock, fh: TextIO) -> int:
    """Write *stock* to the text file *fh*; return the number of data rows."""
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(FIELDS)
    rows = 0
    for item in stock.items():
        head = [item.sku, item.name, str(item.unit_price), str(item.reorder_level)]
        lots = stock.lots(item.sku)
        if not lots:
            writer.writerow(head + ["", "", "", ""])
            rows += 1
        for lot in lots:
            writer.writerow(
                head
                + [
                    str(lot.quantity),
                    str(lot.unit_cost),
                    lot.received.isoformat(),
                    lot.expires.isoformat() if lot.expires else "",
                ]
            )
            rows += 1
    return rows


def _load_row(stock: Stock, row: Dict[str, str]) -> None:
    if row["sku"] not in stock:
        stock.add_item(
            Item(row["sku"], row["name"], row["unit_price"], int(row["reorder_level"] or 0))
        )
    if row["lot_quantity"]:
        stock.receive(
            Lot(
                row["sku"],
                int(row["lot_quantity"]),
                row["unit_cost"],
                date.fromisoformat(row["received"]),
                date.fromisoformat(row["expires"]) if row["expires"] else None,
            )
        )


def import_stock(fh: TextIO) -> Stock:
    """Read a stock written by :func:`export_stock`.

    Raises ``ValueError`` naming the offending line for malformed input.
    """
    lines = fh.read().splitlines()
    stock = Stock()
    if not lines:
        return stock
    header = [name.strip() for name in lines[0].split(",")]
    if header != FIELDS:
        raise ValueError(f"line 1: unexpected header {header}")
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        values = line.split(",")
        if len(values) != len(FIELDS):
            raise ValueError(f"line {lineno}: expected {len(FIELDS)} fields, got {len(values)}")
        row = dict(zip(FIELDS, (value.strip() for value in values)))
        try:
            _load_row(stock, row)
        except (ValueError, InventoryError) as exc:
            raise ValueError(f"line {lineno}: {exc}") from None
    return stock
