"""The notification service's stores on FerretDB and the in-memory fakes pass one contract;
its SMTP adapter against Mailpit; the whole service in-process on MongoDB, RabbitMQ and Mailpit.

Each run uses a Mongo database of its own (a random suffix) and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from emporium.user.v1 import user_events_pb2

from kit import mongo, ssrf
from kit.bus import Bus
from kit.config import MongoSettings, RabbitSettings
from kit.events import Event
from services.notification import bootstrap, rendering
from services.notification.adapters import memory
from services.notification.adapters import mongo as store
from services.notification.adapters.email import SmtpEmailSender
from services.notification.adapters.webpush import VapidKey, WebPushSender
from services.notification.config import Settings
from services.notification.domain import (
    Channel,
    Notification,
    Platform,
    Preferences,
    PushDevice,
    Rendered,
    SendError,
    State,
    Subscription,
    Topic,
)
from tests.push_receiver import PushReceiver

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_t" + secrets.token_hex(4)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# As long as a real one: longer than a 78-character header line.
UNSUBSCRIBE = "http://127.0.0.1:8080/v1/notification-preferences:unsubscribe?token=" + "A" * 80


def _notification(user_id: str, **fields) -> Notification:
    defaults = dict(
        id=str(uuid.uuid4()),
        user_id=user_id,
        channel=Channel.IN_APP,
        topic=Topic.ORDER_UPDATES,
        state=State.SENT,
        dedupe_key=str(uuid.uuid4()),
        create_time=T0,
        subject="Order confirmed",
        body="Order o1 is confirmed.",
    )
    defaults.update(fields)
    return Notification(**defaults)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def db(mongo_url: str) -> AsyncIterator[mongo.MongoDatabase]:
    database = mongo.connect(MongoSettings("emporium_notification" + SUFFIX, mongo_url))
    yield database
    await database.client.drop_database(database.name)
    await database.close()


@pytest_asyncio.fixture(loop_scope="module", params=["memory", "mongo"])
async def stores(request, db) -> dict:
    if request.param == "memory":
        notifications = memory.InMemoryNotificationRepository()
        return {
            "notifications": notifications,
            "preferences": memory.InMemoryPreferencesRepository(),
            "templates": memory.InMemoryTemplateRepository(),
            "fanouts": memory.InMemoryFanOutRepository(notifications.outbox),
            "push_devices": memory.InMemoryPushDeviceRepository(),
        }
    notifications = await store.MongoNotificationRepository.open(db)
    return {
        "notifications": notifications,
        "preferences": store.MongoPreferencesRepository(db),
        "templates": store.MongoTemplateRepository(db),
        "fanouts": store.MongoFanOutRepository(db, notifications.outbox),
        "push_devices": store.MongoPushDeviceRepository(db),
    }


# --- the contract -------------------------------------------------------------------------------


async def test_a_second_notification_with_the_same_dedupe_key_is_not_stored(stores):
    repo = stores["notifications"]
    user = str(uuid.uuid4())
    first = _notification(user, dedupe_key=f"e1:{user}:4")
    assert await repo.add(first)
    assert not await repo.add(_notification(user, dedupe_key=f"e1:{user}:4"))
    page, _ = await repo.list(user)
    assert [n.id for n in page] == [first.id]


async def test_listing_pages_newest_first_and_filters_unread(stores):
    repo = stores["notifications"]
    user = str(uuid.uuid4())
    made = [
        _notification(user, create_time=T0 + timedelta(seconds=i), channel=Channel(1 + i % 2 * 3))
        for i in range(5)
    ]
    for n in made:
        await repo.add(n)
    first, cursor = await repo.list(user, limit=3)
    second, last = await repo.list(user, cursor=cursor, limit=3)
    assert [n.id for n in first + second] == [n.id for n in reversed(made)]
    assert last is None
    await repo.mark_read(made[4].id, T0)
    assert await repo.count_unread(user) == 4
    assert await repo.count_unread(user, Channel.IN_APP) == 2
    unread, _ = await repo.list(user, unread_only=True, channel=Channel.EMAIL)
    assert {n.id for n in unread} == {made[0].id, made[2].id}


async def test_marking_read_twice_keeps_the_first_read_time(stores):
    repo = stores["notifications"]
    n = _notification(str(uuid.uuid4()))
    await repo.add(n)
    await repo.mark_read(n.id, T0)
    again = await repo.mark_read(n.id, T0 + timedelta(hours=1))
    assert again.read_time == T0


async def test_a_due_notification_is_claimed_once_until_its_lease_ends(stores):
    repo = stores["notifications"]
    user = str(uuid.uuid4())
    due = _notification(
        user, channel=Channel.EMAIL, state=State.QUEUED, scheduled_time=T0 - timedelta(days=400)
    )
    await repo.add(due)
    now = T0 - timedelta(days=399)
    [claimed] = await repo.claim_due(now, now + timedelta(seconds=60), 10)
    assert claimed.id == due.id
    assert await repo.claim_due(now, now + timedelta(seconds=60), 10) == []
    [again] = await repo.claim_due(now + timedelta(seconds=61), now + timedelta(seconds=121), 10)
    assert again.id == due.id
    await repo.save(replace(again, state=State.SENT, scheduled_time=None, sealed=b""))
    assert await repo.claim_due(now + timedelta(days=1), now + timedelta(days=2), 10) == []


async def test_racing_batch_claims_share_the_due_notifications_without_overlap(stores):
    repo = stores["notifications"]
    user = str(uuid.uuid4())
    when = T0 - timedelta(days=500)
    due = [
        _notification(
            user,
            channel=Channel.EMAIL,
            state=State.QUEUED,
            scheduled_time=when + timedelta(seconds=i),
        )
        for i in range(7)
    ]
    for n in due:
        await repo.add(n)
    now = when + timedelta(minutes=1)
    first = await repo.claim_due(now, now + timedelta(seconds=60), 3)
    assert [n.id for n in first] == [n.id for n in due[:3]]  # oldest first, at most the limit
    assert all(n.scheduled_time == now + timedelta(seconds=60) for n in first)
    # Racing claims may pick the same ids; each notification goes to one of them only.
    others: list[str] = []
    while True:
        batches = await asyncio.gather(
            *(repo.claim_due(now, now + timedelta(seconds=60), 3) for _ in range(3))
        )
        if not any(batches):
            break
        others += [n.id for batch in batches for n in batch]
    assert sorted(others) == sorted(n.id for n in due[3:])  # each claimed once, by one claim


async def test_saving_writes_events_to_the_outbox_and_drops_the_sealed_content(stores):
    repo = stores["notifications"]
    n = _notification(str(uuid.uuid4()), state=State.QUEUED, sealed=b"sealed", scheduled_time=T0)
    await repo.add(n)
    event = Event.of(user_events_pb2.UserDeleted(user_id=n.user_id), "notification")
    await repo.save(replace(n, state=State.SENT, sealed=b""), [event])
    assert (await repo.get(n.id)).sealed == b""
    pending = await repo.outbox.pending(1000)
    assert event.id in {e.id for e in pending}
    await repo.outbox.mark_sent([e for e in pending if e.id == event.id])
    assert event.id not in {e.id for e in await repo.outbox.pending(1000)}


async def test_anonymising_strips_a_users_history(stores):
    repo = stores["notifications"]
    user = str(uuid.uuid4())
    n = _notification(user, recipient="ada@example.com")
    await repo.add(n)
    assert await repo.anonymise(user) == 1
    gone = await repo.get(n.id)
    assert (gone.user_id, gone.recipient, gone.subject, gone.body) == ("", "", "", "")


async def test_only_sent_notifications_become_delivered(stores):
    repo = stores["notifications"]
    user = str(uuid.uuid4())
    sent = _notification(user)
    queued = _notification(user, channel=Channel.EMAIL, state=State.QUEUED, scheduled_time=T0)
    await repo.add(sent)
    await repo.add(queued)
    later = T0 + timedelta(seconds=3)
    assert await repo.mark_delivered([sent.id, queued.id], later) == 1
    assert await repo.mark_delivered([sent.id], later) == 0
    delivered = await repo.get(sent.id)
    assert (delivered.state, delivered.deliver_time) == (State.DELIVERED, later)
    assert (await repo.get(queued.id)).state == State.QUEUED


def _device(user_id: str, endpoint: str = "", **fields) -> PushDevice:
    defaults = dict(
        id=str(uuid.uuid4()),
        user_id=user_id,
        platform=Platform.WEB_PUSH,
        endpoint=endpoint or f"https://push.example.com/{uuid.uuid4()}",
        p256dh="key",
        auth="secret",
        create_time=T0,
    )
    return PushDevice(**{**defaults, **fields})


async def test_push_devices_are_one_per_endpoint_and_a_reregistered_one_changes_hands(stores):
    devices = stores["push_devices"]
    ada, bob = str(uuid.uuid4()), str(uuid.uuid4())
    first = await devices.register(_device(ada))
    second = await devices.register(_device(ada, create_time=T0 + timedelta(seconds=1)))
    assert [d.id for d in await devices.list(ada)] == [second.id, first.id]
    moved = await devices.register(
        _device(bob, first.endpoint, create_time=T0 + timedelta(seconds=2), p256dh="new")
    )
    assert (moved.id, moved.user_id, moved.p256dh) == (first.id, bob, "new")
    assert [d.id for d in await devices.list(ada)] == [second.id]
    assert (await devices.by_endpoint(first.endpoint)).user_id == bob
    await devices.sent(second.id, T0 + timedelta(seconds=5))
    assert (await devices.get(second.id)).last_send_time == T0 + timedelta(seconds=5)
    assert await devices.delete(second.id)
    assert not await devices.delete(second.id)
    assert await devices.get(second.id) is None


async def test_the_inbox_version_grows_with_each_change(stores):
    repo = stores["notifications"]
    user = str(uuid.uuid4())
    assert await repo.inbox_version(user) == 0
    assert await repo.bump_inbox(user) == 1
    assert await repo.bump_inbox(user) == 2
    assert await repo.inbox_version(user) == 2


async def test_new_product_subscribers_come_in_id_order_pages(stores):
    prefs = stores["preferences"]
    marker = uuid.uuid4().hex[:6]
    ids = sorted(f"{marker}-{i:03d}" for i in range(7))
    for user_id in ids:
        p = Preferences(user_id)
        topics = {**p.topics, Topic.NEW_PRODUCTS: Subscription(True)}
        await prefs.save(replace(p, topics=topics))
    await prefs.save(Preferences(f"{marker}-zzz"))  # not subscribed
    got, after = [], f"{marker}-"
    while page := [
        u for u in await prefs.new_product_subscribers(after, 3) if u.startswith(marker)
    ]:
        got += page
        after = page[-1]
    assert got == ids
    assert (await prefs.get(ids[0])).subscription(Topic.NEW_PRODUCTS).subscribed


async def test_an_active_template_deactivates_the_one_active_for_its_key(stores):
    templates = stores["templates"]
    event_type = f"test.{uuid.uuid4().hex}"
    base = rendering.Template(
        id=str(uuid.uuid4()),
        event_type=event_type,
        channel=Channel.EMAIL,
        locale="en",
        body_template="a",
    )
    await templates.add(base)
    newer = replace(base, id=str(uuid.uuid4()), body_template="b")
    request_id = str(uuid.uuid4())
    await templates.add(newer, request_id)
    assert (await templates.add(replace(newer, id=str(uuid.uuid4())), request_id)).id == newer.id
    assert (await templates.active(event_type, Channel.EMAIL, "en")).id == newer.id
    assert not (await templates.get(base.id)).active
    assert not await templates.replace(replace(newer, version=2), expected_version=7)


async def test_a_fan_out_is_recorded_once(stores):
    event = Event.of(user_events_pb2.UserDeleted(user_id="x"), "notification")
    source = str(uuid.uuid4())
    assert await stores["fanouts"].record(source, [event])
    assert not await stores["fanouts"].record(source, [event])


# --- SMTP against Mailpit ---------------------------------------------------------------------


def _smtp() -> tuple[str, int]:
    return os.environ.get("EMPORIUM_SMTP_HOST", "127.0.0.1"), int(
        os.environ.get("EMPORIUM_SMTP_PORT", "1025")
    )


async def _messages(mailpit_url: str, query: str) -> list[dict]:
    async with httpx.AsyncClient(trust_env=False) as client:
        reply = await client.get(f"{mailpit_url}/api/v1/search", params={"query": query})
        return reply.json()["messages"]


async def test_an_email_arrives_in_mailpit_as_text_and_html_with_one_click_unsubscribe(mailpit_url):
    host, port = _smtp()
    sender = SmtpEmailSender(host, port, "Emporium <no-reply@emporium.local>")
    address = f"{uuid.uuid4().hex[:10]}@example.com"
    n = _notification("u", channel=Channel.EMAIL, recipient=address, list_unsubscribe=UNSUBSCRIBE)
    await sender.send(n, Rendered("Hello", "plain body", "<p>html body</p>"))
    [found] = await _messages(mailpit_url, f"to:{address}")
    async with httpx.AsyncClient(trust_env=False) as client:
        message = (await client.get(f"{mailpit_url}/api/v1/message/{found['ID']}")).json()
        headers = (await client.get(f"{mailpit_url}/api/v1/message/{found['ID']}/headers")).json()
    assert message["Subject"] == "Hello"
    assert message["Text"].strip() == "plain body"
    assert "<p>html body</p>" in message["HTML"]
    assert headers["List-Unsubscribe"] == [f"<{UNSUBSCRIBE}>"]
    assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]


async def test_a_550_rejection_is_permanent_and_a_closed_port_is_temporary(mailpit_url):
    host, port = _smtp()
    address = f"{uuid.uuid4().hex[:10]}@example.com"
    n = _notification("u", channel=Channel.EMAIL, recipient=address)
    async with httpx.AsyncClient(trust_env=False) as client:
        chaos = {"Recipient": {"ErrorCode": 550, "Probability": 100}}
        assert (await client.put(f"{mailpit_url}/api/v1/chaos", json=chaos)).status_code == 200
        try:
            with pytest.raises(SendError) as rejected:
                await SmtpEmailSender(host, port, "x@emporium.local").send(n, Rendered("s", "b"))
        finally:
            await client.put(
                f"{mailpit_url}/api/v1/chaos",
                json={"Recipient": {"ErrorCode": 451, "Probability": 0}},
            )
    assert rejected.value.permanent
    assert rejected.value.reason.startswith("SMTP 550")
    with pytest.raises(SendError) as refused:
        await SmtpEmailSender(host, 9, "x@emporium.local", timeout_seconds=2).send(
            n, Rendered("s", "b")
        )
    assert not refused.value.permanent


# --- the push channel: the fake and Web Push to a local endpoint pass one contract ---------------


class PushWorld:
    """A push channel (`sender`), its devices, and what devices received (decrypted)."""

    def __init__(self, kind: str, receiver: PushReceiver | None) -> None:
        self.devices = memory.InMemoryPushDeviceRepository()
        self.clock = memory.MovableClock()
        self.receiver = receiver
        if receiver is None:
            self.sender = self.fake = memory.RecordingPushService(self.devices, self.clock)
        else:
            guard = ssrf.guard_from("127.0.0.0/8", allow_http=True)
            self.sender = WebPushSender(
                self.devices,
                VapidKey.development(Path(f"/tmp/emporium-vapid-{SUFFIX}.pem")),
                ssrf.GuardedHttp(guard),
                subject="mailto:push@example.com",
                clock=self.clock,
            )

    async def device(self, user_id: str, answer: int = 201) -> PushDevice:
        path = uuid.uuid4().hex
        if self.receiver is None:
            endpoint = f"https://push.example.com/{path}"
            self.fake.answers[endpoint] = answer
            keys = ("p256dh", "auth")
        else:
            endpoint = self.receiver.endpoint(path)
            self.receiver.answers[path] = answer
            keys = (self.receiver.p256dh, self.receiver.auth_secret)
        return await self.devices.register(
            PushDevice(str(uuid.uuid4()), user_id, Platform.WEB_PUSH, endpoint, *keys)
        )

    def received(self, device: PushDevice) -> list[dict]:
        if self.receiver is None:
            return [m for e, m in self.fake.received if e == device.endpoint]
        path = device.endpoint.rsplit("/", 1)[1]
        return [r.message for r in self.receiver.received if r.path == path and r.message]


@pytest_asyncio.fixture(loop_scope="module", params=["fake", "webpush"])
async def push(request) -> AsyncIterator[PushWorld]:
    receiver = await PushReceiver().start() if request.param == "webpush" else None
    world = PushWorld(request.param, receiver)
    yield world
    if receiver is not None:
        await world.sender.aclose()
        await receiver.stop()


async def test_a_push_reaches_every_device_of_the_user_decrypted(push):
    user = str(uuid.uuid4())
    phone, laptop = await push.device(user), await push.device(user)
    n = _notification(user, channel=Channel.PUSH)
    await push.sender.send(n, Rendered("Order confirmed", "Order o1 is confirmed."))
    for device in (phone, laptop):
        [message] = push.received(device)
        assert (message["title"], message["body"]) == ("Order confirmed", "Order o1 is confirmed.")
        assert message["notification_id"] == n.id
        assert (await push.devices.get(device.id)).last_send_time == push.clock.now()


async def test_a_gone_subscription_is_removed_and_without_devices_the_push_fails_for_good(push):
    user = str(uuid.uuid4())
    gone = await push.device(user, answer=410)
    n = _notification(user, channel=Channel.PUSH)
    with pytest.raises(SendError) as failed:
        await push.sender.send(n, Rendered("t", "b"))
    assert failed.value.permanent
    assert "gone (410)" in failed.value.reason
    assert await push.devices.get(gone.id) is None
    with pytest.raises(SendError) as none_left:
        await push.sender.send(n, Rendered("t", "b"))
    assert none_left.value.permanent
    assert none_left.value.reason == "no push device"


async def test_a_busy_push_service_is_a_temporary_failure_and_keeps_the_device(push):
    user = str(uuid.uuid4())
    busy = await push.device(user, answer=429)
    with pytest.raises(SendError) as failed:
        await push.sender.send(_notification(user, channel=Channel.PUSH), Rendered("t", "b"))
    assert not failed.value.permanent
    assert await push.devices.get(busy.id) is not None


async def test_web_push_carries_a_vapid_jwt_for_the_endpoints_origin():
    receiver = await PushReceiver().start()
    world = PushWorld("webpush", receiver)
    try:
        device = await world.device("u1")
        await world.sender.send(_notification("u1", channel=Channel.PUSH), Rendered("t", "b"))
        [got] = receiver.received
        assert got.vapid["k"] == world.sender.vapid.public_key
        assert got.vapid["sub"] == "mailto:push@example.com"
        assert got.headers["TTL"]
        assert device.endpoint.startswith(receiver.origin)
    finally:
        await world.sender.aclose()
        await receiver.stop()


# --- the service in-process -------------------------------------------------------------------


async def test_a_user_registered_on_the_bus_gets_a_welcome_email_in_mailpit(
    db, mailpit_url, rabbitmq_url
):
    host, port = _smtp()
    queue = f"notification-test-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_NOTIFICATION_GRPC_PORT": "0",
            "EMPORIUM_MONGO_URL": os.environ.get(
                "EMPORIUM_MONGO_URL", "mongodb://127.0.0.1:27017/"
            ),
            "EMPORIUM_MONGO_DATABASE_SUFFIX": SUFFIX,
            "EMPORIUM_RABBITMQ_URL": rabbitmq_url,
            "EMPORIUM_SMTP_HOST": host,
            "EMPORIUM_SMTP_PORT": str(port),
            "EMPORIUM_NOTIFICATION_QUEUE": queue,
        }
    )
    app = await bootstrap.build(settings, verifier=object())
    tasks = [asyncio.create_task(work()) for work in app.background]
    address = f"{uuid.uuid4().hex[:10]}@example.com"
    try:
        async with await Bus.connect(RabbitSettings(rabbitmq_url), source="user") as bus:
            await bus.publish(
                [
                    Event.of(
                        user_events_pb2.UserRegistered(
                            user_id=str(uuid.uuid4()), email=address, display_name="Ada"
                        ),
                        "user",
                    )
                ]
            )
            found = []
            for _ in range(100):
                found = await _messages(mailpit_url, f"to:{address}")
                if found:
                    break
                await asyncio.sleep(0.1)
            assert [m["Subject"] for m in found] == ["Welcome to Emporium, Ada"]
            await bus.delete_queue(queue)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.close()
