"""Translation between the cart's protobuf messages and its domain objects.

The same `emporium.cart.v1.Cart` message is the API's answer and the stored form of a cart in
Redis (`cart_to_proto` / `cart_from_proto` round-trip every domain field: a line whose
availability is UNSPECIFIED has no known stock, one without current_unit_price no known price).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emporium.cart.v1 import cart_pb2
from emporium.catalog.v1 import product_pb2
from google.protobuf import timestamp_pb2
from google.type import money_pb2

from kit.mapping import timestamp
from services.cart.domain import (
    NANOS_PER_UNIT,
    Availability,
    Cart,
    Line,
    Money,
    ProductState,
    ProductView,
)

_AVAILABILITY = {
    Availability.UNKNOWN: cart_pb2.CartItem.AVAILABILITY_UNSPECIFIED,
    Availability.IN_STOCK: cart_pb2.CartItem.AVAILABILITY_IN_STOCK,
    Availability.INSUFFICIENT_STOCK: cart_pb2.CartItem.AVAILABILITY_INSUFFICIENT_STOCK,
    Availability.OUT_OF_STOCK: cart_pb2.CartItem.AVAILABILITY_OUT_OF_STOCK,
    Availability.DISCONTINUED: cart_pb2.CartItem.AVAILABILITY_DISCONTINUED,
}

_STATES = {
    product_pb2.Product.STATE_ACTIVE: ProductState.ACTIVE,
    product_pb2.Product.STATE_DRAFT: ProductState.DRAFT,
    product_pb2.Product.STATE_ARCHIVED: ProductState.ARCHIVED,
}


def money_to_proto(money: Money) -> money_pb2.Money:
    # google.type.Money: units and nanos have the same sign.
    sign = -1 if money.nanos < 0 else 1
    units = sign * (abs(money.nanos) // NANOS_PER_UNIT)
    nanos = money.nanos - units * NANOS_PER_UNIT
    return money_pb2.Money(currency_code=money.currency, units=units, nanos=nanos)


def money_from_proto(message: money_pb2.Money) -> Money:
    return Money(message.currency_code, message.units * NANOS_PER_UNIT + message.nanos)


def _datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def line_to_proto(line: Line) -> cart_pb2.CartItem:
    return cart_pb2.CartItem(
        product_id=line.product_id,
        sku=line.sku,
        title=line.title,
        image_url=line.image_url,
        quantity=line.quantity,
        unit_price=money_to_proto(line.unit_price),
        total=money_to_proto(line.total),
        current_unit_price=(
            money_to_proto(line.current_unit_price) if line.current_unit_price else None
        ),
        price_changed=line.price_changed,
        availability=_AVAILABILITY[line.availability],
        available_quantity=line.available_quantity or 0,
        add_time=timestamp(line.add_time),
    )


def line_from_proto(item: cart_pb2.CartItem) -> Line:
    known = item.availability != cart_pb2.CartItem.AVAILABILITY_UNSPECIFIED
    return Line(
        product_id=item.product_id,
        quantity=item.quantity,
        sku=item.sku,
        title=item.title,
        image_url=item.image_url,
        unit_price=money_from_proto(item.unit_price),
        add_time=_datetime(item.add_time),
        current_unit_price=(
            money_from_proto(item.current_unit_price)
            if item.HasField("current_unit_price")
            else None
        ),
        available_quantity=item.available_quantity if known else None,
        discontinued=item.availability == cart_pb2.CartItem.AVAILABILITY_DISCONTINUED,
    )


def cart_to_proto(cart: Cart, *, shop_currency: str, ttl: timedelta | None = None) -> cart_pb2.Cart:
    message = cart_pb2.Cart(
        user_id=cart.user_id,
        items=[line_to_proto(line) for line in cart.lines],
        subtotal=money_to_proto(cart.subtotal(shop_currency)),
        item_count=cart.item_count,
        attention_required=cart.attention_required,
    )
    if cart.update_time is not None:
        message.update_time.CopyFrom(timestamp(cart.update_time))
        if ttl is not None:
            message.expire_time.CopyFrom(timestamp(cart.update_time + ttl))
    return message


def cart_from_proto(message: cart_pb2.Cart) -> Cart:
    return Cart(
        user_id=message.user_id,
        lines=tuple(line_from_proto(item) for item in message.items),
        update_time=_datetime(message.update_time) if message.HasField("update_time") else None,
    )


def product_view(product: product_pb2.Product, available_quantity: int) -> ProductView:
    """The cart's view of a catalog product (main image: position 0, else the first)."""
    images = sorted(product.images, key=lambda image: image.position)
    return ProductView(
        id=product.id,
        sku=product.sku,
        title=product.title,
        price=money_from_proto(product.price),
        # An unknown or unset state cannot be sold: treat it as archived.
        state=_STATES.get(product.state, ProductState.ARCHIVED),
        available_quantity=available_quantity,
        image_url=images[0].url if images else "",
    )
