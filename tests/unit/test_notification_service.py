"""The notification service over real gRPC, with in-memory repositories and a recording channel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from emporium.catalog.v1 import catalog_events_pb2, product_pb2
from emporium.notification.v1 import (
    notification_events_pb2,
    notification_pb2,
    notification_preferences_pb2,
    notification_service_pb2,
    notification_service_pb2_grpc,
    notification_template_pb2,
)
from emporium.order.v1 import order_events_pb2
from emporium.payment.v1 import payment_events_pb2
from emporium.user.v1 import user_events_pb2, user_settings_pb2
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

from kit import auth, events, server
from kit.events import Event
from kit.inbox import InMemoryInbox, idempotent
from services.notification import bootstrap, consumers
from services.notification.adapters.memory import (
    InMemoryFanOutRepository,
    InMemoryNotificationRepository,
    InMemoryPreferencesRepository,
    InMemoryRecipientRepository,
    InMemoryTemplateRepository,
    MovableClock,
    RecordingChannels,
)
from services.notification.config import Settings
from tests.unit.test_order_service import AUDIENCE, ISSUER, Tokens

N = notification_pb2.Notification
PREFS = notification_preferences_pb2.NotificationPreferences
OWNERS = {
    "user": "user",
    "order": "order",
    "payment": "payment",
    "shipping": "shipping",
    "catalog": "catalog",
}


class User:
    def __init__(self, world: World, user_id: str, email: str, admin: bool = False) -> None:
        self.world = world
        self.user_id = user_id
        self.email = email
        self.metadata = [("authorization", f"Bearer {world.tokens.token(user_id, admin)}")]

    async def list(self, **fields: Any) -> list[N]:
        reply = await self.world.stub.ListNotifications(
            notification_service_pb2.ListNotificationsRequest(**fields), metadata=self.metadata
        )
        return list(reply.notifications)

    async def get(self, notification_id: str) -> N:
        return await self.world.stub.GetNotification(
            notification_service_pb2.GetNotificationRequest(id=notification_id),
            metadata=self.metadata,
        )

    async def preferences(self, prefs: PREFS, *paths: str) -> PREFS:
        return await self.world.stub.UpdateNotificationPreferences(
            notification_service_pb2.UpdateNotificationPreferencesRequest(
                notification_preferences=prefs,
                update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
            ),
            metadata=self.metadata,
        )


class World:
    def __init__(self, channel, tokens: Tokens, app, fakes: dict[str, Any]) -> None:
        self.stub = notification_service_pb2_grpc.NotificationServiceStub(channel)
        self.tokens = tokens
        self.app = app
        self.handlers = app.handlers
        self.notifications: InMemoryNotificationRepository = fakes["notifications"]
        self.fanouts: InMemoryFanOutRepository = fakes["fanouts"]
        self.channels: RecordingChannels = fakes["channels"]
        self.clock: MovableClock = fakes["clock"]
        self.deliver = idempotent(
            InMemoryInbox(), events.dispatch(consumers.subscriptions(app.handlers))
        )
        self.dispatch = events.dispatch(consumers.subscriptions(app.handlers))

    async def send(
        self, message, source: str, event_id: str | None = None, inbox: bool = True
    ) -> Event:
        event = Event.of(message, source, id=event_id)
        await (self.deliver if inbox else self.dispatch)(event)
        return event

    async def register(self, admin: bool = False, **settings: Any) -> User:
        user_id, email = str(uuid.uuid4()), f"u{uuid.uuid4().hex[:8]}@example.com"
        channels = user_settings_pb2.UserSettings.NotificationChannels(
            email_enabled=True, in_app_enabled=True, sms_enabled=settings.pop("sms", False)
        )
        await self.send(
            user_events_pb2.UserRegistered(
                user_id=user_id,
                email=email,
                display_name="Ada",
                locale="en",
                settings=user_settings_pb2.UserSettings(notification_channels=channels, **settings),
            ),
            "user",
        )
        return User(self, user_id, email, admin)

    def sent_to(self, address: str) -> list:
        return [(n, c) for n, c in self.channels.sent if n.recipient == address]

    def published(self, cls) -> list:
        name = events.type_name(cls)
        return [
            e.decode()
            for e in [*self.notifications.published, *self.fanouts.published]
            if e.type == name
        ]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_NOTIFICATION_GRPC_PORT": "0",
            "EMPORIUM_NOTIFICATION_BATCH_SIZE": "200",
        }
    )
    tokens = Tokens()
    notifications = InMemoryNotificationRepository()
    fakes: dict[str, Any] = {
        "notifications": notifications,
        "recipients": InMemoryRecipientRepository(),
        "preferences": InMemoryPreferencesRepository(),
        "templates": InMemoryTemplateRepository(),
        "fanouts": InMemoryFanOutRepository(notifications.outbox),
        "channels": RecordingChannels(),
        "clock": MovableClock(),
    }
    app = await bootstrap.build(
        settings,
        bus=None,
        senders=False,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
        **fakes,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield World(channel, tokens, app, fakes)
    await grpc_server.stop(0)


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    for detail in rpc_status.from_call(error).details:
        if detail.Unpack(bad):
            return [v.field for v in bad.field_violations]
    return []


def _usd(units: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", units=units)


# --- welcome, history, dedupe ------------------------------------------------------------------


async def test_registering_sends_a_welcome_email_and_lists_it_with_its_state(world):
    ada = await world.register()
    assert await world.handlers.send_due() == 1
    [(_sent, content)] = world.sent_to(ada.email)
    assert "Welcome" in content.subject
    assert "Ada" in content.body
    assert "<p>" in content.html_body
    listed = await ada.list()
    assert {(n.channel, n.state, n.failure_reason) for n in listed} == {
        (N.CHANNEL_EMAIL, N.STATE_SENT, ""),
        (N.CHANNEL_IN_APP, N.STATE_SENT, ""),
        (N.CHANNEL_SMS, N.STATE_SKIPPED_BY_PREFERENCE, "channel off in the user's settings"),
    }
    assert world.published(notification_events_pb2.NotificationSent)


async def test_the_same_event_delivered_twice_sends_one_email(world):
    ada = await world.register()
    order = order_events_pb2.OrderConfirmed(order_id="o1", user_id=ada.user_id, total=_usd(12))
    event_id = str(uuid.uuid4())
    await world.send(order, "order", event_id, inbox=False)
    await world.send(order, "order", event_id, inbox=False)  # the inbox bypassed: storage dedupes
    await world.handlers.send_due()
    confirmations = [c for n, c in world.sent_to(ada.email) if "o1" in c.subject]
    assert len(confirmations) == 1
    channels = [n.channel for n in await ada.list() if n.source_event_id == event_id]
    assert sorted(channels) == sorted(set(channels))  # one notification per channel


async def test_an_event_from_a_service_that_does_not_own_it_is_ignored(world):
    ada = await world.register()
    with pytest.raises(events.ForeignEvent):  # refused by the kit's dispatch: dead-lettered
        await world.send(
            order_events_pb2.OrderConfirmed(order_id="o9", user_id=ada.user_id), "cart"
        )
    assert not [n for n in await ada.list() if "o9" in n.body]


# --- secrets -----------------------------------------------------------------------------------


async def test_a_password_reset_email_holds_the_link_but_nothing_stored_or_returned_holds_the_token(
    world,
):
    ada = await world.register()
    token = "reset-" + uuid.uuid4().hex
    await world.send(
        user_events_pb2.PasswordResetRequested(user_id=ada.user_id, email=ada.email, token=token),
        "user",
    )
    stored = [
        n
        for n in world.notifications.items.values()
        if n.source_event_type.endswith("PasswordResetRequested")
    ]
    assert stored
    assert all(token.encode() not in n.sealed for n in stored)
    await world.handlers.send_due()
    [(_, content)] = [
        (n, c) for n, c in world.sent_to(ada.email) if "password" in c.subject.lower()
    ]
    assert f"/reset-password?token={token}" in content.body
    assert token in content.html_body
    for n in world.notifications.items.values():
        assert token not in repr(n), "the stored notification holds the token"
        assert not n.sealed or n.state == 1
    for n in await ada.list():
        assert token not in str(n)
    assert "[redacted]" in "".join(n.body for n in await ada.list())


# --- ownership and roles -----------------------------------------------------------------------


async def test_another_users_notification_is_not_found_and_admin_rpcs_are_denied_to_shoppers(world):
    ada, bob = await world.register(), await world.register()
    [mine, *_] = await ada.list()
    assert (await _error(bob.get(mine.id))).code() == grpc.StatusCode.NOT_FOUND
    mark = world.stub.MarkNotificationRead(
        notification_service_pb2.MarkNotificationReadRequest(id=mine.id), metadata=bob.metadata
    )
    assert (await _error(mark)).code() == grpc.StatusCode.NOT_FOUND
    retry = world.stub.RetryNotification(
        notification_service_pb2.RetryNotificationRequest(id=mine.id), metadata=bob.metadata
    )
    assert (await _error(retry)).code() == grpc.StatusCode.PERMISSION_DENIED
    others = world.stub.ListNotifications(
        notification_service_pb2.ListNotificationsRequest(user_id=ada.user_id),
        metadata=bob.metadata,
    )
    assert (await _error(others)).code() == grpc.StatusCode.PERMISSION_DENIED


# --- preferences, transactional, quiet hours ---------------------------------------------------


async def test_email_switched_off_for_order_updates_notifies_in_app_and_records_the_skip(world):
    ada = await world.register()
    prefs = PREFS(
        order_updates=PREFS.TopicSubscription(subscribed=True, channels=[N.CHANNEL_IN_APP])
    )
    await ada.preferences(prefs, "order_updates")
    await world.send(
        order_events_pb2.OrderConfirmed(order_id="o2", user_id=ada.user_id, total=_usd(5)), "order"
    )
    about = [n for n in await ada.list() if n.source_event_type.endswith("OrderConfirmed")]
    by_channel = {n.channel: n for n in about}
    assert by_channel[N.CHANNEL_IN_APP].state == N.STATE_SENT
    assert by_channel[N.CHANNEL_EMAIL].state == N.STATE_SKIPPED_BY_PREFERENCE
    assert by_channel[N.CHANNEL_EMAIL].failure_reason == "email not chosen for order_updates"


async def test_receipts_cannot_be_switched_off_and_still_reach_the_in_app_history(world):
    ada = await world.register()
    await ada.preferences(
        PREFS(order_updates=PREFS.TopicSubscription(subscribed=False)), "order_updates"
    )
    await world.send(
        payment_events_pb2.PaymentSucceeded(order_id="o3", user_id=ada.user_id, amount=_usd(5)),
        "payment",
    )
    states = {
        n.channel: n.state
        for n in await ada.list()
        if n.source_event_type.endswith("PaymentSucceeded")
    }
    assert states[N.CHANNEL_IN_APP] == N.STATE_SENT


async def test_quiet_hours_defer_a_new_product_email_until_they_end_and_never_drop_it(world):
    ada = await world.register()
    prefs = PREFS(
        new_products=PREFS.NewProductsSubscription(subscribed=True),
        quiet_hours=PREFS.QuietHours(enabled=True, start_minute=11 * 60, end_minute=13 * 60),
    )
    await ada.preferences(prefs, "new_products", "quiet_hours")  # the clock says 12:00 UTC
    await world.handlers.send_due()  # the welcome email
    await world.send(
        catalog_events_pb2.ProductPublished(
            product=product_pb2.Product(id="p1", title="Teapot", price=_usd(30)),
            first_publication=True,
        ),
        "catalog",
    )
    [batch] = world.published(notification_events_pb2.NewProductAnnouncementBatched)
    await world.send(batch, "notification")
    email = next(
        n for n in await ada.list(topic=N.TOPIC_NEW_PRODUCTS) if n.channel == N.CHANNEL_EMAIL
    )
    assert email.state == N.STATE_QUEUED
    assert email.failure_reason == "deferred by quiet hours"
    assert email.scheduled_time.ToDatetime().hour == 13
    assert await world.handlers.send_due() == 0
    world.clock.advance(hours=1, minutes=1)
    assert await world.handlers.send_due() == 1
    assert (await ada.get(email.id)).state == N.STATE_SENT


# --- fan-out and unsubscribe -------------------------------------------------------------------


async def test_a_new_product_reaches_its_subscribers_in_batches_and_nobody_else(world):
    subscribers = [await world.register() for _ in range(450)]
    for user in subscribers:
        await user.preferences(
            PREFS(new_products=PREFS.NewProductsSubscription(subscribed=True)), "new_products"
        )
    outsider = await world.register()
    picky = await world.register()
    await picky.preferences(
        PREFS(new_products=PREFS.NewProductsSubscription(subscribed=True, category_ids=["garden"])),
        "new_products",
    )
    published = catalog_events_pb2.ProductPublished(
        product=product_pb2.Product(
            id="p2", title="Kettle", price=_usd(20), category_ids=["kitchen"]
        ),
        first_publication=True,
    )
    event = await world.send(published, "catalog")
    await world.send(published, "catalog", event.id, inbox=False)  # redelivered: no second fan-out
    batches = world.published(notification_events_pb2.NewProductAnnouncementBatched)
    assert [len(b.user_ids) for b in batches] == [200, 200, 51]
    for batch in batches:
        await world.send(batch, "notification")
    await world.handlers.send_due(limit=10_000)
    for user in subscribers:
        assert len([1 for n, c in world.sent_to(user.email) if "Kettle" in c.subject]) == 1
    assert not [1 for n, c in world.sent_to(outsider.email) if "Kettle" in c.subject]
    # A product outside the subscribed categories is no message for them: nothing in their
    # history (a record per channel, subscriber and product wrote 17 000 documents in one e2e
    # run and slowed every claim on FerretDB to seconds).
    assert not [n for n in await picky.list() if "Kettle" in n.subject]


async def test_the_one_click_unsubscribe_link_turns_off_that_topic_only_without_signing_in(world):
    ada = await world.register()
    await ada.preferences(
        PREFS(new_products=PREFS.NewProductsSubscription(subscribed=True)), "new_products"
    )
    await world.send(
        catalog_events_pb2.ProductPublished(
            product=product_pb2.Product(id="p3", title="Cup", price=_usd(3)), first_publication=True
        ),
        "catalog",
    )
    for batch in world.published(notification_events_pb2.NewProductAnnouncementBatched):
        await world.send(batch, "notification")
    await world.handlers.send_due()
    [(sent, _)] = [(n, c) for n, c in world.sent_to(ada.email) if "Cup" in c.subject]
    token = sent.list_unsubscribe.split("token=")[1]
    reply = await world.stub.UnsubscribeNotificationTopic(
        notification_service_pb2.UnsubscribeNotificationTopicRequest(token=token)
    )
    assert reply.topic == N.TOPIC_NEW_PRODUCTS
    prefs = await world.stub.GetNotificationPreferences(
        notification_service_pb2.GetNotificationPreferencesRequest(), metadata=ada.metadata
    )
    assert not prefs.new_products.subscribed
    assert prefs.order_updates.subscribed
    forged = world.stub.UnsubscribeNotificationTopic(
        notification_service_pb2.UnsubscribeNotificationTopicRequest(token=token[:-2] + "xx")
    )
    error = await _error(forged)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["token"]


# --- failures ----------------------------------------------------------------------------------


async def test_temporary_smtp_failures_are_retried_with_back_off_and_sent_once(world):
    ada = await world.register()
    world.channels.fail("SMTP unavailable: connection refused", permanent=False, times=2)
    await world.handlers.send_due()
    [email] = [n for n in await ada.list() if n.channel == N.CHANNEL_EMAIL]
    assert email.state == N.STATE_QUEUED
    assert email.attempt_count == 1
    assert email.failure_reason.startswith("temporary: SMTP unavailable")
    world.clock.advance(seconds=2)
    await world.handlers.send_due()
    world.clock.advance(seconds=4)
    await world.handlers.send_due()
    assert len(world.sent_to(ada.email)) == 1
    final = await ada.get(email.id)
    assert final.state == N.STATE_SENT
    assert final.attempt_count == 3


async def test_a_permanent_rejection_fails_with_its_reason_and_publishes_notification_failed(world):
    ada = await world.register(sms=True)
    await world.handlers.update_recipient(ada.user_id, phone_number="+15005550006")
    await world.handlers.send_due()  # the welcome
    world.channels.fail("SMTP 550 mailbox unavailable", permanent=True)
    await world.send(
        order_events_pb2.OrderConfirmed(order_id="o8", user_id=ada.user_id, total=_usd(1)), "order"
    )
    await world.handlers.send_due()  # fails, and queues the fallback, which is sent too
    about = await ada.list(topic=N.TOPIC_ORDER_UPDATES)
    [email] = [n for n in about if n.channel == N.CHANNEL_EMAIL]
    assert email.state == N.STATE_FAILED
    assert email.failure_reason == "SMTP 550 mailbox unavailable"
    [failed] = world.published(notification_events_pb2.NotificationFailed)
    assert failed.notification_id == email.id
    assert failed.failure_reason == email.failure_reason
    [sms] = [n for n in await ada.list(topic=N.TOPIC_ORDER_UPDATES) if n.channel == N.CHANNEL_SMS]
    assert sms.state == N.STATE_SENT
    assert sms.recipient == "+15005550006"
    assert sms.failure_reason == ""
    assert "o8" in sms.body


# --- watching ----------------------------------------------------------------------------------


async def test_watching_streams_new_in_app_notifications_with_the_unread_count_and_version(
    world,
):
    ada = await world.register()
    stream = world.stub.WatchNotifications(
        notification_service_pb2.WatchNotificationsRequest(), metadata=ada.metadata
    )
    first = await asyncio.wait_for(stream.read(), 5)
    assert first.unread_count == 1
    assert not first.HasField("notification")
    world.clock.advance(seconds=1)
    await world.send(
        order_events_pb2.OrderConfirmed(order_id="o7", user_id=ada.user_id, total=_usd(9)), "order"
    )
    second = await asyncio.wait_for(stream.read(), 5)
    assert "o7" in second.notification.body
    assert second.unread_count == 2
    assert second.unread_version > first.unread_version
    stream.cancel()


# --- templates ---------------------------------------------------------------------------------


async def test_admins_override_a_template_and_preview_it_and_a_syntax_error_names_the_field(world):
    admin = await world.register(admin=True)
    template = notification_template_pb2.NotificationTemplate(
        event_type="emporium.user.v1.UserRegistered",
        channel=N.CHANNEL_EMAIL,
        locale="en",
        subject_template="Hi {{ user.display_name }}",
        body_template="<b>{{ user.display_name }}</b>",
        html_body_template="<p>{{ event.display_name }}</p>",
        active=True,
    )
    created = await world.stub.CreateNotificationTemplate(
        notification_service_pb2.CreateNotificationTemplateRequest(
            request_id=str(uuid.uuid4()), notification_template=template
        ),
        metadata=admin.metadata,
    )
    assert created.version == 1
    assert created.active
    preview = await world.stub.RenderNotificationTemplate(
        notification_service_pb2.RenderNotificationTemplateRequest(id=created.id),
        metadata=admin.metadata,
    )
    assert preview.subject == "Hi Ada Lovelace"
    assert preview.html_body == "<p></p>"
    bob = await world.register()
    await world.handlers.send_due()
    assert [c.subject for _, c in world.sent_to(bob.email)] == ["Hi Ada"]
    template.body_template = "{% if %}"
    error = await _error(
        world.stub.CreateNotificationTemplate(
            notification_service_pb2.CreateNotificationTemplateRequest(
                notification_template=template
            ),
            metadata=admin.metadata,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["body_template"]
    shopper = world.stub.ListNotificationTemplates(
        notification_service_pb2.ListNotificationTemplatesRequest(), metadata=bob.metadata
    )
    assert (await _error(shopper)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_html_parts_escape_what_events_carry(world):
    seller = await world.register()
    await world.send(
        catalog_events_pb2.ReviewPosted(
            product_id="p",
            product_title="Mug",
            seller_id=seller.user_id,
            rating=1,
            title="<script>x</script>",
        ),
        "catalog",
    )
    await world.handlers.send_due()
    [(_, content)] = world.sent_to(seller.email)[-1:]
    assert "&lt;script&gt;" in content.html_body
    assert "<script>" not in content.html_body
    assert "Mug" in content.subject
    assert "1-star" in content.subject
