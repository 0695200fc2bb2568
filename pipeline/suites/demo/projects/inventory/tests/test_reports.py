from datetime import date

from inventory.models import Item, Lot
from inventory.reports import expired_lots, expiring_soon, low_stock
from inventory.stock import Stock

D = date(2024, 5, 1)


def make_stock():
    stock = Stock()
    stock.add_item(Item("A", "Apple", "1", reorder_level=10))
    stock.add_item(Item("B", "Bread", "2", reorder_level=5))
    stock.add_item(Item("C", "Cheese", "3", reorder_level=0))
    stock.add_item(Item("D", "Dates", "4", reorder_level=8))
    stock.receive(Lot("A", 2, "0.5", D, expires=date(2024, 5, 20)))
    stock.receive(Lot("B", 40, "1", D, expires=date(2024, 5, 3)))
    stock.receive(Lot("D", 6, "1", D))
    return stock


def test_low_stock_lists_items_below_reorder_level():
    rows = low_stock(make_stock())
    assert [(row.sku, row.available, row.shortfall) for row in rows] == [
        ("A", 2, 8),
        ("D", 6, 2),
    ]
    assert rows[0].name == "Apple"


def test_low_stock_ignores_untracked_items():
    rows = low_stock(make_stock())
    assert "C" not in [row.sku for row in rows]


def test_low_stock_counts_reservations():
    stock = make_stock()
    stock.reserve("B", 36)
    assert [row.sku for row in low_stock(stock)] == ["A", "D", "B"]


def test_expiring_soon():
    stock = make_stock()
    lots = expiring_soon(stock, date(2024, 5, 1), days=7)
    assert [lot.sku for lot in lots] == ["B"]
    lots = expiring_soon(stock, date(2024, 5, 1), days=30)
    assert [lot.sku for lot in lots] == ["B", "A"]
    assert expiring_soon(stock, date(2024, 5, 4), days=30)[0].sku == "A"


def test_expired_lots():
    stock = make_stock()
    assert expired_lots(stock, date(2024, 5, 3)) == []
    assert [lot.sku for lot in expired_lots(stock, date(2024, 5, 21))] == ["B", "A"]
