"""Domain dataclasses: items, lots, orders and coupons."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import List, Optional

from .money import ZERO, Number, percent_of, to_decimal, to_money


def normalize_sku(sku: str) -> str:
    """SKUs are case-insensitive and surrounding whitespace is ignored."""
    if not isinstance(sku, str):
        raise TypeError(f"sku must be a string, not {type(sku).__name__}")
    sku = sku.strip().upper()
    if not sku:
        raise ValueError("sku must not be empty")
    return sku


def _check_quantity(quantity: int, what: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise TypeError(f"{what} must be an int, not {type(quantity).__name__}")
    if quantity <= 0:
        raise ValueError(f"{what} must be positive, got {quantity}")
    return quantity


@dataclass
class Item:
    """A stock keeping unit with its selling price and reorder level."""

    sku: str
    name: str
    unit_price: Decimal
    reorder_level: int = 0

    def __post_init__(self) -> None:
        self.sku = normalize_sku(self.sku)
        self.name = self.name.strip()
        self.unit_price = to_money(self.unit_price)
        if self.unit_price < 0:
            raise ValueError("unit_price must not be negative")
        if self.reorder_level < 0:
            raise ValueError("reorder_level must not be negative")


@dataclass
class Lot:
    """A quantity of one SKU received on a given day at a given unit cost.

    ``expires`` is the last day on which the lot may be sold; ``None`` means
    the goods do not expire.
    """

    sku: str
    quantity: int
    unit_cost: Decimal
    received: date
    expires: Optional[date] = None

    def __post_init__(self) -> None:
        self.sku = normalize_sku(self.sku)
        _check_quantity(self.quantity, "lot quantity")
        self.unit_cost = Decimal(self.unit_cost)
        if self.unit_cost < 0:
            raise ValueError("unit_cost must not be negative")
        if self.expires is not None and self.expires < self.received:
            raise ValueError("a lot cannot expire before it was received")

    def is_expired(self, today: date) -> bool:
        """True once the expiry date has passed (the expiry day itself is fine)."""
        return self.expires is not None and self.expires < today

    @property
    def value(self) -> Decimal:
        """Cost value of the lot (quantity x unit cost), unrounded."""
        return self.quantity * self.unit_cost


@dataclass
class OrderLine:
    sku: str
    quantity: int

    def __post_init__(self) -> None:
        self.sku = normalize_sku(self.sku)
        _check_quantity(self.quantity)


@dataclass
class Order:
    """A customer order; adding the same SKU twice merges the lines."""

    order_id: str
    lines: List[OrderLine] = field(default_factory=list)

    def add(self, sku: str, quantity: int) -> OrderLine:
        sku = normalize_sku(sku)
        _check_quantity(quantity)
        for line in self.lines:
            if line.sku == sku:
                line.quantity += quantity
                return line
        line = OrderLine(sku, quantity)
        self.lines.append(line)
        return line

    def quantity_of(self, sku: str) -> int:
        sku = normalize_sku(sku)
        return sum(line.quantity for line in self.lines if line.sku == sku)

    @property
    def total_quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True)
class Coupon:
    """An order level discount: either a percentage or a fixed amount.

    The coupon only applies when the order subtotal reaches ``min_subtotal``;
    a fixed amount never discounts more than the subtotal.
    """

    code: str
    percent: Optional[Number] = None
    amount: Optional[Number] = None
    min_subtotal: Number = ZERO

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("a coupon needs exactly one of percent or amount")

    def discount_for(self, subtotal: Number) -> Decimal:
        subtotal = to_money(subtotal)
        if subtotal < to_decimal(self.min_subtotal):
            return ZERO
        if self.percent is not None:
            return percent_of(subtotal, self.percent)
        return min(to_money(self.amount), subtotal)
