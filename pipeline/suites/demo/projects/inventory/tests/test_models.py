from datetime import date
from decimal import Decimal

import pytest

from inventory.models import Coupon, Item, Lot, Order, OrderLine, normalize_sku


def test_normalize_sku():
    assert normalize_sku("  ab-12 ") == "AB-12"
    with pytest.raises(ValueError):
        normalize_sku("   ")
    with pytest.raises(TypeError):
        normalize_sku(12)


def test_item_normalizes_fields():
    item = Item(" bolt-m4", " Bolt M4 ", "0.2", reorder_level=50)
    assert item.sku == "BOLT-M4"
    assert item.name == "Bolt M4"
    assert item.unit_price == Decimal("0.20")
    assert str(item.unit_price) == "0.20"


def test_item_rejects_negative_values():
    with pytest.raises(ValueError):
        Item("A", "a", "-1")
    with pytest.raises(ValueError):
        Item("A", "a", "1", reorder_level=-2)


def test_lot_validation():
    with pytest.raises(ValueError):
        Lot("A", 0, "1.00", date(2024, 1, 1))
    with pytest.raises(TypeError):
        Lot("A", 1.5, "1.00", date(2024, 1, 1))
    with pytest.raises(ValueError):
        Lot("A", 1, "1.00", date(2024, 1, 10), expires=date(2024, 1, 9))


def test_lot_value_and_decimal_cost():
    lot = Lot("a", 4, Decimal("2.50"), date(2024, 1, 1))
    assert lot.sku == "A"
    assert lot.value == Decimal("10.00")
    assert Lot("a", 2, "1.25", date(2024, 1, 1)).unit_cost == Decimal("1.25")


def test_lot_expiry_day_is_still_sellable():
    lot = Lot("A", 1, "1", date(2024, 1, 1), expires=date(2024, 1, 31))
    assert not lot.is_expired(date(2024, 1, 30))
    assert not lot.is_expired(date(2024, 1, 31))
    assert lot.is_expired(date(2024, 2, 1))
    assert not Lot("A", 1, "1", date(2024, 1, 1)).is_expired(date(2099, 1, 1))


def test_order_add_merges_lines():
    order = Order("o-1")
    order.add("a", 2)
    order.add("B", 1)
    order.add("A", 3)
    assert order.lines == [OrderLine("A", 5), OrderLine("B", 1)]
    assert order.quantity_of("a") == 5
    assert order.total_quantity == 6
    with pytest.raises(ValueError):
        order.add("C", 0)


def test_coupon_needs_exactly_one_kind():
    with pytest.raises(ValueError):
        Coupon("X")
    with pytest.raises(ValueError):
        Coupon("X", percent=10, amount=5)


def test_coupon_discount():
    assert Coupon("P10", percent=10).discount_for("45.00") == Decimal("4.50")
    assert Coupon("F5", amount="5").discount_for("45.00") == Decimal("5.00")
    assert Coupon("F50", amount=50).discount_for("45.00") == Decimal("45.00")
    assert Coupon("MIN", amount=5, min_subtotal=100).discount_for("99.99") == Decimal("0.00")
