"""The events the service renders, their topics, and a sample of each for template previews."""

from __future__ import annotations

from emporium.catalog.v1 import catalog_events_pb2, product_pb2
from emporium.order.v1 import order_events_pb2, order_pb2
from emporium.payment.v1 import payment_events_pb2
from emporium.shipping.v1 import shipment_pb2, shipping_events_pb2
from emporium.user.v1 import user_events_pb2
from google.protobuf.message import Message
from google.type import money_pb2

from kit.events import type_name
from services.notification.domain import Topic

_MONEY = money_pb2.Money(currency_code="USD", units=42, nanos=500_000_000)
_ORDER = "8d3c6f1e-0000-4000-8000-000000000001"
_USER = "00000000-0000-0000-0000-000000000000"

SAMPLES: dict[str, tuple[Topic, Message]] = {
    type_name(m): (topic, m)
    for topic, m in (
        (Topic.ACCOUNT, user_events_pb2.UserRegistered(user_id=_USER, email="ada@example.com")),
        (
            Topic.ACCOUNT,
            user_events_pb2.EmailVerificationRequested(user_id=_USER, token="sample-token"),
        ),
        (
            Topic.ACCOUNT,
            user_events_pb2.PasswordResetRequested(user_id=_USER, token="sample-token"),
        ),
        (
            Topic.ORDER_UPDATES,
            order_events_pb2.OrderConfirmed(order_id=_ORDER, user_id=_USER, total=_MONEY),
        ),
        (
            Topic.ORDER_UPDATES,
            order_events_pb2.OrderCancelled(
                order_id=_ORDER, user_id=_USER, reason=order_pb2.Order.CANCEL_REASON_OUT_OF_STOCK
            ),
        ),
        (
            Topic.ORDER_UPDATES,
            payment_events_pb2.PaymentSucceeded(order_id=_ORDER, user_id=_USER, amount=_MONEY),
        ),
        (
            Topic.ORDER_UPDATES,
            payment_events_pb2.PaymentFailed(
                order_id=_ORDER, user_id=_USER, amount=_MONEY, failure_message="card declined"
            ),
        ),
        (
            Topic.ORDER_UPDATES,
            payment_events_pb2.PaymentRefunded(order_id=_ORDER, user_id=_USER, amount=_MONEY),
        ),
        (
            Topic.SHIPPING_UPDATES,
            shipping_events_pb2.ShipmentCreated(
                order_id=_ORDER,
                user_id=_USER,
                carrier="Simulated Post",
                tracking_number="SP123456789",
                tracking_url="https://track.example/SP123456789",
            ),
        ),
        (
            Topic.SHIPPING_UPDATES,
            shipping_events_pb2.ShipmentStatusChanged(
                order_id=_ORDER,
                user_id=_USER,
                state=shipment_pb2.Shipment.STATE_IN_TRANSIT,
                tracking_number="SP123456789",
                tracking_url="https://track.example/SP123456789",
            ),
        ),
        (
            Topic.PRODUCT_REVIEWS,
            catalog_events_pb2.ReviewPosted(
                product_title="Teapot", rating=5, title="Lovely", body="Pours well."
            ),
        ),
        (
            Topic.NEW_PRODUCTS,
            catalog_events_pb2.ProductPublished(
                product=product_pb2.Product(id="p-1", title="Teapot", price=_MONEY)
            ),
        ),
    )
}
TOPICS = {name: topic for name, (topic, _) in SAMPLES.items()}


def sample(event_type: str) -> Message:
    return SAMPLES[event_type][1]
