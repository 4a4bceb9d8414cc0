"""The payment service on the real servers: its Cassandra stores, and charging exactly once.

The store contract runs over the in-memory fakes and the Cassandra adapters alike. The service
tests run the payment service as `bootstrap.build` wires it (Cassandra stores, outbox relay
under a lease, inbox, the sandbox provider's tables, RabbitMQ consumer) in a keyspace and queue
of their own, publish OrderConfirmed / OrderCancelled on the real exchange and listen for the
payment events. The crash tests run this same file as a subprocess (`python -m
tests.integration.test_payment_on_cassandra MODE`) that SIGKILLs itself at the worst moments.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from emporium.order.v1 import order_events_pb2
from emporium.payment.v1 import payment_events_pb2
from google.type import money_pb2

from kit import cassandra
from kit.bus import Bus
from kit.config import CassandraSettings, RabbitSettings
from kit.events import Event
from services.payment import bootstrap
from services.payment.adapters import cassandra as stores
from services.payment.adapters import memory
from services.payment.adapters.sandbox import SandboxCharge, SandboxMethod, SandboxProvider
from services.payment.config import Settings
from services.payment.domain import (
    Brand,
    Card,
    FailureCode,
    Money,
    Payment,
    PaymentMethod,
    PaymentState,
)
from tests.integration._crash_between import CrashBeforeRecord

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = os.environ.get("PAYMENT_TEST_SUFFIX") or "_t" + secrets.token_hex(4)
PAN = "4242424242424242"
PAYMENT_EVENTS = [
    payment_events_pb2.PaymentSucceeded,
    payment_events_pb2.PaymentFailed,
    payment_events_pb2.PaymentRefunded,
]


def _env(queue: str) -> dict[str, str]:
    return {
        **os.environ,
        "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX,
        "EMPORIUM_PAYMENT_QUEUE": queue,
        "EMPORIUM_PAYMENT_GRPC_PORT": "0",
        "EMPORIUM_PAYMENT_SANDBOX_LATENCY_SECONDS": "0.01",
        "PAYMENT_TEST_SUFFIX": SUFFIX,
    }


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Fixtures (the real servers are required: these tests prove nothing without them)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _require(name: str) -> str:
    from tests.integration.conftest import servers

    server_ = servers()[name]
    why = server_.check()
    if why is not None:
        pytest.fail(f"{server_.name} is not reachable: {why}", pytrace=False)
    return server_.address


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[cassandra.CassandraSession]:
    _require("cassandra")
    settings = CassandraSettings.from_env("emporium_payment", _env("unused"))
    session = await cassandra.connect(settings, schema=bootstrap.SCHEMA, wait_seconds=45)
    yield session
    await session.drop_keyspace()
    await session.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def built(session) -> stores.Built:
    return await stores.build(session)


@pytest.fixture(params=["memory", "cassandra"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def repos(kind, built) -> Any:
    if kind == "memory":
        return (
            memory.InMemoryPaymentMethods(),
            memory.InMemoryPayments(),
            memory.InMemorySandboxStore(),
        )
    return built.methods, built.payments, built.sandbox


def _method(user_id: str, **fields: Any) -> PaymentMethod:
    now = fields.pop("now", _now())
    return PaymentMethod(
        id=fields.pop("id", str(uuid.uuid4())),
        user_id=user_id,
        card=Card(Brand.VISA, "4242", 12, 2031),
        provider="sandbox",
        token="pm_sandbox_" + secrets.token_hex(6),
        create_time=now,
        update_time=now,
        **fields,
    )


def _payment(user_id: str, **fields: Any) -> Payment:
    now = fields.pop("now", _now())
    return Payment(
        id=str(uuid.uuid4()),
        order_id=fields.pop("order_id", str(uuid.uuid4())),
        user_id=user_id,
        payment_method_id=str(uuid.uuid4()),
        card=Card(Brand.VISA, "4242", 12, 2031),
        amount=Money("USD", 12_500_000_000),
        state=PaymentState.PENDING,
        provider="sandbox",
        create_time=now,
        update_time=now,
        token="pm_sandbox_x",
        **fields,
    )


# ---------------------------------------------------------------------------------------------
# Store contract (memory and Cassandra)


async def test_the_first_method_becomes_the_default_and_set_default_moves_it(repos):
    methods, _, _ = repos
    user = str(uuid.uuid4())
    first = await methods.add(_method(user), make_default=False)
    second = await methods.add(_method(user), make_default=False)
    assert first.default
    assert not second.default
    third = await methods.add(_method(user), make_default=True)
    assert third.default
    assert not (await methods.get(user, first.id)).default
    await methods.set_default(user, second.id)
    assert {m.id for m in await methods.list(user) if m.default} == {second.id}
    assert await methods.delete(user, second.id)
    assert not await methods.delete(user, second.id)
    assert not any(m.default for m in await methods.list(user))
    assert await methods.get(str(uuid.uuid4()), first.id) is None


async def test_a_request_id_is_tied_to_the_first_method_that_claims_it(repos):
    methods, _, _ = repos
    user, request_id = str(uuid.uuid4()), str(uuid.uuid4())
    assert await methods.claim_request(user, request_id, "a") == "a"
    assert await methods.claim_request(user, request_id, "b") == "a"
    assert await methods.claim_request(str(uuid.uuid4()), request_id, "c") == "c"


async def test_an_orders_payment_is_claimed_once_and_saved_only_over_its_version(repos):
    _, payments, _ = repos
    user = str(uuid.uuid4())
    first = _payment(user)
    stored = await payments.claim(first)
    # What a claim returns is what is stored, for the winner and for a rival that lost.
    assert stored == await payments.get_by_order(first.order_id)
    rival = replace(_payment(user, order_id=first.order_id), amount=Money("USD", 1))
    assert await payments.claim(rival) == stored
    assert stored.id == first.id
    done = stored.succeeded("ch_1", _now())
    assert await payments.save(done)
    assert not await payments.save(stored.failed(FailureCode.CARD_DECLINED, "", _now()))
    got = await payments.get(first.id)
    assert (got.state, got.provider_payment_id, got.version) == (PaymentState.SUCCEEDED, "ch_1", 1)
    assert (await payments.get_by_order(first.order_id)).amount == Money("USD", 12_500_000_000)
    assert await payments.get(str(uuid.uuid4())) is None


async def test_refunds_round_trip_inside_the_payment(repos):
    _, payments, _ = repos
    stored = await payments.claim(_payment(str(uuid.uuid4())))
    paid = stored.succeeded("ch_1", _now())
    assert await payments.save(paid)
    started, _ = paid.start_refund("r1", Money("USD", 10**9), _reason(), "ticket 7", _now())
    assert await payments.save(started)
    finished = started.finish_refund(
        "r1", ok=True, provider_refund_id="re_1", message="", now=_now()
    )
    assert await payments.save(finished)
    got = await payments.get_by_order(stored.order_id)
    assert got.refunds == finished.refunds
    assert (got.state, got.amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        Money("USD", 10**9),
    )


def _reason():
    from services.payment.domain import RefundReason

    return RefundReason.CUSTOMER_REQUESTED


async def test_a_users_payments_list_newest_first_in_pages(repos):
    _, payments, _ = repos
    user = str(uuid.uuid4())
    base = _now()
    made = [await payments.claim(_payment(user, now=base + timedelta(seconds=i))) for i in range(5)]
    await payments.claim(_payment(str(uuid.uuid4())))
    seen, cursor = [], None
    while True:
        page, cursor = await payments.list_by_user(user, 2, cursor)
        seen += [p.id for p in page]
        if cursor is None:
            break
    assert seen == [p.id for p in reversed(made)]


async def test_announcing_writes_the_outbox_and_remembers_the_event_ids(repos):
    _, payments, _ = repos
    stored = await payments.claim(_payment(str(uuid.uuid4())))
    event = Event.of(payment_events_pb2.PaymentSucceeded(order_id=stored.order_id), "payment")
    await payments.announce(stored, [event])
    assert (await payments.get_by_order(stored.order_id)).announced == {event.id}
    assert event.id in {e.id for e in await payments.outbox.pending(1000)}


async def test_the_sandbox_keeps_one_charge_per_key_and_the_first_answer(repos):
    _, _, sandbox = repos
    key = str(uuid.uuid4())
    card = Card(Brand.VISA, "0002", 12, 2031)
    await sandbox.save_method("pm_a", SandboxMethod(card, FailureCode.CARD_DECLINED))
    assert (await sandbox.method("pm_a")).outcome is FailureCode.CARD_DECLINED
    await sandbox.detach("pm_a")
    assert (await sandbox.method("pm_a")).detached
    first = SandboxCharge(key, "ch_a", "pm_a", Money("USD", 5), FailureCode.NONE, "", _now())
    second = replace(first, charge_id="ch_b", failure_code=FailureCode.CARD_DECLINED)
    assert await sandbox.put_charge(first) == first
    assert (await sandbox.put_charge(second)) == first
    assert await sandbox.charges_for(key) == 1
    assert await sandbox.charges_for("other") == 0
    await sandbox.count_call(key)
    await sandbox.count_call(key)
    assert await sandbox.charge_calls(key) == 2
    assert await sandbox.put_refund(key, "re_a", "ch_a", Money("USD", 5)) == "re_a"
    assert await sandbox.put_refund(key, "re_b", "ch_a", Money("USD", 5)) == "re_a"


async def test_card_numbers_never_reach_the_payment_tables_or_the_logs(session, built, caplog):
    caplog.set_level(logging.DEBUG)
    provider = SandboxProvider(built.sandbox, latency=0)
    from kit.clock import SystemClock
    from services.payment.handlers import PaymentHandlers

    handlers = PaymentHandlers(
        methods=built.methods, payments=built.payments, provider=provider, clock=SystemClock()
    )
    user = str(uuid.uuid4())
    method = await handlers.add_payment_method(
        user, str(uuid.uuid4()), f"card:{PAN}:12:2031:123", False
    )
    await handlers.charge_order(
        order_id=str(uuid.uuid4()),
        user_id=user,
        payment_method_id=method.id,
        amount=Money("USD", 10**9),
    )
    tables = await session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (session.keyspace,)
    )
    for row in tables:
        dump = repr(await session.execute(f"SELECT * FROM {row.table_name}"))
        assert PAN not in dump, row.table_name
        assert PAN[-8:] not in dump, row.table_name
    assert PAN not in caplog.text


# ---------------------------------------------------------------------------------------------
# The service on Cassandra + RabbitMQ


class Listener:
    """A queue of the test's own bound to the payment events; collects what arrives."""

    def __init__(self, bus: Bus, queue: str) -> None:
        self.bus = bus
        self.queue = queue
        self.events: list[Event] = []

    @classmethod
    async def start(cls, bus: Bus) -> Listener:
        queue = "test.payment.events." + secrets.token_hex(4)
        await bus.declare_queue(queue, [t.DESCRIPTOR.full_name for t in PAYMENT_EVENTS])
        listener = cls(bus, queue)

        async def collect(event: Event) -> None:
            listener.events.append(event)

        await bus.consume(queue, collect)
        return listener

    def of(self, cls, order_id: str) -> list[Any]:
        found = [e for e in self.events if e.type == cls.DESCRIPTOR.full_name]
        return [e for e in found if e.decode(cls).order_id == order_id]

    def distinct(self, cls, order_id: str) -> set[str]:
        return {e.id for e in self.of(cls, order_id)}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bus(session) -> AsyncIterator[Bus]:
    url = _require("rabbitmq")
    bus = await Bus.connect(RabbitSettings(url=url), source="tests")
    yield bus
    await bus.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def listener(bus) -> AsyncIterator[Listener]:
    listener = await Listener.start(bus)
    yield listener
    await bus.delete_queue(listener.queue)


class Running:
    """A payment service built by bootstrap.build with its background work running."""

    def __init__(self, app: Any, tasks: list[asyncio.Task]) -> None:
        self.app = app
        self.tasks = tasks

    @classmethod
    async def start(cls, queue: str, **overrides: Any) -> Running:
        settings = Settings.from_env(_env(queue))
        app = await bootstrap.build(settings, **overrides)
        tasks = [asyncio.create_task(work()) for work in app.background]
        return cls(app, tasks)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.app.close()


@pytest_asyncio.fixture(loop_scope="module")
async def queue(bus) -> AsyncIterator[str]:
    name = "test.payment." + secrets.token_hex(4)
    yield name
    await bus.delete_queue(name)


@pytest_asyncio.fixture(loop_scope="module")
async def service(session, queue) -> AsyncIterator[Running]:
    running = await Running.start(queue)
    yield running
    await running.stop()


def confirmed(order_id: str, user_id: str, method_id: str) -> order_events_pb2.OrderConfirmed:
    return order_events_pb2.OrderConfirmed(
        order_id=order_id,
        user_id=user_id,
        payment_method_id=method_id,
        total=money_pb2.Money(currency_code="USD", units=42, nanos=250_000_000),
    )


async def add_card(app: Any, user_id: str, token: str = "tok_visa") -> PaymentMethod:
    return await app.handlers.add_payment_method(user_id, str(uuid.uuid4()), token, False)


async def settle(seconds: float = 1.5) -> None:
    """Gives a duplicate the time to show up, if one were coming."""
    await asyncio.sleep(seconds)


async def test_order_confirmed_delivered_twice_charges_once_and_publishes_one_success(
    service, bus, listener
):
    user = str(uuid.uuid4())
    method = await add_card(service.app, user)
    order_id = str(uuid.uuid4())
    event = Event.of(confirmed(order_id, user, method.id), "order")
    await bus.publish([event])
    await bus.publish([event])  # the same event again (a relay retry)
    await bus.publish([Event.of(confirmed(order_id, user, method.id), "order")])  # a re-emit
    await eventually(lambda: _has(listener, payment_events_pb2.PaymentSucceeded, order_id))
    await settle()
    assert len(listener.of(payment_events_pb2.PaymentSucceeded, order_id)) == 1
    assert await service.app.provider.charges_for(order_id) == 1
    [payment] = (await service.app.handlers.payments.list_by_user(user, 10, None))[0]
    assert (payment.state, payment.amount) == (PaymentState.SUCCEEDED, Money("USD", 42_250_000_000))


async def _has(listener: Listener, cls, order_id: str) -> bool:
    return bool(listener.of(cls, order_id))


async def test_a_declined_card_publishes_payment_failed(service, bus, listener):
    user = str(uuid.uuid4())
    method = await add_card(service.app, user, "tok_chargeDeclinedInsufficientFunds")
    order_id = str(uuid.uuid4())
    await bus.publish([Event.of(confirmed(order_id, user, method.id), "order")])
    await eventually(lambda: _has(listener, payment_events_pb2.PaymentFailed, order_id))
    [event] = listener.of(payment_events_pb2.PaymentFailed, order_id)
    failed = event.decode(payment_events_pb2.PaymentFailed)
    assert failed.failure_code == 2  # FAILURE_CODE_INSUFFICIENT_FUNDS
    assert listener.of(payment_events_pb2.PaymentSucceeded, order_id) == []


async def test_concurrent_duplicate_deliveries_to_two_replicas_charge_once(
    session, queue, bus, listener
):
    # Two replicas on one queue, each taking several messages at once; the duplicates carry
    # distinct event ids, so no inbox helps: only the claim and the provider key do.
    first = await Running.start(queue)
    second = await Running.start(queue)
    try:
        user = str(uuid.uuid4())
        method = await add_card(first.app, user)
        order_id = str(uuid.uuid4())
        await bus.publish(
            [Event.of(confirmed(order_id, user, method.id), "order") for _ in range(6)]
        )
        await eventually(lambda: _has(listener, payment_events_pb2.PaymentSucceeded, order_id))
        await settle()
        assert len(listener.distinct(payment_events_pb2.PaymentSucceeded, order_id)) == 1
        assert await first.app.provider.charges_for(order_id) == 1
    finally:
        await first.stop()
        await second.stop()


async def test_order_cancelled_after_payment_refunds_once(service, bus, listener):
    user = str(uuid.uuid4())
    method = await add_card(service.app, user)
    order_id = str(uuid.uuid4())
    await bus.publish([Event.of(confirmed(order_id, user, method.id), "order")])
    await eventually(lambda: _has(listener, payment_events_pb2.PaymentSucceeded, order_id))
    [paid] = listener.of(payment_events_pb2.PaymentSucceeded, order_id)
    payment_id = paid.decode(payment_events_pb2.PaymentSucceeded).payment_id
    cancelled = order_events_pb2.OrderCancelled(
        order_id=order_id, user_id=user, payment_id=payment_id
    )
    await bus.publish([Event.of(cancelled, "order"), Event.of(cancelled, "order")])
    await eventually(lambda: _has(listener, payment_events_pb2.PaymentRefunded, order_id))
    await settle()
    [event] = listener.of(payment_events_pb2.PaymentRefunded, order_id)
    refunded = event.decode(payment_events_pb2.PaymentRefunded)
    assert refunded.full
    assert (refunded.amount.units, refunded.amount.nanos) == (42, 250_000_000)
    payment = await service.app.handlers.payments.get(payment_id)
    assert payment.state is PaymentState.REFUNDED
    assert len(payment.refunds) == 1


async def test_a_crash_between_the_charge_or_refund_and_its_inbox_record_applies_it_once(
    session, built, bus, listener, queue
):
    crashes = CrashBeforeRecord(await built.inbox(queue))
    service = await Running.start(queue, inbox=crashes)
    try:
        user = str(uuid.uuid4())
        method = await add_card(service.app, user)
        order_id = str(uuid.uuid4())
        charge = crashes.arm(Event.of(confirmed(order_id, user, method.id), "order"))
        await bus.publish([charge])
        await eventually(lambda: _has(listener, payment_events_pb2.PaymentSucceeded, order_id))
        [paid] = listener.of(payment_events_pb2.PaymentSucceeded, order_id)
        payment_id = paid.decode(payment_events_pb2.PaymentSucceeded).payment_id
        cancelled = order_events_pb2.OrderCancelled(
            order_id=order_id, user_id=user, payment_id=payment_id
        )
        refund = crashes.arm(Event.of(cancelled, "order"))
        await bus.publish([refund])
        await eventually(lambda: _has(listener, payment_events_pb2.PaymentRefunded, order_id))
        await eventually(lambda: crashes.seen(refund))  # the redelivery went through
        await settle()
        assert crashes.crashed == [charge.id, refund.id]
        assert await crashes.seen(charge)
        assert len(listener.distinct(payment_events_pb2.PaymentSucceeded, order_id)) == 1
        assert len(listener.distinct(payment_events_pb2.PaymentRefunded, order_id)) == 1
        assert await service.app.provider.charges_for(order_id) == 1
        payment = await service.app.handlers.payments.get(payment_id)
        assert (payment.state, len(payment.refunds)) == (PaymentState.REFUNDED, 1)
    finally:
        await service.stop()


# ---------------------------------------------------------------------------------------------
# Crash tests: a subprocess consumer SIGKILLed at the worst moments, then a restart


@pytest.mark.parametrize("mode", ["die-before-charge", "die-after-charge", "die-before-ack"])
async def test_a_consumer_killed_mid_charge_is_resolved_by_the_restart_with_one_charge(
    session, built, queue, bus, listener, mode
):
    # The queue exists (with its bindings) before the event is published.
    starter = await Running.start(queue)
    user = str(uuid.uuid4())
    method = await add_card(starter.app, user)
    await starter.stop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.test_payment_on_cassandra",
        mode,
        cwd=ROOT,
        env=_env(queue),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"consuming", line
        order_id = str(uuid.uuid4())
        await bus.publish([Event.of(confirmed(order_id, user, method.id), "order")])
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
    stuck = await built.payments.get_by_order(order_id)
    assert stuck is not None
    if mode != "die-before-ack":
        assert stuck.state is PaymentState.PENDING
    expected_calls = {"die-before-charge": 0, "die-after-charge": 1, "die-before-ack": 1}[mode]
    assert await built.sandbox.charge_calls(order_id) == expected_calls

    restarted = await Running.start(queue)
    try:
        await eventually(lambda: _has(listener, payment_events_pb2.PaymentSucceeded, order_id))
        await settle()
        assert len(listener.distinct(payment_events_pb2.PaymentSucceeded, order_id)) == 1
        assert await built.sandbox.charges_for(order_id) == 1
        resolved = await built.payments.get_by_order(order_id)
        assert resolved.state is PaymentState.SUCCEEDED
    finally:
        await restarted.stop()


class _DyingProvider:
    """Wraps the sandbox provider: SIGKILLs the process around the charge."""

    def __init__(self, inner: SandboxProvider, mode: str) -> None:
        self.inner = inner
        self.mode = mode
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def charge(self, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "die-before-charge":
            os.kill(os.getpid(), signal.SIGKILL)
        result = await self.inner.charge(*args, **kwargs)
        if self.mode == "die-after-charge":
            os.kill(os.getpid(), signal.SIGKILL)
        return result


class _DyingInbox:
    """Wraps the inbox: SIGKILLs the process after the record, before the ack."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def seen(self, event: Event) -> bool:
        return await self.inner.seen(event)

    async def record(self, event: Event) -> None:
        await self.inner.record(event)
        os.kill(os.getpid(), signal.SIGKILL)


async def _crash_main(mode: str) -> None:
    settings = Settings.from_env()
    own = await cassandra.connect(settings.cassandra, schema=bootstrap.SCHEMA)
    built = await stores.build(own)
    provider: Any = SandboxProvider(built.sandbox, latency=0.01)
    overrides: dict[str, Any] = {}
    if mode == "die-before-ack":
        overrides["inbox"] = _DyingInbox(await built.inbox(settings.queue))
    else:
        provider = _DyingProvider(provider, mode)
    app = await bootstrap.build(settings, provider=provider, **overrides)
    tasks = [asyncio.create_task(work()) for work in app.background]
    await asyncio.sleep(1.0)  # the consumer is subscribed
    print("consuming", flush=True)
    await asyncio.wait(tasks, timeout=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    asyncio.run(_crash_main(parser.parse_args().mode))
