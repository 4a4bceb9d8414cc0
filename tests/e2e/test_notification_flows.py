"""Notifications end to end (issue 12), through Envoy on the real stack: RabbitMQ, FerretDB,
Mailpit and every service. Mail is read back from Mailpit's HTTP API; SMTP faults are made with
Mailpit's chaos triggers (a 4xx on every recipient stands in for an SMTP server that is down:
the sender sees the same temporary failure and must retry).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from emporium.notification.v1 import (
    notification_events_pb2,
    notification_service_pb2,
    notification_service_pb2_grpc,
)
from emporium.user.v1 import user_events_pb2
from pymongo import MongoClient

from kit.bus import Bus
from kit.config import MongoSettings, RabbitSettings
from kit.events import Event
from tests.e2e.checkout_support import (
    PASSWORD,
    Shopper,
    admin_headers,
    bearer,
    ok,
    product,
    shipping_option,
)

SERVICES = ("user", "notification")
# What placing an order and publishing a product need besides.
CHECKOUT = ("catalog", "cart", "order", "payment", "shipping")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(gateway_url, service_address):
    for name in SERVICES:
        service_address(name)
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(api) -> dict[str, str]:
    return admin_headers(api)


@pytest.fixture(scope="module")
def checkout(service_address) -> None:
    for name in CHECKOUT:
        service_address(name)


@pytest.fixture(scope="module")
def mail(mailpit_url):
    with httpx.Client(base_url=mailpit_url, timeout=10, trust_env=False) as client:
        yield Mail(client)


class Mail:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def to(self, address: str) -> list[dict[str, Any]]:
        reply = self.client.get("/api/v1/search", params={"query": f"to:{address}", "limit": 200})
        return reply.json()["messages"]

    def wait(self, address: str, count: int = 1, seconds: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while True:
            found = self.to(address)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def body(self, message_id: str) -> dict[str, Any]:
        return self.client.get(f"/api/v1/message/{message_id}").json()

    def headers(self, message_id: str) -> dict[str, list[str]]:
        return self.client.get(f"/api/v1/message/{message_id}/headers").json()

    def chaos(self, code: int, probability: int) -> None:
        reply = self.client.put(
            "/api/v1/chaos", json={"Recipient": {"ErrorCode": code, "Probability": probability}}
        )
        assert reply.status_code == 200, reply.text


class User(Shopper):
    """A registered, signed-in shopper who knows their email address."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.email = f"notify-{secrets.token_hex(6)}@example.com"
        ok(
            api.post(
                "/v1/users:register",
                json={"email": self.email, "password": PASSWORD, "display_name": "Nora"},
            )
        )
        self.registered = time.monotonic()
        login = {"email": self.email, "password": PASSWORD}
        self.token = ok(api.post("/v1/auth:login", json=login))["access_token"]
        self.headers = bearer(self.token)

    def notifications(self, **params: Any) -> list[dict[str, Any]]:
        reply = self.api.get("/v1/notifications", params=params, headers=self.headers)
        return ok(reply).get("notifications", [])

    def preferences(self, prefs: dict[str, Any], mask: str) -> dict[str, Any]:
        reply = self.api.patch(
            "/v1/notification-preferences",
            params={"update_mask": mask},
            json=prefs,
            headers=self.headers,
        )
        return ok(reply)


def _until(check, seconds: float = 60, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


# --- 1. registration ----------------------------------------------------------------------------


def test_a_new_user_gets_a_welcome_email_within_10_s_and_sees_it_in_the_history(api, mail):
    nora = User(api)
    found = mail.wait(nora.email, seconds=10)
    elapsed = time.monotonic() - nora.registered
    print(f"\nwelcome email in Mailpit {elapsed:.2f} s after registration")
    assert [m["Subject"] for m in found if m["Subject"].startswith("Welcome")], found
    assert elapsed < 10
    history = _until(
        lambda: [
            n
            for n in nora.notifications(channel="CHANNEL_EMAIL")
            if n["source_event_type"] == "emporium.user.v1.UserRegistered"
            # Recorded SENT once the SMTP server accepted it, a moment after Mailpit shows it.
            and n["state"] in ("STATE_SENT", "STATE_DELIVERED")
        ],
        what="the welcome in the history as sent",
    )
    assert history[0]["recipient"] == nora.email


# --- 3. an order, live ----------------------------------------------------------------------------


class GrpcWatcher(threading.Thread):
    def __init__(self, port: int, token: str) -> None:
        super().__init__(daemon=True)
        self.port, self.token = port, token
        self.messages: list[notification_service_pb2.WatchNotificationsResponse] = []

    def run(self) -> None:
        target = f"127.0.0.1:{self.port}"
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            stub = notification_service_pb2_grpc.NotificationServiceStub(channel)
            try:
                for message in stub.WatchNotifications(
                    notification_service_pb2.WatchNotificationsRequest(),
                    metadata=[("authorization", f"Bearer {self.token}")],
                    timeout=90,
                ):
                    self.messages.append(message)
            except grpc.RpcError:
                pass


class RestWatcher(threading.Thread):
    """WatchNotifications over REST: one JSON object per line (NDJSON) through Envoy."""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base_url, self.token = base_url, token
        self.messages: list[dict[str, Any]] = []

    def run(self) -> None:
        with (
            httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(5, read=90)) as client,
            client.stream("GET", "/v1/notifications:watch", headers=bearer(self.token)) as reply,
        ):
            try:
                for line in reply.iter_lines():
                    if line.strip():
                        self.messages.append(json.loads(line))
            except httpx.HTTPError:
                pass


def _deliver(api, admin, shipment_id: str) -> None:
    from datetime import UTC, datetime

    for state in ("STATE_IN_TRANSIT", "STATE_DELIVERED"):
        api.post(
            f"/v1/shipments/{shipment_id}/tracking-events",
            json={
                "request_id": str(uuid.uuid4()),
                "tracking_event": {
                    "state": state,
                    "description": "e2e",
                    "event_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                },
            },
            headers=admin,
        )


def test_an_order_is_confirmed_paid_shipped_and_delivered_by_email_and_in_app_live(
    api, admin, mail, gateway, gateway_url, checkout
):
    nora = User(api)
    mail.wait(nora.email)
    grpc_watch, rest_watch = (
        GrpcWatcher(gateway.port, nora.token),
        RestWatcher(gateway_url, nora.token),
    )
    grpc_watch.start()
    rest_watch.start()
    time.sleep(1)
    card = nora.card("tok_visa")
    teapot = product(api, admin, units=20, stock=5)
    option = shipping_option(api, teapot["id"])
    placed = ok(
        nora.place(
            items=[{"product_id": teapot["id"], "quantity": 1}],
            shipping_option_id=option,
            payment_method_id=card,
        )
    )
    shipped = nora.until(placed["id"], lambda o: bool(o.get("shipment_id")))
    _deliver(api, admin, shipped["shipment_id"])
    nora.until(placed["id"], lambda o: o["state"] == "STATE_DELIVERED")
    order_id = placed["id"]

    def subjects() -> list[str]:
        return [m["Subject"] for m in mail.to(nora.email)]

    wanted = [
        f"Order {order_id} confirmed",
        f"Payment receipt for order {order_id}",
        f"Order {order_id} is on its way",
        f"Order {order_id}: delivered",
    ]
    _until(lambda: all(s in subjects() for s in wanted), what=f"emails {wanted}: {subjects()}")
    assert f"Order {order_id}: in transit" in subjects()
    assert len(subjects()) == len(set(subjects())), "an email was sent twice"
    shipment_mail = next(m for m in mail.to(nora.email) if m["Subject"].endswith("is on its way"))
    tracking = ok(api.get(f"/v1/shipments/{shipped['shipment_id']}", headers=nora.headers))
    assert tracking["tracking_number"] in mail.body(shipment_mail["ID"])["Text"]
    in_app = _until(
        lambda: (
            [
                n
                for n in nora.notifications(channel="CHANNEL_IN_APP")
                if order_id in n["body"] and n["state"] in ("STATE_SENT", "STATE_DELIVERED")
            ]
            if len(
                [n for n in nora.notifications(channel="CHANNEL_IN_APP") if order_id in n["body"]]
            )
            >= 5
            else None
        ),
        what="the in-app notifications",
    )
    assert len(in_app) >= 5
    time.sleep(2)
    streamed = [m.notification.body for m in grpc_watch.messages if m.HasField("notification")]
    assert len([b for b in streamed if order_id in b]) >= 5, streamed
    counts = [m.unread_count for m in grpc_watch.messages]
    assert counts == sorted(counts)
    assert counts[-1] >= 5
    versions = [m.unread_version for m in grpc_watch.messages]
    assert versions == sorted(versions)
    # One JSON object per line (grpc-gateway style clients may wrap it in "result").
    rest = [m.get("result", m) for m in rest_watch.messages]
    rest_bodies = [m["notification"]["body"] for m in rest if "notification" in m]
    assert len([b for b in rest_bodies if order_id in b]) >= 5, rest_watch.messages
    assert rest[-1]["unread_count"] >= 5


# --- 5. preferences and the declined card -------------------------------------------------------


def test_email_off_for_order_updates_notifies_in_app_only_and_a_declined_card_says_so(
    api, admin, mail, checkout
):
    nora = User(api)
    mail.wait(nora.email)
    nora.preferences(
        {"order_updates": {"subscribed": True, "channels": ["CHANNEL_IN_APP"]}}, "order_updates"
    )
    card = nora.card("tok_chargeDeclined")
    teapot = product(api, admin, units=5, stock=5)
    option = shipping_option(api, teapot["id"])
    placed = ok(
        nora.place(
            items=[{"product_id": teapot["id"], "quantity": 1}],
            shipping_option_id=option,
            payment_method_id=card,
        )
    )
    nora.until(placed["id"], lambda o: o["state"] == "STATE_CANCELLED")

    def payment_failed() -> dict[str, dict]:
        found = {
            n["channel"]: n
            for n in nora.notifications()
            if n["source_event_type"] == "emporium.payment.v1.PaymentFailed"
        }
        # One record per channel, written one after the other.
        return found if {"CHANNEL_IN_APP", "CHANNEL_EMAIL"} <= found.keys() else {}

    by_channel = _until(payment_failed, what="the payment-failed notifications")
    assert by_channel["CHANNEL_IN_APP"]["state"] == "STATE_SENT"
    assert "failed" in by_channel["CHANNEL_IN_APP"]["body"]
    assert by_channel["CHANNEL_EMAIL"]["state"] == "STATE_SKIPPED_BY_PREFERENCE"
    assert by_channel["CHANNEL_EMAIL"]["failure_reason"] == "email not chosen for order_updates"
    time.sleep(1)
    assert not [m for m in mail.to(nora.email) if placed["id"] in m["Subject"]]


# --- 2 and 5. new products, the one-click unsubscribe --------------------------------------------


def test_subscribers_hear_of_a_new_product_and_one_click_unsubscribes_that_topic_only(
    api, admin, mail, checkout
):
    fan, picky, other = User(api), User(api), User(api)
    fan.preferences({"new_products": {"subscribed": True}}, "new_products")
    picky.preferences(
        {"new_products": {"subscribed": True, "category_ids": ["no-such-category"]}}, "new_products"
    )
    teapot = product(api, admin, units=7, stock=0)
    notice = _until(
        lambda: [m for m in mail.to(fan.email) if teapot["title"] in m["Subject"]],
        what="the new-product email",
    )
    assert len(notice) == 1
    time.sleep(1)
    assert not [m for m in mail.to(other.email) if teapot["title"] in m["Subject"]]
    assert not [m for m in mail.to(picky.email) if teapot["title"] in m["Subject"]]
    headers = mail.headers(notice[0]["ID"])
    assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    url = re.fullmatch(r"<(.+)>", headers["List-Unsubscribe"][0]).group(1)
    # What a mail client does (RFC 8058): a POST to the URL, no cookies, no sign-in.
    with httpx.Client(timeout=10, trust_env=False) as client:
        reply = client.post(
            url,
            content="List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert reply.status_code == 200, reply.text
    prefs = ok(api.get("/v1/notification-preferences", headers=fan.headers))
    assert not prefs["new_products"].get("subscribed", False)
    assert prefs["order_updates"]["subscribed"]
    forged = api.post("/v1/notification-preferences:unsubscribe", params={"token": "x.y"})
    assert forged.status_code == 400


# --- 4. reviews -------------------------------------------------------------------------------


def test_a_review_of_a_sellers_product_emails_the_seller_with_the_product_and_rating(
    api, admin, mail, checkout
):
    seller, shopper = User(api), User(api)
    title = f"E2E review kettle {secrets.token_hex(4)}"
    body = {
        "sku": f"E2E-REV-{secrets.token_hex(5).upper()}",
        "title": title,
        "price": {"currency_code": "USD", "units": "30", "nanos": 0},
        "weight_grams": 700,
        "seller_id": _user_id(seller),
        "state": "STATE_DRAFT",
    }
    created = ok(
        api.post("/v1/products", params={"request_id": str(uuid.uuid4())}, json=body, headers=admin)
    )
    ok(api.post(f"/v1/products/{created['id']}:publish", json={}, headers=admin))
    review = {"rating": 4, "title": "Quiet and quick", "body": "Boils a litre in two minutes."}
    ok(api.post(f"/v1/products/{created['id']}/reviews", json=review, headers=shopper.headers))
    notice = _until(
        lambda: [m for m in mail.to(seller.email) if title in m["Subject"]],
        what="the review email to the seller",
    )
    assert [m["Subject"] for m in notice] == [f"New 4-star review of {title}"]
    text = mail.body(notice[0]["ID"])["Text"]
    assert "4 out of 5" in text
    assert "Quiet and quick" in text
    assert "Boils a litre in two minutes." in text
    assert not [m for m in mail.to(shopper.email) if title in m["Subject"]]


# --- 6. faults ---------------------------------------------------------------------------------


def test_the_same_event_delivered_twice_sends_one_email(api, mail, rabbitmq_url):
    email = f"dup-{secrets.token_hex(6)}@example.com"
    event = Event.of(
        user_events_pb2.UserRegistered(user_id=str(uuid.uuid4()), email=email, display_name="Dup"),
        "user",
    )

    async def publish_twice() -> None:
        async with await Bus.connect(RabbitSettings(rabbitmq_url), source="user") as bus:
            await bus.publish([event])
            await bus.publish([event])

    asyncio.run(publish_twice())
    found = mail.wait(email)
    time.sleep(3)
    assert len(mail.to(email)) == len(found) == 1


def test_while_smtp_fails_temporarily_mail_is_retried_and_sent_once_when_it_is_back(api, mail):
    def welcome_mails(user: User) -> list[dict[str, Any]]:
        return [m for m in mail.to(user.email) if m["Subject"].startswith("Welcome")]

    def welcome(user: User) -> list[dict[str, Any]]:
        return [
            n
            for n in user.notifications(channel="CHANNEL_EMAIL")
            if n["source_event_type"] == "emporium.user.v1.UserRegistered"
        ]

    mail.chaos(451, 100)
    try:
        nora = User(api)
        queued = _until(
            lambda: [n for n in welcome(nora) if n.get("attempt_count", 0) >= 1],
            what="a failed attempt",
        )
        assert queued[0]["state"] == "STATE_QUEUED"
        assert queued[0]["failure_reason"].startswith("temporary: SMTP 451")
        assert welcome_mails(nora) == []
    finally:
        mail.chaos(451, 0)
    _until(lambda: welcome_mails(nora), seconds=90, what="the welcome email after the fault")
    time.sleep(2)
    assert len(welcome_mails(nora)) == 1
    [sent] = welcome(nora)
    assert sent["state"] == "STATE_SENT"
    assert sent["attempt_count"] >= 2


def test_a_permanent_rejection_fails_with_its_reason_and_publishes_notification_failed(
    api, mail, rabbitmq_url
):
    published: list[notification_events_pb2.NotificationFailed] = []
    ready, stop = threading.Event(), threading.Event()

    async def capture() -> None:
        import aio_pika

        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            exchange = await channel.get_exchange("emporium.events")
            await queue.bind(exchange, "emporium.notification.v1.NotificationFailed")
            ready.set()
            while not stop.is_set():
                message = await queue.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.2)
                    continue
                await message.ack()
                published.append(
                    notification_events_pb2.NotificationFailed.FromString(message.body)
                )

    listener = threading.Thread(target=lambda: asyncio.run(capture()), daemon=True)
    listener.start()
    assert ready.wait(30)
    mail.chaos(550, 100)
    try:
        nora = User(api)
        failed = _until(
            lambda: [
                n
                for n in nora.notifications(channel="CHANNEL_EMAIL")
                if n["state"] == "STATE_FAILED"
                and n["source_event_type"] == "emporium.user.v1.UserRegistered"
            ],
            what="the FAILED welcome email",
        )
    finally:
        mail.chaos(550, 0)
    assert failed[0]["failure_reason"].startswith("SMTP 550")
    try:
        _until(
            lambda: failed[0]["id"] in [e.notification_id for e in published],
            seconds=30,
            what="NotificationFailed on the bus",
        )
    finally:
        stop.set()
        listener.join(10)
    [event] = [e for e in published if e.notification_id == failed[0]["id"]]
    assert event.failure_reason == failed[0]["failure_reason"]


# --- 7. secrets ---------------------------------------------------------------------------------


def test_a_password_reset_email_holds_a_working_link_and_nothing_else_keeps_the_token(
    api, mail, admin
):
    nora = User(api)
    mail.wait(nora.email)
    ok(api.post("/v1/auth:requestPasswordReset", json={"email": nora.email}))
    reset = _until(
        lambda: [m for m in mail.to(nora.email) if m["Subject"] == "Reset your password"],
        what="the reset email",
    )
    text = mail.body(reset[0]["ID"])["Text"]
    token = re.search(r"reset-password\?token=([^\s]+)", text).group(1)
    new_password = "a brand new passphrase"
    ok(api.post("/v1/auth:resetPassword", json={"token": token, "new_password": new_password}))
    ok(api.post("/v1/auth:login", json={"email": nora.email, "password": new_password}))
    # The API, to the user and to an admin.
    assert token not in json.dumps(nora.notifications())
    everything = api.get("/v1/notifications", params={"user_id": _user_id(nora)}, headers=admin)
    assert token not in ok(everything).__repr__()
    assert "[redacted]" in json.dumps(nora.notifications())
    # Every document of the service's database.
    settings = MongoSettings.from_env("emporium_notification")
    client: MongoClient = MongoClient(settings.url, serverSelectionTimeoutMS=5000)
    try:
        db = client[settings.database]
        for name in db.list_collection_names():
            for doc in db[name].find():
                assert token not in repr(doc), f"{name} holds the token"
                assert token.encode() not in repr(doc).encode()
    finally:
        client.close()
    # The service logs (the stack's log files).
    for log in (ROOT / "var" / "stack").glob("*.log"):
        lines = [
            line for line in log.read_text(errors="replace").splitlines() if "notification" in line
        ]
        assert not [line for line in lines if token in line], log


def _user_id(user: User) -> str:
    return ok(user.api.get("/v1/users/me", headers=user.headers))["id"]


# --- 8. ownership and roles ---------------------------------------------------------------------


def test_another_users_notifications_are_404_and_admin_rpcs_are_403_for_shoppers(api):
    ann, bob = User(api), User(api)
    [mine, *_] = _until(lambda: ann.notifications(), what="ann's welcome")
    assert api.get(f"/v1/notifications/{mine['id']}", headers=bob.headers).status_code == 404
    mark = api.post(f"/v1/notifications/{mine['id']}:markRead", json={}, headers=bob.headers)
    assert mark.status_code == 404
    retry = api.post(f"/v1/notifications/{mine['id']}:retry", json={}, headers=bob.headers)
    assert retry.status_code == 403
    assert api.get("/v1/notification-templates", headers=bob.headers).status_code == 403
    test_send = api.post(
        "/v1/notifications:sendTest",
        json={"channel": "CHANNEL_EMAIL", "address": "x@example.com", "subject": "s", "body": "b"},
        headers=bob.headers,
    )
    assert test_send.status_code == 403
    assert ok(api.post(f"/v1/notifications/{mine['id']}:markRead", json={}, headers=ann.headers))[
        "read_time"
    ]
