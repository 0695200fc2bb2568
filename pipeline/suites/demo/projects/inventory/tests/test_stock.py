from datetime import date
from decimal import Decimal

import pytest

from inventory.models import Item, Lot, Order
from inventory.stock import InsufficientStock, InventoryError, Stock, UnknownItem

D = date(2024, 3, 1)


def make_stock():
    stock = Stock()
    stock.add_item(Item("A", "Apple", "0.50", reorder_level=5))
    stock.add_item(Item("B", "Banana", "0.30"))
    stock.receive(Lot("A", 10, "0.20", D))
    stock.receive(Lot("B", 3, "0.10", D))
    return stock


def test_add_item_twice_fails():
    stock = make_stock()
    with pytest.raises(ValueError):
        stock.add_item(Item("a", "Apple again", "1"))


def test_unknown_item():
    stock = make_stock()
    with pytest.raises(UnknownItem) as info:
        stock.on_hand("ZZZ")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, InventoryError)
    assert "ZZZ" in str(info.value)
    with pytest.raises(UnknownItem):
        stock.receive(Lot("ZZZ", 1, "1", D))


def test_items_sorted_and_contains():
    stock = make_stock()
    assert [item.sku for item in stock.items()] == ["A", "B"]
    assert "a" in stock
    assert "C" not in stock


def test_receive_stores_a_copy():
    stock = make_stock()
    lot = Lot("A", 5, "0.25", date(2024, 3, 2))
    stock.receive(lot)
    lot.quantity = 100
    assert stock.on_hand("A") == 15


def test_reserve_and_available():
    stock = make_stock()
    stock.reserve("a", 4)
    assert stock.reserved("A") == 4
    assert stock.available("A") == 6
    assert stock.on_hand("A") == 10


def test_reserve_too_much_raises():
    stock = make_stock()
    with pytest.raises(InsufficientStock) as info:
        stock.reserve("A", 11)
    assert info.value.available == 10
    assert "only 10 available" in str(info.value)
    assert stock.reserved("A") == 0


def test_release():
    stock = make_stock()
    stock.reserve("A", 4)
    stock.release("A", 3)
    assert stock.reserved("A") == 1
    assert stock.available("A") == 9
    with pytest.raises(ValueError):
        stock.release("A", 0)


def test_reserve_order_is_all_or_nothing():
    stock = make_stock()
    order = Order("o-1")
    order.add("A", 2)
    order.add("B", 5)
    with pytest.raises(InsufficientStock):
        stock.reserve_order(order)
    assert stock.reserved("A") == 0
    assert stock.reserved("B") == 0


def test_reserve_order():
    stock = make_stock()
    order = Order("o-2")
    order.add("A", 2)
    order.add("B", 1)
    stock.reserve_order(order)
    assert stock.reserved("A") == 2
    assert stock.reserved("B") == 1


def test_ship_from_single_lot_returns_cost():
    stock = make_stock()
    assert stock.ship("A", 4) == Decimal("0.80")
    assert stock.on_hand("A") == 6
    assert stock.ship("A", 6) == Decimal("1.20")
    assert stock.on_hand("A") == 0
    assert stock.lots("A") == []


def test_ship_uses_reservations_first():
    stock = make_stock()
    stock.reserve("A", 3)
    stock.ship("A", 2)
    assert stock.reserved("A") == 1
    stock.ship("A", 5)
    assert stock.reserved("A") == 0


def test_ship_more_than_on_hand_raises():
    stock = make_stock()
    with pytest.raises(InsufficientStock):
        stock.ship("B", 4)
    assert stock.on_hand("B") == 3


def test_ship_oldest_lot_first():
    stock = make_stock()
    stock.receive(Lot("A", 10, "0.40", date(2024, 3, 5)))
    assert stock.ship("A", 5) == Decimal("1.00")
    assert [lot.quantity for lot in stock.lots("A")] == [5, 10]


def test_valuation():
    stock = make_stock()
    assert stock.valuation("A") == Decimal("2.00")
    assert stock.valuation() == Decimal("2.30")
    assert str(stock.valuation()) == "2.30"


def test_remove_expired():
    stock = make_stock()
    stock.receive(Lot("B", 4, "0.10", D, expires=date(2024, 3, 10)))
    stock.reserve("B", 5)
    removed = stock.remove_expired(date(2024, 3, 11))
    assert [(lot.sku, lot.quantity) for lot in removed] == [("B", 4)]
    assert stock.on_hand("B") == 3
    assert stock.reserved("B") == 3
