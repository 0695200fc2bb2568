import io
from datetime import date
from decimal import Decimal

import pytest

from inventory.csvio import FIELDS, export_stock, import_stock
from inventory.models import Item, Lot
from inventory.stock import Stock


def make_stock():
    stock = Stock()
    stock.add_item(Item("A", "Apple", "0.50", reorder_level=5))
    stock.add_item(Item("B", "Banana", "0.30"))
    stock.receive(Lot("A", 10, "0.20", date(2024, 3, 1), expires=date(2024, 4, 1)))
    stock.receive(Lot("A", 4, "0.25", date(2024, 3, 8)))
    return stock


def test_export_format():
    out = io.StringIO()
    assert export_stock(make_stock(), out) == 3
    assert out.getvalue().splitlines() == [
        ",".join(FIELDS),
        "A,Apple,0.50,5,10,0.20,2024-03-01,2024-04-01",
        "A,Apple,0.50,5,4,0.25,2024-03-08,",
        "B,Banana,0.30,0,,,,",
    ]


def test_roundtrip():
    out = io.StringIO()
    export_stock(make_stock(), out)
    stock = import_stock(io.StringIO(out.getvalue()))
    assert [item.sku for item in stock.items()] == ["A", "B"]
    assert stock.item("A").reorder_level == 5
    assert stock.on_hand("A") == 14
    assert stock.on_hand("B") == 0
    assert stock.lots("A")[0].expires == date(2024, 4, 1)
    assert stock.lots("A")[1].unit_cost == Decimal("0.25")


def test_import_empty_file():
    assert import_stock(io.StringIO("")).items() == []


def test_import_rejects_bad_header():
    with pytest.raises(ValueError, match="line 1"):
        import_stock(io.StringIO("sku,name\nA,Apple\n"))


def test_import_reports_line_of_bad_row():
    text = ",".join(FIELDS) + "\nA,Apple,0.50,5,10,0.20,2024-03-01,\n\nB,Banana,0.30\n"
    with pytest.raises(ValueError, match="line 4"):
        import_stock(io.StringIO(text))


def test_import_reports_bad_values():
    text = ",".join(FIELDS) + "\nA,Apple,0.50,5,10,0.20,2024-13-01,\n"
    with pytest.raises(ValueError, match="line 2"):
        import_stock(io.StringIO(text))
