"""The events the notification service reacts to, all in one place.

- The recipients projection: UserRegistered, UserUpdated, UserSettingsUpdated, UserRolesChanged
  keep each user's address, name, locale, time zone, channels and consent; UserDeleted
  anonymises their history and forgets them.
- Account messages: UserRegistered (welcome), EmailVerificationRequested and
  PasswordResetRequested (security: email only, their tokens redacted in everything stored).
- Orders, payments, shipments: OrderConfirmed, OrderCancelled, PaymentSucceeded (receipt),
  PaymentFailed, PaymentRefunded, ShipmentCreated (with tracking), ShipmentStatusChanged (each
  step up to delivered).
- ReviewPosted: to the product's seller (the catalog's Product.seller_id, carried in the event;
  products without a seller are the shop's own and notify nobody).
- ProductPublished (first publication): split into NewProductAnnouncementBatched events of a
  few hundred subscribers each (published through the outbox, consumed here), so no handler
  loops over every subscriber.

Every event is accepted only from the service that owns it (ARCHITECTURE.md 8b). Every
notification is unique per (source event id, user, channel) in storage, so a redelivered event
sends nothing twice; the inbox (kit.inbox.MongoInbox) only saves the work.
"""

from __future__ import annotations

import logging

from emporium.catalog.v1 import catalog_events_pb2, product_pb2
from emporium.notification.v1 import notification_events_pb2
from emporium.order.v1 import order_events_pb2
from emporium.payment.v1 import payment_events_pb2
from emporium.shipping.v1 import shipping_events_pb2
from emporium.user.v1 import user_events_pb2, user_pb2

from kit import events
from kit.events import Event, type_name
from services.notification.domain import Channel, Topic
from services.notification.handlers import Incoming, NotificationHandlers

log = logging.getLogger("emporium.notification.consumers")

QUEUE = "notification"  # its entry in kit.topology.QUEUES
ROLE_NAMES = {user_pb2.User.ROLE_ADMIN: "admin", user_pb2.User.ROLE_CUSTOMER: "customer"}


def _channels(settings) -> frozenset[Channel]:
    c = settings.notification_channels
    return frozenset(
        channel
        for channel, on in (
            (Channel.EMAIL, c.email_enabled),
            (Channel.SMS, c.sms_enabled),
            (Channel.PUSH, c.push_enabled),
            (Channel.IN_APP, c.in_app_enabled),
        )
        if on
    )


def _settings_fields(settings) -> dict:
    fields = {"channels": _channels(settings), "marketing_consent": settings.marketing_consent}
    if settings.locale:
        fields["locale"] = settings.locale
    if settings.time_zone:
        fields["time_zone"] = settings.time_zone
    return fields


def _from(owner: str, handler):
    """`handler`, for events published by `owner` only; others are logged and dropped."""

    async def checked(message, event: Event) -> None:
        if event.source != owner:
            log.warning(
                "dropped %s %s from %r: only %r publishes it",
                event.type,
                event.id,
                event.source,
                owner,
            )
            return
        await handler(message, event)

    return checked


def subscriptions(n: NotificationHandlers) -> dict[type, events.TypedHandler]:
    async def on_registered(m: user_events_pb2.UserRegistered, event: Event) -> None:
        fields = {"email": m.email, "display_name": m.display_name, "locale": m.locale or "en"}
        if m.HasField("settings"):
            fields.update(_settings_fields(m.settings))
        await n.update_recipient(m.user_id, **fields)
        await n.notify(Incoming(event, m, m.user_id, Topic.ACCOUNT))

    async def on_updated(m: user_events_pb2.UserUpdated, event: Event) -> None:
        fields = {}
        if m.HasField("user"):
            fields.update(
                email=m.user.email,
                display_name=m.user.display_name,
                phone_number=m.user.phone_number,
                roles=tuple(ROLE_NAMES.get(r, "") for r in m.user.roles),
            )
        if m.locale:
            fields["locale"] = m.locale
        await n.update_recipient(m.user_id, **fields)

    async def on_settings(m: user_events_pb2.UserSettingsUpdated, event: Event) -> None:
        await n.update_recipient(m.user_id, **_settings_fields(m.settings))

    async def on_roles(m: user_events_pb2.UserRolesChanged, event: Event) -> None:
        await n.update_recipient(m.user_id, roles=tuple(ROLE_NAMES.get(r, "") for r in m.roles))

    async def on_deleted(m: user_events_pb2.UserDeleted, event: Event) -> None:
        await n.user_deleted(m.user_id)

    async def on_verification(m: user_events_pb2.EmailVerificationRequested, event: Event) -> None:
        # The address to verify may be new: the message goes there, not to the stored one.
        await n.update_recipient(m.user_id, email=m.email, display_name=m.display_name)
        await n.notify(
            Incoming(event, m, m.user_id, Topic.ACCOUNT, security=True, secret_fields=("token",))
        )

    async def on_reset(m: user_events_pb2.PasswordResetRequested, event: Event) -> None:
        await n.update_recipient(m.user_id, email=m.email, display_name=m.display_name)
        await n.notify(
            Incoming(event, m, m.user_id, Topic.ACCOUNT, security=True, secret_fields=("token",))
        )

    def order_message(topic: Topic):
        async def handle(m, event: Event) -> None:
            await n.notify(Incoming(event, m, m.user_id, topic))

        return handle

    async def on_review(m: catalog_events_pb2.ReviewPosted, event: Event) -> None:
        if not m.seller_id:
            return
        await n.notify(Incoming(event, m, m.seller_id, Topic.PRODUCT_REVIEWS))

    async def on_published(m: catalog_events_pb2.ProductPublished, event: Event) -> None:
        if m.first_publication:
            await n.announce_product(event, m.product)

    async def on_batch(
        m: notification_events_pb2.NewProductAnnouncementBatched, event: Event
    ) -> None:
        product = product_pb2.Product(
            id=m.product_id, title=m.product_title, price=m.price, category_ids=m.category_ids
        )
        announced = catalog_events_pb2.ProductPublished(product=product, first_publication=True)
        for user_id in m.user_ids:
            await n.notify(
                Incoming(
                    event,
                    announced,
                    user_id,
                    Topic.NEW_PRODUCTS,
                    category_ids=tuple(m.category_ids),
                    template_event_type=type_name(catalog_events_pb2.ProductPublished),
                    source_event_id=m.source_event_id,
                    source_event_type=type_name(catalog_events_pb2.ProductPublished),
                )
            )

    table = {
        "user": {
            user_events_pb2.UserRegistered: on_registered,
            user_events_pb2.UserUpdated: on_updated,
            user_events_pb2.UserSettingsUpdated: on_settings,
            user_events_pb2.UserRolesChanged: on_roles,
            user_events_pb2.UserDeleted: on_deleted,
            user_events_pb2.EmailVerificationRequested: on_verification,
            user_events_pb2.PasswordResetRequested: on_reset,
        },
        "order": {
            order_events_pb2.OrderConfirmed: order_message(Topic.ORDER_UPDATES),
            order_events_pb2.OrderCancelled: order_message(Topic.ORDER_UPDATES),
        },
        "payment": {
            payment_events_pb2.PaymentSucceeded: order_message(Topic.ORDER_UPDATES),
            payment_events_pb2.PaymentFailed: order_message(Topic.ORDER_UPDATES),
            payment_events_pb2.PaymentRefunded: order_message(Topic.ORDER_UPDATES),
        },
        "shipping": {
            shipping_events_pb2.ShipmentCreated: order_message(Topic.SHIPPING_UPDATES),
            shipping_events_pb2.ShipmentStatusChanged: order_message(Topic.SHIPPING_UPDATES),
        },
        "catalog": {
            catalog_events_pb2.ReviewPosted: on_review,
            catalog_events_pb2.ProductPublished: on_published,
        },
        "notification": {notification_events_pb2.NewProductAnnouncementBatched: on_batch},
    }
    return {
        cls: _from(owner, handler)
        for owner, handlers in table.items()
        for cls, handler in handlers.items()
    }
