"""Order pricing: bulk discounts, coupons and invoices."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping, Optional, Tuple

from .models import Coupon, Order
from .money import ZERO, Number, allocate, percent_of, to_decimal, to_money
from .stock import Stock


def bulk_discount_rate(quantity: int, tiers: Mapping[int, Number]) -> Decimal:
    """Return the discount percentage for buying *quantity* units.

    *tiers* maps a minimum quantity to a percentage, e.g.
    ``{10: 5, 50: 10}`` gives 5 % from 10 units and 10 % from 50 units.
    The best tier the quantity qualifies for applies; below the smallest
    tier there is no discount.
    """
    for minimum, percent in tiers.items():
        if quantity >= minimum:
            return to_decimal(percent)
    return Decimal(0)


@dataclass(frozen=True)
class InvoiceLine:
    sku: str
    quantity: int
    unit_price: Decimal
    gross: Decimal
    discount: Decimal
    coupon_share: Decimal

    @property
    def net(self) -> Decimal:
        return self.gross - self.discount - self.coupon_share


@dataclass(frozen=True)
class Invoice:
    order_id: str
    lines: Tuple[InvoiceLine, ...]
    subtotal: Decimal
    coupon_discount: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.coupon_discount


def price_order(
    order: Order,
    stock: Stock,
    tiers: Optional[Mapping[int, Number]] = None,
    coupon: Optional[Coupon] = None,
) -> Invoice:
    """Price *order* with the catalogue prices of *stock*.

    Each line gets its bulk discount; an optional *coupon* is then applied to
    the subtotal and its discount is spread over the lines in proportion to
    their (discounted) value, so that the line nets add up to the total.
    """
    tiers = tiers or {}
    priced = []
    for line in order.lines:
        item = stock.item(line.sku)
        gross = to_money(item.unit_price * line.quantity)
        discount = percent_of(gross, bulk_discount_rate(line.quantity, tiers))
        priced.append((line, item, gross, discount))

    subtotal = sum((gross - discount for _, _, gross, discount in priced), ZERO)
    coupon_discount = coupon.discount_for(subtotal) if coupon is not None else ZERO
    shares = allocate(coupon_discount, [line.quantity for line, _, _, _ in priced])

    lines = tuple(
        InvoiceLine(line.sku, line.quantity, item.unit_price, gross, discount, share)
        for (line, item, gross, discount), share in zip(priced, shares)
    )
    return Invoice(order.order_id, lines, subtotal, coupon_discount)
