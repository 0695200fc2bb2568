"""Money helpers.

All monetary amounts handled by the library are :class:`~decimal.Decimal`
values rounded to whole cents.  Rounding is commercial "half up": exact half
cents are rounded away from zero (``0.125 -> 0.13`` and ``-0.125 -> -0.13``).
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Iterable, List, Union

Number = Union[Decimal, int, str, float]

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_decimal(value: Number) -> Decimal:
    """Convert *value* to a ``Decimal`` without binary floating point artefacts.

    Floats go through their shortest ``repr`` so ``0.1`` becomes
    ``Decimal('0.1')`` and not ``Decimal('0.1000000000000000055511...')``.
    """
    if isinstance(value, bool):
        raise TypeError("booleans are not amounts")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a valid amount: {value!r}") from None
    raise TypeError(f"cannot convert {type(value).__name__} to Decimal")


def to_money(value: Number) -> Decimal:
    """Round *value* to whole cents."""
    return to_decimal(value).quantize(CENT)


def percent_of(amount: Number, percent: Number) -> Decimal:
    """Return *percent* % of *amount*, rounded to cents (half up)."""
    value = to_decimal(amount) * to_decimal(percent) / Decimal(100)
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(amount: Number, currency: str = "") -> str:
    """Format *amount* with a thousands separator, e.g. ``'1,234.50'``.

    >>> format_money("1234.5", "EUR")
    'EUR 1,234.50'
    """
    text = f"{to_money(amount):,.2f}"
    return f"{currency} {text}" if currency else text


def allocate(total: Number, weights: Iterable[Number]) -> List[Decimal]:
    """Split *total* into cent amounts proportional to *weights*.

    The shares always add up exactly to ``to_money(total)``: cents that
    rounding left over (or overshot) are corrected one at a time, starting
    with the first share.
    """
    total = to_money(total)
    weights = [to_decimal(w) for w in weights]
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        if total == 0:
            return [ZERO for _ in weights]
        raise ValueError("cannot allocate a non-zero total over zero weights")

    shares = [to_money(total * w / weight_sum) for w in weights]
    remainder = total - sum(shares, ZERO)
    index = 0
    while remainder > 0:
        shares[index % len(shares)] += CENT
        remainder -= CENT
        index += 1
    return shares
