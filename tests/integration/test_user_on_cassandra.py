"""The user service on the real servers: its Cassandra adapters, and the whole service over gRPC.

The repository contract runs twice, over the in-memory fakes and the Cassandra adapters, so the
fakes the unit tests use behave like production. The service tests start the user service as
`bootstrap.build` wires it (Cassandra, the outbox relay, RabbitMQ) in a keyspace of their own.
A server that does not answer fails these tests; nothing skips.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import argon2
import grpc
import pytest
import pytest_asyncio
from emporium.user.v1 import user_events_pb2, user_pb2, user_service_pb2, user_service_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from kit import cassandra, errors, server
from kit.config import CassandraSettings, RabbitSettings
from services.user import bootstrap
from services.user.adapters import cassandra as stores
from services.user.adapters import memory
from services.user.adapters.passwords import Argon2Hasher
from services.user.config import Settings
from services.user.domain import Address, PostalAddress, State, TokenFamily, User, UserSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_t" + secrets.token_hex(4)
PASSWORD = "correct horse battery"
FAST_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[cassandra.CassandraSession]:
    settings = CassandraSettings.from_env(
        "emporium_user", {**os.environ, "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX}
    )
    session = await cassandra.connect(settings, schema=bootstrap.SCHEMA, wait_seconds=45)
    yield session
    await session.execute(f"DROP KEYSPACE IF EXISTS {session.keyspace}")
    await session.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cassandra_stores(session) -> stores.Stores:
    return await stores.build(session)


@pytest.fixture(params=["memory", "cassandra"])
def repos(request, cassandra_stores) -> dict[str, Any]:
    if request.param == "memory":
        return {
            "users": memory.InMemoryUserRepository(),
            "addresses": memory.InMemoryAddressRepository(),
            "tokens": memory.InMemoryTokenRepository(),
            "throttle": memory.InMemoryLoginThrottle(),
        }
    return cassandra_stores.ports


def _user(email: str | None = None, **fields: Any) -> tuple[User, UserSettings]:
    now = _now()
    user = User(
        id=str(uuid.uuid4()),
        email=email or f"u{secrets.token_hex(4)}@example.com",
        display_name="Ann",
        password_hash="$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        roles=frozenset({"customer"}),
        state=State.ACTIVE,
        create_time=now,
        update_time=now,
        **fields,
    )
    return user, UserSettings(user_id=user.id, update_time=now)


def _registered(user: User) -> user_events_pb2.UserRegistered:
    return user_events_pb2.UserRegistered(user_id=user.id, email=user.email)


# --- the repository contract, over both adapters --------------------------------------------


async def test_a_created_account_reads_back_by_id_and_by_email(repos):
    user, settings = _user()
    assert await repos["users"].create(user, settings, [_registered(user)]) == user
    assert await repos["users"].get(user.id) == user
    assert await repos["users"].by_email(user.email) == user
    assert await repos["users"].get_settings(user.id) == settings


async def test_a_second_account_with_the_same_email_is_already_exists(repos):
    user, settings = _user()
    await repos["users"].create(user, settings, [])
    other, other_settings = _user(user.email)
    with pytest.raises(errors.AlreadyExists):
        await repos["users"].create(other, other_settings, [])
    assert await repos["users"].get(other.id) is None


async def test_a_retry_with_the_same_request_id_returns_the_first_account(repos):
    request_id = str(uuid.uuid4())
    user, settings = _user(request_id=request_id)
    await repos["users"].create(user, settings, [])
    retry, retry_settings = _user(user.email, request_id=request_id)
    assert (await repos["users"].create(retry, retry_settings, [])).id == user.id


async def test_of_twenty_racing_creates_of_one_email_exactly_one_wins(repos):
    email = f"race{secrets.token_hex(4)}@example.com"
    attempts = [_user(email) for _ in range(20)]
    results = await asyncio.gather(
        *(repos["users"].create(u, s, []) for u, s in attempts), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, User)]
    assert len(winners) == 1
    assert all(isinstance(r, errors.AlreadyExists) for r in results if not isinstance(r, User))
    assert (await repos["users"].by_email(email)).id == winners[0].id


async def test_a_deleted_account_frees_its_email(repos):
    user, settings = _user()
    await repos["users"].create(user, settings, [])
    await repos["users"].delete(user.deleted(_now()), [])
    assert await repos["users"].by_email(user.email) is None
    stored = await repos["users"].get(user.id)
    assert (stored.state, stored.display_name, stored.password_hash) == (State.DELETED, "", "")
    again, again_settings = _user(user.email)
    await repos["users"].create(again, again_settings, [])


async def test_save_changes_the_account_but_never_its_email(repos):
    user, settings = _user()
    await repos["users"].create(user, settings, [])
    changed = replace(user, display_name="Bea", email="other@example.com", last_login_time=_now())
    await repos["users"].save(changed)
    stored = await repos["users"].get(user.id)
    assert (stored.display_name, stored.email) == ("Bea", user.email)
    assert stored.last_login_time == changed.last_login_time


async def test_addresses_are_scoped_to_their_owner(repos):
    now = _now()
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    address = Address(
        id=str(uuid.uuid4()),
        user_id=owner,
        postal_address=PostalAddress("FR", ("1 rue de la Paix",), ("Ann",), locality="Paris"),
        create_time=now,
        update_time=now,
        label="home",
    )
    await repos["addresses"].put(address)
    assert await repos["addresses"].get(owner, address.id) == address
    assert await repos["addresses"].get(stranger, address.id) is None
    assert await repos["addresses"].delete(stranger, address.id) is False
    assert await repos["addresses"].list(owner) == [address]
    assert await repos["addresses"].delete(owner, address.id) is True
    assert await repos["addresses"].list(owner) == []


async def test_a_token_family_rotates_once_per_current_token(repos):
    now = _now()
    family = TokenFamily(
        family_id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        current_token_id=str(uuid.uuid4()),
        current_secret_hash="h0",
        expire_time=now + timedelta(days=1),
        create_time=now,
    )
    tokens = repos["tokens"]
    await tokens.add(family)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    results = await asyncio.gather(
        tokens.rotate(family, first, "h1", family.expire_time),
        tokens.rotate(family, second, "h2", family.expire_time),
    )
    assert sorted(results) == [False, True]
    stored = await tokens.get(family.family_id)
    assert stored.rotated == {family.current_token_id}
    assert stored.current_token_id in {first, second}
    await tokens.revoke_all(family.user_id)
    assert (await tokens.get(family.family_id)).revoked
    assert not await tokens.rotate(stored, str(uuid.uuid4()), "h3", family.expire_time)


async def test_login_failures_count_within_the_window_and_clear(repos):
    throttle = repos["throttle"]
    key = f"account:{secrets.token_hex(4)}@example.com"
    before = _now() - timedelta(seconds=1)
    await throttle.record_failure([key], _now())
    await throttle.record_failure([key], _now())
    assert await throttle.failures(key, before) == 2
    assert await throttle.failures(key, _now() + timedelta(seconds=1)) == 0
    await throttle.clear(key)
    assert await throttle.failures(key, before) == 0


# --- the whole service on Cassandra and RabbitMQ ---------------------------------------------


class Running:
    def __init__(self, stub: user_service_pb2_grpc.UserServiceStub, keyspace: str) -> None:
        self.stub = stub
        self.keyspace = keyspace


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def events_queue() -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A throwaway queue bound to UserRegistered, declared before the service publishes."""
    connection = await aio_pika.connect_robust(RabbitSettings.from_env().url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        "emporium.events", aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(f"test.user{SUFFIX}", exclusive=True)
    await queue.bind(exchange, "emporium.user.v1.UserRegistered")
    yield queue
    await connection.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(events_queue, session) -> AsyncIterator[Running]:
    env = {
        **os.environ,
        "EMPORIUM_USER_GRPC_PORT": "0",
        "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX,
    }
    settings = Settings.from_env(env)
    # What kit.telemetry.setup does in a service process: spans are recorded, so trace context
    # reaches the events.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    app = await bootstrap.build(settings, hasher=Argon2Hasher(FAST_ARGON2))
    grpc_server, port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Running(user_service_pb2_grpc.UserServiceStub(channel), settings.cassandra.keyspace)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await grpc_server.stop(0)
    await app.close()


async def _register(running: Running, email: str, **kw: Any) -> user_pb2.User:
    return await running.stub.Register(
        user_service_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Ann"), **kw
    )


async def test_the_stored_password_is_an_argon2id_hash_in_the_cassandra_row(running, session):
    user = await _register(running, f"hash{SUFFIX}@example.com")
    rows = await session.execute(
        "SELECT password_hash FROM users WHERE id = %s", (uuid.UUID(user.id),)
    )
    stored = rows[0].password_hash
    assert stored.startswith("$argon2id$v=19$")
    assert PASSWORD not in stored
    assert argon2.PasswordHasher().verify(stored, PASSWORD)


async def test_user_registered_reaches_a_consumer_with_the_event_envelope(running, events_queue):
    trace_id = secrets.token_hex(16)
    # The caller's trace continues in the service and travels on with the event.
    traceparent = [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01")]
    user = await _register(running, f"event{SUFFIX}@example.com", metadata=traceparent)
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        message = await events_queue.get(no_ack=True, fail=False)
        if message is not None:
            event = user_events_pb2.UserRegistered.FromString(message.body)
            if event.user_id == user.id:
                break
        assert asyncio.get_running_loop().time() < deadline, "UserRegistered never arrived"
        await asyncio.sleep(0.1)
    assert event.email == user.email
    assert uuid.UUID(message.message_id)
    assert message.type == "emporium.user.v1.UserRegistered"
    assert message.content_type == "application/x-protobuf"
    assert message.app_id == "user"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert abs((message.timestamp.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()) < 60
    assert message.headers["traceparent"].split("-")[1] == trace_id


async def test_racing_registrations_over_grpc_create_one_account(running):
    email = f"grpc-race{SUFFIX}@example.com"
    results = await asyncio.gather(
        *(_register(running, email) for _ in range(20)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, user_pb2.User)]
    codes = {r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)}
    assert len(winners) == 1
    assert codes == {grpc.StatusCode.ALREADY_EXISTS}
