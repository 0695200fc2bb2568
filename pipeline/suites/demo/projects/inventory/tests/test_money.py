from decimal import Decimal

import pytest

from inventory.money import allocate, format_money, percent_of, to_decimal, to_money


def test_to_decimal_accepts_int_str_and_decimal():
    assert to_decimal(3) == Decimal("3")
    assert to_decimal(" 2.50 ") == Decimal("2.50")
    assert to_decimal(Decimal("1.1")) == Decimal("1.1")


def test_to_decimal_float_has_no_binary_artefacts():
    assert to_decimal(0.1) == Decimal("0.1")
    assert str(to_decimal(2.675)) == "2.675"


def test_to_decimal_rejects_garbage():
    with pytest.raises(ValueError):
        to_decimal("twelve")
    with pytest.raises(TypeError):
        to_decimal(True)
    with pytest.raises(TypeError):
        to_decimal([1])


def test_to_money_quantizes_to_cents():
    assert str(to_money(2)) == "2.00"
    assert str(to_money("1.234")) == "1.23"
    assert str(to_money("1.236")) == "1.24"
    assert str(to_money(0.1)) == "0.10"


def test_percent_of_rounds_half_up():
    assert percent_of("2.50", 5) == Decimal("0.13")
    assert percent_of("200", "7.5") == Decimal("15.00")
    assert percent_of(0, 50) == Decimal("0.00")


def test_format_money():
    assert format_money("1234.5") == "1,234.50"
    assert format_money(Decimal("1000000"), "EUR") == "EUR 1,000,000.00"
    assert format_money("0.07") == "0.07"


def test_allocate_proportional_exact():
    assert allocate("100", [1, 3]) == [Decimal("25.00"), Decimal("75.00")]


def test_allocate_hands_out_leftover_cents():
    shares = allocate("10.00", [1, 1, 1])
    assert shares == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]
    assert sum(shares) == Decimal("10.00")


def test_allocate_zero_weights():
    assert allocate(0, [0, 0]) == [Decimal("0.00"), Decimal("0.00")]
    assert allocate(0, []) == []
    with pytest.raises(ValueError):
        allocate("5", [0, 0])
    with pytest.raises(ValueError):
        allocate("5", [1, -1])
