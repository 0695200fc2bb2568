"""Small stock / order bookkeeping library.

Items are kept in lots (a quantity received on a date at a unit cost, with an
optional expiry date).  Stock can be reserved for orders, released again and
shipped first-in-first-out.  All money is handled as ``Decimal`` cents.
"""
from .money import CENT, ZERO, allocate, format_money, percent_of, to_decimal, to_money
from .models import Coupon, Item, Lot, Order, OrderLine, normalize_sku
from .stock import InsufficientStock, InventoryError, Stock, UnknownItem
from .pricing import Invoice, InvoiceLine, bulk_discount_rate, price_order
from .reports import LowStockRow, expired_lots, expiring_soon, low_stock
from .csvio import FIELDS, export_stock, import_stock

__version__ = "0.4.1"

__all__ = [
    "CENT", "ZERO", "allocate", "format_money", "percent_of", "to_decimal", "to_money",
    "Coupon", "Item", "Lot", "Order", "OrderLine", "normalize_sku",
    "InsufficientStock", "InventoryError", "Stock", "UnknownItem",
    "Invoice", "InvoiceLine", "bulk_discount_rate", "price_order",
    "LowStockRow", "expired_lots", "expiring_soon", "low_stock",
    "FIELDS", "export_stock", "import_stock",
]
