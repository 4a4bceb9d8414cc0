"""The events the cart service reacts to, all in one place.

- OrderPlaced (from the cart): the ordered units leave the cart and CartCheckedOut is recorded.
  Naturally idempotent: `check_out` stores the cart change, the event and the marker
  `once:checkout:<order_id>` in one Redis transaction, so a redelivered OrderPlaced (or a
  second event for the same order) changes nothing.
- ProductUpdated, ProductArchived, ProductPublished: the lines of that product in every cart
  get the catalog's current price and state (price_changed, DISCONTINUED), snapshots unchanged.

Every event also goes through an inbox of handled event ids (`RedisInbox`), so a redelivery
does no work twice. A crash before the effect leaves the message unacked: it is redelivered.
"""

from __future__ import annotations

from emporium.catalog.v1 import catalog_events_pb2
from emporium.order.v1 import order_events_pb2

from kit import events
from kit.events import Event
from services.cart import mapping
from services.cart.handlers import CartHandlers

# Its entry in kit.topology.QUEUES.
QUEUE = "cart"


def subscriptions(cart: CartHandlers) -> dict[type, events.TypedHandler]:
    async def on_order_placed(message: order_events_pb2.OrderPlaced, event: Event) -> None:
        if not message.from_cart:
            return  # an order with its own items leaves the cart alone
        await cart.check_out(
            message.user_id,
            message.order_id,
            [(line.product_id, line.quantity) for line in message.line_items],
        )

    async def on_product_changed(message, event: Event) -> None:
        # The events carry no stock: availability stays as last seen (GetCart asks anew).
        await cart.product_changed(mapping.product_view(message.product, 0))

    return {
        order_events_pb2.OrderPlaced: on_order_placed,
        catalog_events_pb2.ProductUpdated: on_product_changed,
        catalog_events_pb2.ProductArchived: on_product_changed,
        catalog_events_pb2.ProductPublished: on_product_changed,
    }
