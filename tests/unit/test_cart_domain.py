"""The cart's pure parts: money, the stored form of a cart, availability flags, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from emporium.cart.v1 import cart_pb2

from kit.config import ConfigError
from services.cart import mapping
from services.cart.config import Settings
from services.cart.domain import Availability, Cart, Line, Money, ProductState, ProductView

NOW = datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    "nanos", [0, 1, 999_999_999, 1_000_000_000, 12_500_000_000, -1_500_000_000]
)
def test_money_survives_google_type_money_with_units_and_nanos_of_one_sign(nanos):
    message = mapping.money_to_proto(Money("EUR", nanos))
    assert message.units * message.nanos >= 0
    assert abs(message.nanos) < 1_000_000_000
    assert mapping.money_from_proto(message) == Money("EUR", nanos)


def _line(**fields) -> Line:
    return Line(
        product_id="p1",
        quantity=fields.pop("quantity", 3),
        sku="SKU",
        title="Mug",
        image_url="",
        unit_price=Money("USD", 2_000_000_000),
        add_time=NOW,
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "availability"),
    [
        ({}, Availability.UNKNOWN),
        ({"available_quantity": 3}, Availability.IN_STOCK),
        ({"available_quantity": 2}, Availability.INSUFFICIENT_STOCK),
        ({"available_quantity": 0}, Availability.OUT_OF_STOCK),
        ({"available_quantity": 9, "discontinued": True}, Availability.DISCONTINUED),
    ],
)
def test_a_lines_availability_follows_the_last_known_stock(fields, availability):
    assert _line(**fields).availability is availability


@pytest.mark.parametrize(
    "line",
    [
        _line(),
        _line(available_quantity=1, current_unit_price=Money("USD", 2_500_000_000)),
        _line(available_quantity=4, discontinued=True),
    ],
)
def test_the_stored_form_of_a_cart_reads_back_equal(line):
    cart = Cart(user_id="u1", lines=(line,), update_time=NOW)
    stored = mapping.cart_to_proto(cart, shop_currency="USD").SerializeToString()
    assert mapping.cart_from_proto(cart_pb2.Cart.FromString(stored)) == cart


def test_refresh_keeps_the_snapshot_price_of_a_product_now_in_another_currency():
    line = _line(available_quantity=5)
    view = ProductView("p1", "SKU2", "New", Money("EUR", 1), ProductState.ACTIVE, 5)
    refreshed = Cart(user_id="u1", lines=(line,)).refreshed({"p1": view}, NOW).lines[0]
    assert refreshed.title == "New"
    assert refreshed.unit_price == line.unit_price
    assert refreshed.price_changed


def test_settings_default_to_the_local_stack_and_refuse_bad_values():
    settings = Settings.from_env({"EMPORIUM_ENV": "development"})
    assert (settings.server.port, settings.catalog.port, settings.user.port) == (
        50053,
        50052,
        50051,
    )
    assert settings.ttl_seconds == 30 * 24 * 3600
    assert settings.shop_currency == "USD"
    assert (
        Settings.from_env(
            {"EMPORIUM_ENV": "development", "EMPORIUM_SHOP_CURRENCY": "eur"}
        ).shop_currency
        == "EUR"
    )
    with pytest.raises(ConfigError):
        Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_CART_TTL_SECONDS": "0"})
    with pytest.raises(ConfigError):
        Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_SHOP_CURRENCY": "dollars"})
