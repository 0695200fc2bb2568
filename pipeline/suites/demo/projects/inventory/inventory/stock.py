"""The stock ledger: lots on hand, reservations and FIFO shipping."""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Dict, List, Optional

from .models import Item, Lot, Order, _check_quantity, normalize_sku
from .money import to_money


class InventoryError(Exception):
    """Base class of the errors raised by :class:`Stock`."""


class UnknownItem(InventoryError, KeyError):
    def __init__(self, sku: str) -> None:
        super().__init__(sku)
        self.sku = sku

    def __str__(self) -> str:
        return f"unknown item {self.sku!r}"


class InsufficientStock(InventoryError):
    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(f"cannot take {requested} x {sku}: only {available} available")
        self.sku = sku
        self.requested = requested
        self.available = available


class Stock:
    """Items, the lots received for them and the quantities reserved."""

    def __init__(self) -> None:
        self._items: Dict[str, Item] = {}
        self._lots: Dict[str, List[Lot]] = {}
        self._reserved: Dict[str, int] = {}

    # -- items -----------------------------------------------------------
    def add_item(self, item: Item) -> Item:
        if item.sku in self._items:
            raise ValueError(f"item {item.sku!r} already exists")
        self._items[item.sku] = item
        self._lots[item.sku] = []
        self._reserved[item.sku] = 0
        return item

    def item(self, sku: str) -> Item:
        sku = normalize_sku(sku)
        try:
            return self._items[sku]
        except KeyError:
            raise UnknownItem(sku) from None

    def items(self) -> List[Item]:
        """All items, sorted by SKU."""
        return [self._items[sku] for sku in sorted(self._items)]

    def __contains__(self, sku: object) -> bool:
        return isinstance(sku, str) and sku.strip().upper() in self._items

    # -- lots --------------------------------------------------------------
    def receive(self, lot: Lot) -> Lot:
        """Add a copy of *lot* to the stock of its item."""
        self.item(lot.sku)
        lot = replace(lot)
        self._lots[lot.sku].append(lot)
        return lot

    def lots(self, sku: str) -> List[Lot]:
        """The lots of *sku* in the order they will be shipped (oldest first)."""
        return list(self._lots[self.item(sku).sku])

    def on_hand(self, sku: str) -> int:
        return sum(lot.quantity for lot in self.lots(sku))

    def reserved(self, sku: str) -> int:
        return self._reserved[self.item(sku).sku]

    def available(self, sku: str) -> int:
        """Quantity on hand that is not reserved."""
        return self.on_hand(sku) - self.reserved(sku)

    def valuation(self, sku: Optional[str] = None) -> Decimal:
        """Cost value of the stock on hand (of one SKU or of all), in cents."""
        skus = [self.item(sku).sku] if sku is not None else list(self._items)
        return sum((lot.value for s in skus for lot in self._lots[s]), Decimal(0))

    # -- reservations ------------------------------------------------------
    def reserve(self, sku: str, quantity: int) -> None:
        """Set *quantity* units aside; fails if not enough are available."""
        sku = self.item(sku).sku
        _check_quantity(quantity)
        available = self.available(sku)
        if quantity >= available:
            raise InsufficientStock(sku, quantity, available)
        self._reserved[sku] += quantity

    def release(self, sku: str, quantity: int) -> None:
        """Give back *quantity* previously reserved units."""
        sku = self.item(sku).sku
        _check_quantity(quantity)
        self._reserved[sku] -= quantity

    def reserve_order(self, order: Order) -> None:
        """Reserve every line of *order*, or nothing at all."""
        done = []
        try:
            for line in order.lines:
                self.reserve(line.sku, line.quantity)
                done.append(line)
        except InventoryError:
            for line in reversed(done):
                self.release(line.sku, line.quantity)
            raise

    # -- shipping ----------------------------------------------------------
    def ship(self, sku: str, quantity: int) -> Decimal:
        """Take *quantity* units out of stock, oldest lot first (FIFO).

        Reserved units are used up first.  Returns the cost of the goods
        shipped, rounded to cents.
        """
        sku = self.item(sku).sku
        _check_quantity(quantity)
        on_hand = self.on_hand(sku)
        if quantity > on_hand:
            raise InsufficientStock(sku, quantity, on_hand)

        lots = self._lots[sku]
        remaining = quantity
        cost = Decimal(0)
        for lot in lots:
            take = min(lot.quantity, remaining)
            cost += take * lot.unit_cost
            lot.quantity -= take
            remaining -= take
            if lot.quantity == 0:
                lots.remove(lot)
            if remaining == 0:
                break

        self._reserved[sku] = max(0, self._reserved[sku] - quantity)
        return to_money(cost)

    def remove_expired(self, today: date) -> List[Lot]:
        """Write off the lots that expired before *today* and return them.

        Reservations are reduced so they never exceed what is left on hand.
        """
        removed: List[Lot] = []
        for sku, lots in self._lots.items():
            keep = [lot for lot in lots if not lot.is_expired(today)]
            removed.extend(lot for lot in lots if lot.is_expired(today))
            lots[:] = keep
            on_hand = sum(lot.quantity for lot in keep)
            self._reserved[sku] = min(self._reserved[sku], on_hand)
        return removed
