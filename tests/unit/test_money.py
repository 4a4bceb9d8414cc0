"""kit.money: one Money value for every service, exact sums, no silent mixing of currencies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.type import money_pb2

from kit.money import CurrencyMismatch, Money
from services.cart import domain as cart
from services.order import domain as order
from services.payment import domain as payment
from services.shipping import domain as shipping


def test_every_service_prices_with_the_kit_money():
    assert cart.Money is order.Money is payment.Money is shipping.Money is Money


def test_amounts_add_subtract_and_multiply_exactly():
    ten_twenty = Money.of("USD", 10, 200_000_000)
    assert ten_twenty + Money.of("USD", 0, 800_000_000) == Money.of("USD", 11)
    assert ten_twenty - Money.of("USD", 11) == Money.of("USD", 0, -800_000_000)
    assert ten_twenty.times(3) == Money.of("USD", 30, 600_000_000)
    assert Money.of("USD", 5) < ten_twenty


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a.plus(b),
        lambda a, b: a < b,
    ],
)
def test_amounts_of_two_currencies_never_combine(combine):
    with pytest.raises(CurrencyMismatch):
        combine(Money.of("USD", 1), Money.of("EUR", 1))


def test_google_type_money_converts_both_ways_with_the_sign_on_units_and_nanos():
    for units, nanos in ((12, 500_000_000), (-3, -250_000_000), (0, -1), (7, 0)):
        message = money_pb2.Money(currency_code="USD", units=units, nanos=nanos)
        value = Money.from_proto(message)
        assert value.nanos == units * 1_000_000_000 + nanos
        assert value.to_proto() == message


def _rate(base: Money, per_kg: Money) -> shipping.Rate:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return shipping.Rate(
        id="r1",
        carrier="sim",
        service_level=shipping.ServiceLevel.STANDARD,
        display_name="Standard",
        region_codes=(),
        base_price=base,
        price_per_kg=per_kg,
        max_weight_grams=0,
        min_business_days=1,
        max_business_days=3,
        disabled=False,
        create_time=now,
        update_time=now,
    )


def test_a_shipping_price_adds_its_per_kg_part_only_in_the_same_currency():
    assert _rate(Money.of("USD", 5), Money.of("USD", 1)).price(1500) == Money.of("USD", 7)
    with pytest.raises(CurrencyMismatch):
        _rate(Money.of("USD", 5), Money.of("EUR", 1)).price(1500)
