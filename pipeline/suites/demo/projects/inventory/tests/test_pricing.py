from datetime import date
from decimal import Decimal

import pytest

from inventory.models import Coupon, Item, Lot, Order
from inventory.pricing import bulk_discount_rate, price_order
from inventory.stock import Stock, UnknownItem


def catalogue():
    stock = Stock()
    stock.add_item(Item("PEN", "Pen", "1.50"))
    stock.add_item(Item("PAD", "Notepad", "4.00"))
    stock.receive(Lot("PEN", 500, "0.40", date(2024, 1, 1)))
    return stock


def test_bulk_discount_below_first_tier():
    assert bulk_discount_rate(5, {10: 5, 50: 10}) == 0
    assert bulk_discount_rate(5, {}) == 0


def test_bulk_discount_first_tier():
    assert bulk_discount_rate(10, {10: 5, 50: 10}) == Decimal(5)
    assert bulk_discount_rate(20, {10: 5, 50: 10}) == Decimal(5)


def test_bulk_discount_descending_tiers():
    assert bulk_discount_rate(60, {50: 10, 10: 5}) == Decimal(10)
    assert bulk_discount_rate(10, {50: "10", 10: "2.5"}) == Decimal("2.5")


def test_price_order_without_discounts():
    order = Order("o-1")
    order.add("PEN", 2)
    order.add("PAD", 1)
    invoice = price_order(order, catalogue())
    assert invoice.subtotal == Decimal("7.00")
    assert invoice.total == Decimal("7.00")
    assert [line.net for line in invoice.lines] == [Decimal("3.00"), Decimal("4.00")]


def test_price_order_bulk_discount():
    order = Order("o-2")
    order.add("PEN", 20)
    invoice = price_order(order, catalogue(), tiers={10: 5, 50: 10})
    (line,) = invoice.lines
    assert line.gross == Decimal("30.00")
    assert line.discount == Decimal("1.50")
    assert invoice.total == Decimal("28.50")


def test_price_order_single_line_coupon():
    order = Order("o-3")
    order.add("PAD", 3)
    invoice = price_order(order, catalogue(), coupon=Coupon("TEN", percent=10))
    assert invoice.coupon_discount == Decimal("1.20")
    assert invoice.lines[0].coupon_share == Decimal("1.20")
    assert invoice.total == Decimal("10.80")


def test_price_order_coupon_minimum_not_reached():
    order = Order("o-4")
    order.add("PEN", 1)
    invoice = price_order(order, catalogue(), coupon=Coupon("BIG", amount=5, min_subtotal=20))
    assert invoice.coupon_discount == Decimal("0.00")
    assert invoice.total == Decimal("1.50")


def test_price_order_unknown_item():
    order = Order("o-5")
    order.add("NOPE", 1)
    with pytest.raises(UnknownItem):
        price_order(order, catalogue())


def test_price_empty_order():
    invoice = price_order(Order("o-6"), catalogue(), coupon=Coupon("F", amount=5))
    assert invoice.lines == ()
    assert invoice.total == Decimal("0.00")
