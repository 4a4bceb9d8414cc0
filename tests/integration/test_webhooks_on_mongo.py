"""The webhooks service on the real servers: its store on FerretDB, events over RabbitMQ, HTTP to a
receiver on 127.0.0.1.

The store contract runs twice, over the in-memory fakes and the MongoDB adapters, so the unit
tests' fakes behave as the real store does. The service runs in-process (kit.server) with the
real sender, whose SSRF guard allows 127.0.0.0/8 only, as the local stack's does.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest_asyncio
from emporium.order.v1 import order_events_pb2
from emporium.webhooks.v1 import (
    webhook_delivery_pb2,
    webhook_endpoint_pb2,
    webhooks_service_pb2,
    webhooks_service_pb2_grpc,
)
from standardwebhooks.webhooks import Webhook

from kit import auth, mongo, server
from kit.bus import Bus
from kit.config import MongoSettings
from kit.events import Event
from services.webhooks import bootstrap
from services.webhooks.adapters.memory import InMemoryDeliveries, InMemoryEndpoints
from services.webhooks.adapters.mongo import INDEXES, MongoDeliveries, MongoEndpoints
from services.webhooks.config import Settings
from services.webhooks.domain import (
    Attempt,
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointState,
    Secret,
    delivery_id,
    new_secret,
)
from tests.unit.test_order_service import AUDIENCE, ISSUER, Tokens

E = webhook_endpoint_pb2.WebhookEndpoint
D = webhook_delivery_pb2.WebhookDelivery
pb = webhooks_service_pb2
FERNET_KEY = base64.urlsafe_b64encode(b"x" * 32)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --- the store contract ----------------------------------------------------------------------


@pytest_asyncio.fixture(params=["memory", "mongo"])
async def store(request, mongo_url: str) -> AsyncIterator[tuple]:
    if request.param == "memory":
        yield InMemoryEndpoints(), InMemoryDeliveries()
        return
    settings = MongoSettings(database=f"webhooks_contract_{uuid.uuid4().hex[:8]}", url=mongo_url)
    db = mongo.connect(settings)
    await db.ensure_indexes(INDEXES)
    try:
        yield MongoEndpoints(db, FERNET_KEY), MongoDeliveries(db)
    finally:
        await db.client.drop_database(db.name)
        await db.close()


def _endpoint(**kw) -> Endpoint:
    now = kw.pop("now", _now())
    return Endpoint(
        id=kw.pop("id", str(uuid.uuid4())),
        url="https://erp.example.com/hooks",
        description="ERP",
        event_types=kw.pop("event_types", ("emporium.order.v1.OrderPlaced",)),
        state=kw.pop("state", EndpointState.ACTIVE),
        secrets=(Secret(new_secret()),),
        create_time=now,
        update_time=now,
        **kw,
    )


def _delivery(endpoint_id: str, now: datetime, **kw) -> Delivery:
    event_id = kw.pop("event_id", str(uuid.uuid4()))
    return Delivery(
        id=delivery_id(endpoint_id, event_id),
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type="emporium.order.v1.OrderPlaced",
        event_time=now,
        payload='{"type":"x"}',
        state=kw.pop("state", DeliveryState.PENDING),
        create_time=kw.pop("create_time", now),
        update_time=now,
        next_attempt_time=kw.pop("next_attempt_time", now),
        **kw,
    )


async def test_an_endpoint_reads_back_with_its_secrets(store) -> None:
    endpoints, _ = store
    e = _endpoint()
    assert await endpoints.insert(e)
    assert not await endpoints.insert(e)
    assert await endpoints.get(e.id) == e
    rotated = e.rotated(_now(), timedelta(hours=1))
    assert await endpoints.replace(rotated, e.version)
    assert not await endpoints.replace(rotated, e.version)  # a stale version loses
    assert await endpoints.get(e.id) == rotated


async def test_endpoints_list_newest_first_with_filters(store) -> None:
    endpoints, _ = store
    base = _now()
    made = [
        _endpoint(now=base + timedelta(seconds=i), event_types=("*",) if i % 2 else ("a.B",))
        for i in range(5)
    ]
    for e in made:
        await endpoints.insert(e)
    page = await endpoints.list(state=None, event_type=None, after=None, limit=3)
    assert [e.id for e in page] == [e.id for e in made[::-1][:3]]
    rest = await endpoints.list(
        state=None, event_type=None, after=(page[-1].create_time, page[-1].id), limit=3
    )
    assert [e.id for e in rest] == [made[1].id, made[0].id]
    assert {
        e.id for e in await endpoints.list(state=None, event_type="c.D", after=None, limit=9)
    } == {
        made[1].id,
        made[3].id,
    }
    assert await endpoints.count() == 5


async def test_state_changes_from_active_once_with_outbox_events(store) -> None:
    endpoints, _ = store
    e = _endpoint()
    await endpoints.insert(e)
    now = _now()
    await endpoints.failed(e.id, now)
    await endpoints.failed(e.id, now + timedelta(days=1))  # keeps the start of the period
    assert (await endpoints.get(e.id)).failing_since == now
    event = Event.of(order_events_pb2.OrderPlaced(order_id="x"), "webhooks")
    assert await endpoints.set_state(e.id, EndpointState.SUSPENDED, now, [event])
    assert not await endpoints.set_state(e.id, EndpointState.DISABLED, now)
    assert (await endpoints.get(e.id)).state is EndpointState.SUSPENDED
    assert await endpoints.active() == []
    pending = await endpoints.outbox.pending() if hasattr(endpoints.outbox, "pending") else None
    if pending is not None:
        assert [p.id for p in pending] == [event.id]
    else:
        assert [p.id for p in endpoints.outbox] == [event.id]


async def test_a_delivery_is_stored_once_per_event_and_endpoint(store) -> None:
    _, deliveries = store
    now = _now()
    d = _delivery("ep", now)
    assert await deliveries.add(d)
    assert not await deliveries.add(d)
    assert await deliveries.get(d.id) == d


async def test_due_deliveries_are_claimed_by_one_owner_until_recorded(store) -> None:
    _, deliveries = store
    now = _now()
    due = [_delivery("ep", now - timedelta(seconds=i)) for i in range(3)]
    later = _delivery("ep", now, next_attempt_time=now + timedelta(minutes=5))
    await deliveries.add(later)
    assert not await deliveries.any_due(now)  # the dispatcher's idle check, for all endpoints
    assert await deliveries.any_due(now + timedelta(minutes=5))
    for d in due:
        await deliveries.add(d)
    assert await deliveries.any_due(now)
    lease = now + timedelta(minutes=1)
    ids = await deliveries.due("ep", now, 10)
    assert sorted(ids) == sorted(d.id for d in due)  # the later one is not due
    claims = await asyncio.gather(
        *(deliveries.claim(i, now, lease, owner) for i in ids for owner in ("a", "b"))
    )
    won = [c for c in claims if c is not None]
    assert sorted(c.id for c in won) == sorted(ids)  # each once
    claims = [[c for c in claims[0::2] if c], [c for c in claims[1::2] if c]]
    owner = "a" if claims[0] else "b"
    first = claims[0][0] if claims[0] else claims[1][0]
    attempt = Attempt(now, 500, timedelta(milliseconds=12), "no", "")
    assert not await deliveries.record(first.id, "intruder", attempt, DeliveryState.FAILED, None, 1)
    retry = now + timedelta(seconds=5)
    assert await deliveries.record(first.id, owner, attempt, DeliveryState.RETRYING, retry, 1)
    stored = await deliveries.get(first.id)
    assert (stored.state, stored.next_attempt_time, stored.attempts) == (
        DeliveryState.RETRYING,
        retry,
        (attempt,),
    )
    assert first.id not in await deliveries.due("ep", now, 10)
    assert await deliveries.claim(first.id, now, lease, "c") is None  # not due yet
    assert first.id in await deliveries.due("ep", retry, 10)
    assert await deliveries.claim(first.id, retry, lease, "c") is not None


async def test_redelivery_restarts_failed_deliveries_in_a_time_range(store) -> None:
    _, deliveries = store
    now = _now()
    old = _delivery("ep", now, state=DeliveryState.FAILED, create_time=now - timedelta(days=2))
    new = _delivery("ep", now, state=DeliveryState.FAILED, create_time=now - timedelta(hours=1))
    done = _delivery("ep", now, state=DeliveryState.SUCCEEDED)
    for d in (old, new, done):
        await deliveries.add(d)
    count = await deliveries.redeliver_failed("ep", now - timedelta(days=1), now, now)
    assert count == 1
    assert (await deliveries.get(new.id)).state is DeliveryState.PENDING
    assert (await deliveries.get(old.id)).state is DeliveryState.FAILED
    assert await deliveries.redeliver(new.id, now) is None  # already pending
    moved = await deliveries.redeliver(done.id, now)
    assert (moved.state, moved.schedule_index) == (DeliveryState.PENDING, 0)
    listed = await deliveries.list(
        "ep", state=DeliveryState.PENDING, event_type=None, event_id=None, after=None, limit=10
    )
    assert {d.id for d in listed} == {new.id, done.id}
    assert await deliveries.prune(now + timedelta(seconds=1)) == 1  # the finished old one
    await deliveries.delete_for_endpoint("ep")
    assert await deliveries.get(new.id) is None


# --- the service on the real servers ----------------------------------------------------------


class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers from a script and records what it got."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()


class Service:
    def __init__(self, env: dict[str, str], tokens: Tokens) -> None:
        self.settings = Settings.from_env(env)
        self.tokens = tokens

    async def __aenter__(self) -> webhooks_service_pb2_grpc.WebhooksServiceStub:
        self.app = await bootstrap.build(
            self.settings,
            verifier=auth.JwtVerifier(self.tokens.source, issuer=ISSUER, audience=AUDIENCE),
        )
        self.grpc_server, port, _ = await server.start(self.settings.server, self.app)
        self.tasks = [asyncio.create_task(work()) for work in self.app.background]
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        return webhooks_service_pb2_grpc.WebhooksServiceStub(self.channel)

    async def __aexit__(self, *exc) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.channel.close()
        await self.grpc_server.stop(0)
        await self.app.close()


@pytest_asyncio.fixture
async def env(mongo_url: str, rabbitmq_url: str) -> AsyncIterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    values = {
        **os.environ,
        "EMPORIUM_ENV": "development",
        "EMPORIUM_WEBHOOKS_GRPC_PORT": "0",
        "EMPORIUM_MONGO_URL": mongo_url,
        "EMPORIUM_RABBITMQ_URL": rabbitmq_url,
        "EMPORIUM_MONGO_DATABASE_SUFFIX": f"_it_{suffix}",
        "EMPORIUM_WEBHOOKS_QUEUE": f"webhooks-it-{suffix}",
        "EMPORIUM_WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8",
        "EMPORIUM_WEBHOOKS_ALLOW_HTTP": "true",
        "EMPORIUM_WEBHOOKS_RETRY_SCHEDULE": "1,1,1",
        "EMPORIUM_WEBHOOKS_POLL_SECONDS": "0.2",
    }
    yield values
    settings = Settings.from_env(values)
    db = mongo.connect(settings.mongo)
    await db.client.drop_database(db.name)
    await db.close()
    bus = await Bus.connect(settings.rabbit, source="test")
    await bus.delete_queue(settings.queue)
    await bus.close()


async def _until(condition, seconds: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_a_published_event_reaches_the_receiver_signed_and_retries_survive_a_restart(
    env: dict[str, str],
) -> None:
    tokens = Tokens()
    admin = [("authorization", f"Bearer {tokens.token(str(uuid.uuid4()), admin=True)}")]
    receiver = Receiver()
    receiver.script = [500]
    long_wait = {**env, "EMPORIUM_WEBHOOKS_RETRY_SCHEDULE": "3,1"}
    try:
        async with Service(long_wait, tokens) as stub:
            created = await stub.CreateWebhookEndpoint(
                pb.CreateWebhookEndpointRequest(
                    webhook_endpoint=E(url=receiver.url, event_types=["*"])
                ),
                metadata=admin,
            )
            bus = await Bus.connect(Settings.from_env(env).rabbit, source="order")
            event = Event.of(order_events_pb2.OrderPlaced(order_id="o-7"), "order")
            await bus.publish([event])
            await bus.close()
            await _until(lambda: _async(len(receiver.got) >= 1))
        # Stopped while the retry waits; a new process (same store) carries on.
        async with Service(env, tokens) as stub:
            await _until(lambda: _async(len(receiver.got) >= 2))
            listed = await stub.ListWebhookDeliveries(
                pb.ListWebhookDeliveriesRequest(endpoint_id=created.id), metadata=admin
            )

            async def succeeded() -> bool:
                got = await stub.GetWebhookDelivery(
                    pb.GetWebhookDeliveryRequest(id=listed.webhook_deliveries[0].id),
                    metadata=admin,
                )
                return got.state == D.STATE_SUCCEEDED

            await _until(succeeded)
            delivery = await stub.GetWebhookDelivery(
                pb.GetWebhookDeliveryRequest(id=listed.webhook_deliveries[0].id), metadata=admin
            )
    finally:
        receiver.close()
    assert [a.response_status_code for a in delivery.attempts] == [500, 200]
    assert Counter(h["webhook-id"] for h, _ in receiver.got) == {event.id: 2}
    headers, body = receiver.got[-1]
    data = Webhook(created.secret).verify(body, headers)
    assert data["data"]["order_id"] == "o-7"


async def _async(value):
    return value


async def test_secrets_are_encrypted_at_rest(env: dict[str, str]) -> None:
    tokens = Tokens()
    admin = [("authorization", f"Bearer {tokens.token(str(uuid.uuid4()), admin=True)}")]
    async with Service(env, tokens) as stub:
        created = await stub.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(
                webhook_endpoint=E(url="http://127.0.0.1:9/x", event_types=["*"])
            ),
            metadata=admin,
        )
    settings = Settings.from_env(env)
    db = mongo.connect(settings.mongo)
    raw = await db["endpoints"].find_one({"_id": created.id})
    await db.close()
    assert created.secret.encode() not in repr(raw).encode()
    assert created.secret.removeprefix("whsec_").encode() not in repr(raw).encode()


def test_the_contract_fakes_are_the_ones_the_unit_tests_use() -> None:
    from tests.unit import test_webhooks_service

    assert test_webhooks_service.InMemoryEndpoints is InMemoryEndpoints
    assert test_webhooks_service.InMemoryDeliveries is InMemoryDeliveries
