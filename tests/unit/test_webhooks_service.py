"""The webhooks service over real gRPC, with the in-memory store, a fake clock and a fake sender.

The sender checks URLs with the real SSRF guard over a stub resolver and records what it would
POST; nothing here opens a socket except the gRPC channel on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from emporium.order.v1 import order_events_pb2
from emporium.user.v1 import user_events_pb2
from emporium.webhooks.v1 import (
    webhook_delivery_pb2,
    webhook_endpoint_pb2,
    webhooks_events_pb2,
    webhooks_service_pb2,
    webhooks_service_pb2_grpc,
)
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from kit import auth, events, server
from kit.events import Event
from kit.ssrf import UrlGuard
from services.webhooks import bootstrap, consumers
from services.webhooks.adapters.memory import FixedClock, InMemoryDeliveries, InMemoryEndpoints
from services.webhooks.config import Settings
from services.webhooks.ports import Reply
from tests.unit.test_order_service import AUDIENCE, ISSUER, Tokens
from tests.unit.test_ssrf_guard import REFUSED_URLS, StubResolver

E = webhook_endpoint_pb2.WebhookEndpoint
D = webhook_delivery_pb2.WebhookDelivery
pb = webhooks_service_pb2
URL = "https://erp.example.com/hooks"
OTHER_URL = "https://crm.example.com/hooks"


class FakeSender:
    """Checks URLs with the real guard; records posts; answers from a script per URL."""

    def __init__(self, clock: FixedClock) -> None:
        self.resolver = StubResolver()
        self.resolver.table.update(
            {"erp.example.com": ["93.184.215.20"], "crm.example.com": ["93.184.215.21"]}
        )
        self.guard = UrlGuard(resolver=self.resolver)
        self.clock = clock
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
        self.gates: dict[str, asyncio.Event] = {}

    async def check_url(self, url: str) -> None:
        await self.guard.check(url)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        self.posts.append((url, body, headers))
        if url in self.gates:
            await self.gates[url].wait()
        status, reply_headers = self.script[url].pop(0) if self.script[url] else (200, {})
        return Reply(
            status, b"ok" if status < 300 else b"no", httpx.Headers(reply_headers), 0.05, ""
        )

    def to(self, url: str) -> list[tuple[str, bytes, dict[str, str]]]:
        return [p for p in self.posts if p[0] == url]


class World:
    def __init__(self, channel, tokens: Tokens, app, clock, sender, endpoints, deliveries):
        self.stub = webhooks_service_pb2_grpc.WebhooksServiceStub(channel)
        self.tokens = tokens
        self.app = app
        self.clock: FixedClock = clock
        self.sender: FakeSender = sender
        self.endpoints: InMemoryEndpoints = endpoints
        self.deliveries: InMemoryDeliveries = deliveries
        self.admin = [("authorization", f"Bearer {tokens.token(str(uuid.uuid4()), admin=True)}")]
        self.shopper = [("authorization", f"Bearer {tokens.token(str(uuid.uuid4()))}")]
        # As the service subscribes: no inbox (the fan-out is idempotent by construction).
        self.deliver = events.dispatch(consumers.subscriptions(app.delivery_handlers))

    async def create(self, url: str = URL, types=("emporium.order.v1.OrderPlaced",), **kw) -> E:
        request = pb.CreateWebhookEndpointRequest(
            request_id=kw.pop("request_id", ""),
            webhook_endpoint=E(url=url, event_types=list(types), **kw),
        )
        return await self.stub.CreateWebhookEndpoint(request, metadata=self.admin)

    async def publish(self, message, event_id: str | None = None) -> Event:
        source = message.DESCRIPTOR.full_name.split(".")[1]  # the owning service
        event = Event.of(message, source, id=event_id, time=self.clock.now())
        await self.deliver(event)
        return event

    async def run_due(self) -> None:
        """One dispatcher round and the attempts it started."""
        await self.app.dispatcher.dispatch_due()
        await self.app.dispatcher.drain()

    async def deliveries_of(self, endpoint_id: str) -> list[D]:
        reply = await self.stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint_id), metadata=self.admin
        )
        return list(reply.webhook_deliveries)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_WEBHOOKS_GRPC_PORT": "0",
            "EMPORIUM_WEBHOOKS_RETRY_SCHEDULE": "5,300,1800",
            "EMPORIUM_WEBHOOKS_SUSPEND_AFTER_SECONDS": str(5 * 86400),
            "EMPORIUM_WEBHOOKS_MAX_ENDPOINTS": "5",
            "EMPORIUM_WEBHOOKS_PER_ENDPOINT": "2",
        }
    )
    tokens = Tokens()
    # Real time at the start: receivers refuse signatures more than 5 minutes off their clock.
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    sender = FakeSender(clock)
    endpoints, deliveries = InMemoryEndpoints(), InMemoryDeliveries()
    app = await bootstrap.build(
        settings,
        bus=None,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
        endpoints=endpoints,
        deliveries=deliveries,
        sender=sender,
        clock=clock,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield World(channel, tokens, app, clock, sender, endpoints, deliveries)
    await grpc_server.stop(0)


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    out: list[str] = []
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out += [v.field for v in bad.field_violations]
    return out


def _placed(order_id: str = "o-1") -> order_events_pb2.OrderPlaced:
    return order_events_pb2.OrderPlaced(order_id=order_id, user_id="u-1")


# --- endpoints --------------------------------------------------------------------------------


async def test_a_created_endpoint_shows_its_whsec_secret_once(world: World) -> None:
    created = await world.create(description="ERP")
    assert created.secret.startswith("whsec_")
    assert created.state == E.STATE_ACTIVE
    got = await world.stub.GetWebhookEndpoint(
        pb.GetWebhookEndpointRequest(id=created.id), metadata=world.admin
    )
    assert got.secret == ""
    assert got.url == URL


async def test_a_retried_create_returns_the_first_endpoint_with_its_secret(world: World) -> None:
    request_id = str(uuid.uuid4())
    first = await world.create(request_id=request_id)
    again = await world.create(request_id=request_id)
    assert (again.id, again.secret) == (first.id, first.secret)
    assert len(world.endpoints.items) == 1


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_an_unsafe_url_is_refused_naming_url_and_nothing_is_sent(
    world: World, url: str
) -> None:
    error = await _error(world.create(url=url))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "url" in _fields(error)
    assert world.sender.posts == []
    assert world.endpoints.items == {}


@pytest.mark.parametrize(
    "types",
    [
        (),
        ("emporium.order.v1.NoSuchEvent",),
        ("emporium.user.v1.PasswordResetRequested",),  # internal: carries a one-time token
        ("emporium.user.v1.UserRegistered",),  # personal data: email and name
        ("emporium.webhooks.v1.WebhookEndpointSuspended",),  # the service's own
        ("*", "emporium.order.v1.OrderPlaced"),
    ],
)
async def test_event_types_must_be_public_ones(world: World, types) -> None:
    error = await _error(world.create(types=types))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["event_types"]


async def test_the_event_type_catalog_lists_public_events_only(world: World) -> None:
    names, token = [], ""
    while True:
        reply = await world.stub.ListWebhookEventTypes(
            pb.ListWebhookEventTypesRequest(page_size=7, page_token=token), metadata=world.admin
        )
        names += [t.name for t in reply.webhook_event_types]
        token = reply.next_page_token
        if not token:
            break
    assert names == sorted(names)
    for public in (
        "emporium.order.v1.OrderPlaced",
        "emporium.payment.v1.PaymentSucceeded",
        "emporium.shipping.v1.ShipmentStatusChanged",
        "emporium.catalog.v1.ProductCreated",
        "emporium.catalog.v1.ReviewPosted",
        "emporium.user.v1.UserRolesChanged",
    ):
        assert public in names
    for private in (
        "emporium.user.v1.PasswordResetRequested",
        "emporium.user.v1.EmailVerificationRequested",
        "emporium.user.v1.UserRegistered",
        "emporium.user.v1.UserUpdated",
        "emporium.webhooks.v1.WebhookEndpointSuspended",
    ):
        assert private not in names
    orders = await world.stub.ListWebhookEventTypes(
        pb.ListWebhookEventTypesRequest(domain="order"), metadata=world.admin
    )
    assert {t.domain for t in orders.webhook_event_types} == {"order"}
    assert all(t.description for t in orders.webhook_event_types)


async def test_update_changes_the_masked_fields_and_refuses_others(world: World) -> None:
    created = await world.create()
    updated = await world.stub.UpdateWebhookEndpoint(
        pb.UpdateWebhookEndpointRequest(
            id=created.id,
            webhook_endpoint=E(description="new", url="https://127.0.0.1/"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        metadata=world.admin,
    )
    assert (updated.description, updated.url) == ("new", URL)
    for paths, field in ((["secret"], "update_mask"), (["url"], "url"), (["state"], "state")):
        error = await _error(
            world.stub.UpdateWebhookEndpoint(
                pb.UpdateWebhookEndpointRequest(
                    id=created.id,
                    webhook_endpoint=E(url="https://10.0.0.1/", state=E.STATE_SUSPENDED),
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                ),
                metadata=world.admin,
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in _fields(error)


async def test_list_filters_pages_newest_first(world: World) -> None:
    ids = []
    for i in range(4):
        world.clock.advance(1)
        ids.append(
            (await world.create(types=["*"] if i % 2 else ["emporium.order.v1.OrderPlaced"])).id
        )
    seen, token = [], ""
    while True:
        reply = await world.stub.ListWebhookEndpoints(
            pb.ListWebhookEndpointsRequest(page_size=3, page_token=token), metadata=world.admin
        )
        seen += [e.id for e in reply.webhook_endpoints]
        assert all(e.secret == "" for e in reply.webhook_endpoints)
        token = reply.next_page_token
        if not token:
            break
    assert seen == ids[::-1]
    paid = await world.stub.ListWebhookEndpoints(
        pb.ListWebhookEndpointsRequest(event_type="emporium.payment.v1.PaymentSucceeded"),
        metadata=world.admin,
    )
    assert [e.id for e in paid.webhook_endpoints] == [ids[3], ids[1]]


async def test_more_endpoints_than_configured_are_refused(world: World) -> None:
    for _ in range(5):
        await world.create()
    error = await _error(world.create())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_deleting_an_endpoint_drops_its_deliveries(world: World) -> None:
    created = await world.create()
    await world.publish(_placed())
    await world.stub.DeleteWebhookEndpoint(
        pb.DeleteWebhookEndpointRequest(id=created.id), metadata=world.admin
    )
    assert world.deliveries.items == {}
    error = await _error(
        world.stub.GetWebhookEndpoint(
            pb.GetWebhookEndpointRequest(id=created.id), metadata=world.admin
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


# --- deliveries -------------------------------------------------------------------------------


async def test_an_event_is_delivered_once_signed_with_snake_case_data(world: World) -> None:
    created = await world.create()
    other = await world.create(url=OTHER_URL, types=["emporium.payment.v1.PaymentSucceeded"])
    event = await world.publish(_placed("o-42"))
    await world.publish(_placed("o-42"), event_id=event.id)  # the broker redelivers it
    await world.run_due()
    assert world.sender.to(OTHER_URL) == []
    [(_, body, headers)] = world.sender.posts
    data = Webhook(created.secret).verify(body, headers)
    assert data["type"] == "emporium.order.v1.OrderPlaced"
    assert data["data"]["order_id"] == "o-42"
    assert "orderId" not in data["data"]
    assert headers["webhook-id"] == event.id
    [delivery] = await world.deliveries_of(created.id)
    assert delivery.state == D.STATE_SUCCEEDED
    assert delivery.event_id == event.id
    assert json.loads(delivery.payload) == data
    assert await world.deliveries_of(other.id) == []


async def test_a_disabled_endpoint_gets_no_delivery(world: World) -> None:
    await world.create(state=E.STATE_DISABLED)
    await world.publish(_placed())
    await world.run_due()
    assert world.sender.posts == []
    assert world.deliveries.items == {}


async def test_failures_are_retried_on_the_schedule_and_each_attempt_recorded(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(500, {}), (500, {})]
    await world.publish(_placed())
    await world.run_due()
    [delivery] = await world.deliveries_of(created.id)
    assert delivery.state == D.STATE_RETRYING
    first_wait = (
        delivery.next_attempt_time.ToDatetime() - delivery.attempts[0].attempt_time.ToDatetime()
    )
    assert timedelta(seconds=4) <= first_wait <= timedelta(seconds=6.1)  # 5 s +- 20 % jitter
    await world.run_due()
    assert len(world.sender.posts) == 1  # not due yet
    world.clock.advance(7)
    await world.run_due()
    world.clock.advance(400)
    await world.run_due()
    [delivery] = await world.deliveries_of(created.id)
    assert delivery.state == D.STATE_SUCCEEDED
    assert [a.response_status_code for a in delivery.attempts] == [500, 500, 200]
    assert all(a.latency.ToTimedelta() > timedelta(0) for a in delivery.attempts)
    assert len({p[2]["webhook-id"] for p in world.sender.posts}) == 1


async def test_retry_after_is_honoured(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(429, {"Retry-After": "120"})]
    await world.publish(_placed())
    await world.run_due()
    [delivery] = await world.deliveries_of(created.id)
    wait = delivery.next_attempt_time.ToDatetime() - delivery.attempts[0].attempt_time.ToDatetime()
    assert wait >= timedelta(seconds=120)


async def test_an_exhausted_schedule_fails_the_delivery(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(503, {})] * 4
    await world.publish(_placed())
    for _ in range(4):
        await world.run_due()
        world.clock.advance(3000)
    [delivery] = await world.deliveries_of(created.id)
    assert delivery.state == D.STATE_FAILED
    assert len(delivery.attempts) == 4
    assert not delivery.HasField("next_attempt_time")


async def test_410_gone_disables_the_endpoint(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(410, {})]
    await world.publish(_placed("a"))
    await world.run_due()
    got = await world.stub.GetWebhookEndpoint(
        pb.GetWebhookEndpointRequest(id=created.id), metadata=world.admin
    )
    assert got.state == E.STATE_DISABLED
    await world.publish(_placed("b"))
    await world.run_due()
    assert len(world.sender.posts) == 1


async def test_an_endpoint_failing_for_days_is_suspended_and_admins_are_told(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(500, {})] * 100
    for day in range(6):
        await world.publish(_placed(f"o-{day}"))
        await world.run_due()
        world.clock.advance(86400)
    got = await world.stub.GetWebhookEndpoint(
        pb.GetWebhookEndpointRequest(id=created.id), metadata=world.admin
    )
    assert got.state == E.STATE_SUSPENDED
    [event] = world.endpoints.outbox
    told = event.decode(webhooks_events_pb2.WebhookEndpointSuspended)
    assert (told.endpoint_id, told.url) == (created.id, URL)


async def test_a_success_ends_the_failing_period(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(500, {})]
    await world.publish(_placed("a"))
    await world.run_due()  # failing since day 0
    world.clock.advance(4 * 86400)
    await world.run_due()  # the retry succeeds on day 4
    world.sender.script[URL] = [(500, {})] * 50
    await world.publish(_placed("b"))
    await world.run_due()  # failing again, since day 4
    world.clock.advance(2 * 86400)
    await world.publish(_placed("c"))
    await world.run_due()
    got = await world.stub.GetWebhookEndpoint(
        pb.GetWebhookEndpointRequest(id=created.id), metadata=world.admin
    )
    assert got.state == E.STATE_ACTIVE  # 6 days since the first failure, 2 since the success


async def test_after_rotation_both_secrets_sign_until_the_overlap_ends(world: World) -> None:
    created = await world.create()
    rotated = await world.stub.RotateWebhookSecret(
        pb.RotateWebhookSecretRequest(
            id=created.id, previous_secret_ttl=duration_pb2.Duration(seconds=3600)
        ),
        metadata=world.admin,
    )
    assert rotated.secret != created.secret
    assert rotated.HasField("previous_secret_expire_time")
    await world.publish(_placed("a"))
    await world.run_due()
    _, body, headers = world.sender.posts[-1]
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    for secret, signature in zip((rotated.secret, created.secret), signatures, strict=True):
        Webhook(secret).verify(body, {**headers, "webhook-signature": signature})
    world.clock.advance(3601)
    await world.publish(_placed("b"))
    await world.run_due()
    _, body, headers = world.sender.posts[-1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(created.secret).verify(body, headers)


async def test_rotation_refuses_an_overlap_over_seven_days(world: World) -> None:
    created = await world.create()
    error = await _error(
        world.stub.RotateWebhookSecret(
            pb.RotateWebhookSecretRequest(
                id=created.id, previous_secret_ttl=duration_pb2.Duration(seconds=8 * 86400)
            ),
            metadata=world.admin,
        )
    )
    assert _fields(error) == ["previous_secret_ttl"]


async def test_redeliver_one_and_all_failed_since_a_time(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(500, {})] * 8
    start = world.clock.now()
    for n in range(2):
        await world.publish(_placed(f"o-{n}"))
    for _ in range(4):
        await world.run_due()
        world.clock.advance(3000)
    failed = await world.deliveries_of(created.id)
    assert {d.state for d in failed} == {D.STATE_FAILED}
    again = await world.stub.RedeliverWebhookEvent(
        pb.RedeliverWebhookEventRequest(id=failed[0].id), metadata=world.admin
    )
    assert again.state == D.STATE_PENDING
    error = await _error(
        world.stub.RedeliverWebhookEvent(
            pb.RedeliverWebhookEventRequest(id=failed[0].id), metadata=world.admin
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    await world.run_due()
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(start)
    reply = await world.stub.RedeliverFailedWebhookDeliveries(
        pb.RedeliverFailedWebhookDeliveriesRequest(id=created.id, start_time=since),
        metadata=world.admin,
    )
    assert reply.redelivered_count == 1
    await world.run_due()
    states = {d.event_id: d.state for d in await world.deliveries_of(created.id)}
    assert set(states.values()) == {D.STATE_SUCCEEDED}


async def test_redeliver_failed_needs_a_start_time(world: World) -> None:
    created = await world.create()
    error = await _error(
        world.stub.RedeliverFailedWebhookDeliveries(
            pb.RedeliverFailedWebhookDeliveriesRequest(id=created.id), metadata=world.admin
        )
    )
    assert _fields(error) == ["start_time"]


async def _until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_a_slow_endpoint_holds_only_its_own_slots(world: World) -> None:
    slow = await world.create()
    fast = await world.create(url=OTHER_URL)
    world.sender.gates[URL] = asyncio.Event()  # the slow receiver does not answer meanwhile
    for n in range(6):
        await world.publish(_placed(f"o-{n}"))
    dispatcher = asyncio.create_task(world.app.dispatcher.run())
    try:

        async def fast_done() -> bool:
            states = {d.state for d in await world.deliveries_of(fast.id)}
            return states == {D.STATE_SUCCEEDED}

        await _until(fast_done)
        assert len(world.sender.to(URL)) == 2  # its cap (2 here); its other four wait
        world.sender.gates[URL].set()

        async def slow_done() -> bool:
            states = {d.state for d in await world.deliveries_of(slow.id)}
            return states == {D.STATE_SUCCEEDED}

        await _until(slow_done)
    finally:
        dispatcher.cancel()
    assert len(world.sender.to(URL)) == 6


async def test_a_test_webhook_is_sent_at_once_and_never_retried(world: World) -> None:
    created = await world.create()
    world.sender.script[URL] = [(500, {})]
    delivery = await world.stub.SendTestWebhook(
        pb.SendTestWebhookRequest(id=created.id), metadata=world.admin
    )
    assert delivery.test
    assert delivery.state == D.STATE_FAILED
    assert [a.response_status_code for a in delivery.attempts] == [500]
    world.clock.advance(3600)
    await world.run_due()
    assert len(world.sender.posts) == 1
    _, body, headers = world.sender.posts[0]
    assert Webhook(created.secret).verify(body, headers)["type"] == "emporium.order.v1.OrderPlaced"


async def test_an_event_from_a_service_that_does_not_own_it_is_ignored(world: World) -> None:
    await world.create()
    await world.app.delivery_handlers.fan_out(Event.of(_placed(), "cart"))
    await world.run_due()
    assert world.sender.posts == []


async def test_personal_and_internal_events_are_never_delivered(world: World) -> None:
    await world.create(types=["*"])
    await world.app.delivery_handlers.fan_out(
        Event.of(user_events_pb2.PasswordResetRequested(token="secret"), "user")
    )
    await world.app.delivery_handlers.fan_out(
        Event.of(user_events_pb2.UserRegistered(email="a@b.c"), "user")
    )
    await world.run_due()
    assert world.sender.posts == []


# --- access -----------------------------------------------------------------------------------

RPCS = [
    ("CreateWebhookEndpoint", pb.CreateWebhookEndpointRequest(webhook_endpoint=E(url=URL))),
    ("ListWebhookEndpoints", pb.ListWebhookEndpointsRequest()),
    ("GetWebhookEndpoint", pb.GetWebhookEndpointRequest(id="x")),
    ("UpdateWebhookEndpoint", pb.UpdateWebhookEndpointRequest(id="x")),
    ("DeleteWebhookEndpoint", pb.DeleteWebhookEndpointRequest(id="x")),
    ("RotateWebhookSecret", pb.RotateWebhookSecretRequest(id="x")),
    ("SendTestWebhook", pb.SendTestWebhookRequest(id="x")),
    ("RedeliverFailedWebhookDeliveries", pb.RedeliverFailedWebhookDeliveriesRequest(id="x")),
    ("ListWebhookEventTypes", pb.ListWebhookEventTypesRequest()),
    ("ListWebhookDeliveries", pb.ListWebhookDeliveriesRequest(endpoint_id="x")),
    ("GetWebhookDelivery", pb.GetWebhookDeliveryRequest(id="x")),
    ("RedeliverWebhookEvent", pb.RedeliverWebhookEventRequest(id="x")),
]


def test_the_access_list_covers_every_rpc() -> None:
    service = webhooks_service_pb2.DESCRIPTOR.services_by_name["WebhooksService"]
    assert sorted(m.name for m in service.methods) == sorted(name for name, _ in RPCS)


@pytest.mark.parametrize(("rpc", "request_"), RPCS, ids=[name for name, _ in RPCS])
async def test_every_rpc_is_for_admins_only(world: World, rpc: str, request_) -> None:
    method = getattr(world.stub, rpc)
    denied = await _error(method(request_, metadata=world.shopper))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    anonymous = await _error(method(request_))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
