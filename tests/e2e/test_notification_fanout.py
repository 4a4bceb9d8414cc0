"""The new-product fan-out end to end (issue 12 acceptance 2), on the real stack: 200 users
subscribed to one category each get one notice, in batches on the bus, and nobody else does.

The subscribers are registered and signed in on the user service's own port (the gateway allows a
client address 20 sign-ins a second, a limit this test is not about); everything they do as
users afterwards goes through the gateway.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from emporium.notification.v1 import notification_events_pb2
from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

from tests.e2e.checkout_support import PASSWORD, admin_headers, bearer, ok
from tests.e2e.test_notification_flows import CHECKOUT, SERVICES, Mail, User, _until

SUBSCRIBERS = 200


@pytest.fixture(scope="module")
def api(gateway_url, service_address):
    for name in (*SERVICES, *CHECKOUT):
        service_address(name)
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def mail(mailpit_url):
    with httpx.Client(base_url=mailpit_url, timeout=10, trust_env=False) as client:
        yield Mail(client)


class BatchListener:
    """Collects the NewProductAnnouncementBatched events the notification service publishes."""

    def __init__(self, rabbitmq_url: str) -> None:
        self.url = rabbitmq_url
        self.events: list[notification_events_pb2.NewProductAnnouncementBatched] = []
        self.ready, self.stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        import aio_pika

        async with await aio_pika.connect(self.url) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            exchange = await channel.get_exchange("emporium.events")
            await queue.bind(exchange, "emporium.notification.v1.NewProductAnnouncementBatched")
            self.ready.set()
            while not self.stop.is_set():
                message = await queue.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.2)
                    continue
                await message.ack()
                self.events.append(
                    notification_events_pb2.NewProductAnnouncementBatched.FromString(message.body)
                )

    def __enter__(self) -> BatchListener:
        self.thread.start()
        assert self.ready.wait(30), "no listener on the bus"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _subscriber(
    users: user_service_pb2_grpc.UserServiceStub, api: httpx.Client, email: str, category_id: str
) -> str:
    """Registers a user directly, signs them in, and subscribes them through the gateway."""
    user = users.Register(
        user_service_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Fan"),
        timeout=60,
    )
    token = users.Login(
        user_service_pb2.LoginRequest(email=email, password=PASSWORD), timeout=60
    ).access_token
    ok(
        api.patch(
            "/v1/notification-preferences",
            params={"update_mask": "new_products"},
            json={"new_products": {"subscribed": True, "category_ids": [category_id]}},
            headers=bearer(token),
        )
    )
    return user.id


def test_200_subscribers_of_a_category_each_get_one_notice_through_batches(
    api, mail, rabbitmq_url, service_address
):
    admin = admin_headers(api)
    tag = secrets.token_hex(4)
    slug = f"fanout-{tag}"
    category = ok(api.post("/v1/categories", json={"name": "Fan-out", "slug": slug}, headers=admin))
    domain = f"fanout-{tag}.example.com"
    emails = [f"fan{i}@{domain}" for i in range(SUBSCRIBERS)]
    with (
        grpc.insecure_channel(service_address("user")) as channel,
        ThreadPoolExecutor(8) as pool,
    ):
        users = user_service_pb2_grpc.UserServiceStub(channel)
        ids = set(pool.map(lambda e: _subscriber(users, api, e, category["id"]), emails))
    bystander = User(api)  # subscribed to nothing: hears of no product
    # Subscribed to another category: one more subscriber than a batch holds, and no notice.
    picky = User(api)
    picky.preferences(
        {"new_products": {"subscribed": True, "category_ids": [f"other-{tag}"]}}, "new_products"
    )
    # The welcome emails say the notification service knows every subscriber's address.
    _until(lambda: _count(mail, f"to:{domain}") >= SUBSCRIBERS, 180, "every subscriber's welcome")

    title = f"Fan-out kettle {tag}"
    body = {
        "sku": f"E2E-FAN-{tag.upper()}",
        "title": title,
        "price": {"currency_code": "USD", "units": "19", "nanos": 0},
        "weight_grams": 900,
        "category_ids": [category["id"]],
        "state": "STATE_DRAFT",
    }
    with BatchListener(rabbitmq_url) as batches:
        created = ok(
            api.post(
                "/v1/products", params={"request_id": str(uuid.uuid4())}, json=body, headers=admin
            )
        )
        ok(api.post(f"/v1/products/{created['id']}:publish", json={}, headers=admin))
        started = time.monotonic()
        _until(
            lambda: _count(mail, f'subject:"{title}"') >= SUBSCRIBERS,
            300,
            f"{SUBSCRIBERS} new-product notices",
        )
        elapsed = time.monotonic() - started
        time.sleep(2)  # anything doubled or misdirected arrives too
    notices = _messages(mail, f'subject:"{title}"')
    recipients = [m["To"][0]["Address"] for m in notices]
    assert sorted(recipients) == sorted(emails), "one notice per subscriber, nobody else"
    for other in (bystander, picky):
        assert not [m for m in mail.to(other.email) if title in m["Subject"]]
    mine = [e for e in batches.events if e.product_id == created["id"]]
    assert len(mine) >= 2, "the announcement went out in batches"
    assert all(len(e.user_ids) <= 200 for e in mine)
    batched = [u for e in mine for u in e.user_ids]
    assert ids <= set(batched)
    assert len(batched) == len(set(batched)), "no subscriber in two batches"
    print(f"{SUBSCRIBERS} notices in {elapsed:.1f} s through {len(mine)} batches")


def _count(mail: Mail, query: str) -> int:
    reply = mail.client.get("/api/v1/search", params={"query": query, "limit": 1})
    return reply.json()["messages_count"]


def _messages(mail: Mail, query: str) -> list[dict]:
    found: list[dict] = []
    while True:
        reply = mail.client.get(
            "/api/v1/search", params={"query": query, "limit": 100, "start": len(found)}
        ).json()
        found += reply["messages"]
        if not reply["messages"] or len(found) >= reply["messages_count"]:
            return found
