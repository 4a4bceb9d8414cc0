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
from emporium.user.v1 import (
    user_events_pb2,
    user_pb2,
    user_service_pb2,
    user_service_pb2_grpc,
    user_settings_pb2,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from kit import cassandra, errors, server
from kit.config import CassandraSettings, RabbitSettings
from services.user import bootstrap
from services.user.adapters import cassandra as stores
from services.user.adapters import memory
from services.user.adapters.passwords import Argon2Hasher
from services.user.config import Settings
from services.user.domain import (
    Address,
    OneTimeToken,
    PostalAddress,
    Purpose,
    State,
    TokenFamily,
    User,
    UserSettings,
)

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
    await session.drop_keyspace()
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


def _one_time(user: User, purpose: Purpose = Purpose.PASSWORD_RESET, **fields: Any):
    now = _now()
    return OneTimeToken(
        token_hash=fields.pop("token_hash", secrets.token_hex(32)),
        purpose=purpose,
        user_id=user.id,
        email=user.email,
        expire_time=fields.pop("expire_time", now + timedelta(hours=1)),
        create_time=now,
    )


async def test_a_one_time_token_is_found_by_hash_and_purpose_and_works_exactly_once(repos):
    users = repos["users"]
    user, settings = _user()
    await users.create(user, settings, [])
    token = _one_time(user)
    await users.issue_token(token, [_registered(user)])
    assert await users.find_token(token.token_hash, Purpose.EMAIL_VERIFICATION) is None
    assert await users.find_token(secrets.token_hex(32), Purpose.PASSWORD_RESET) is None
    assert await users.find_token(token.token_hash, Purpose.PASSWORD_RESET) == token
    # Ten concurrent uses of one token: exactly one gets it.
    results = await asyncio.gather(*(users.consume_token(token) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]
    assert await users.find_token(token.token_hash, Purpose.PASSWORD_RESET) is None


async def test_a_newer_token_retires_the_older_one_of_its_purpose_only(repos):
    users = repos["users"]
    user, settings = _user()
    await users.create(user, settings, [])
    first, verification = _one_time(user), _one_time(user, Purpose.EMAIL_VERIFICATION)
    second = _one_time(user)
    for token in (first, verification, second):
        await users.issue_token(token, [])
    assert await users.find_token(first.token_hash, Purpose.PASSWORD_RESET) is None
    assert await users.find_token(second.token_hash, Purpose.PASSWORD_RESET) == second
    found = await users.find_token(verification.token_hash, Purpose.EMAIL_VERIFICATION)
    assert found == verification


async def test_an_expired_one_time_token_is_not_found(repos):
    users = repos["users"]
    user, settings = _user()
    await users.create(user, settings, [])
    token = _one_time(user, expire_time=_now() - timedelta(seconds=1))
    await users.issue_token(token, [])
    assert await users.find_token(token.token_hash, Purpose.PASSWORD_RESET) is None


async def test_create_and_save_store_the_token_they_carry(repos):
    users = repos["users"]
    user, settings = _user()
    at_registration = _one_time(user, Purpose.EMAIL_VERIFICATION)
    await users.create(user, settings, [_registered(user)], at_registration)
    found = await users.find_token(at_registration.token_hash, Purpose.EMAIL_VERIFICATION)
    assert found == at_registration
    with_save = _one_time(user)
    await users.save(replace(user, email_verified=True), [], with_save)
    assert await users.find_token(with_save.token_hash, Purpose.PASSWORD_RESET) == with_save
    assert (await users.get(user.id)).email_verified


async def test_change_email_moves_the_account_and_its_claim(repos):
    users = repos["users"]
    user, settings = _user(email_verified=True)
    await users.create(user, settings, [])
    new_email = f"moved{secrets.token_hex(4)}@example.com"
    moved = replace(user, email=new_email, email_verified=False, update_time=_now())
    token = _one_time(moved, Purpose.EMAIL_VERIFICATION)
    await users.change_email(moved, user.email, [_registered(moved)], token)
    assert await users.get(user.id) == moved
    assert await users.by_email(new_email) == moved
    assert await users.by_email(user.email) is None
    assert await users.find_token(token.token_hash, Purpose.EMAIL_VERIFICATION) == token
    # The previous address is free for a new account; the new one is not.
    again, again_settings = _user(user.email)
    await users.create(again, again_settings, [])
    other, other_settings = _user()
    await users.create(other, other_settings, [])
    with pytest.raises(errors.AlreadyExists):
        await users.change_email(replace(other, email=new_email), other.email, [])
    assert (await users.get(other.id)).email == other.email
    # A retry of the same change by the same account succeeds.
    await users.change_email(moved, user.email, [])
    assert await users.by_email(new_email) == moved


async def test_of_racing_email_changes_to_one_address_exactly_one_wins(repos):
    users = repos["users"]
    target = f"wanted{secrets.token_hex(4)}@example.com"
    accounts = [_user() for _ in range(5)]
    for user, settings in accounts:
        await users.create(user, settings, [])
    results = await asyncio.gather(
        *(users.change_email(replace(u, email=target), u.email, []) for u, _ in accounts),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, errors.AlreadyExists) for r in results if r is not None)
    winner = await users.by_email(target)
    assert winner is not None
    assert winner.email == target


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


# --- crash repair: orphan email claims (Cassandra only; the fake has no crash window) -------


async def _orphan_claim(session, email: str, holder: str, age: timedelta) -> None:
    await session.execute(
        "INSERT INTO users_by_email (email, user_id, request_id, claim_time) "
        "VALUES (%s, %s, '', %s)",
        (email, uuid.UUID(holder), _now() - age),
    )


async def test_a_claim_left_by_an_email_change_that_died_is_taken_over_once_stale(
    session, cassandra_stores
):
    users = cassandra_stores.users
    # An account claimed this address, then died before moving its row to it.
    mover, mover_settings = _user()
    await users.create(mover, mover_settings, [])
    email = f"half-moved{secrets.token_hex(4)}@example.com"
    await _orphan_claim(session, email, mover.id, timedelta(seconds=5))
    assert await users.by_email(email) is None  # nobody signs in with it
    fresh, fresh_settings = _user(email)
    with pytest.raises(errors.AlreadyExists):  # the writer might still be at work
        await users.create(fresh, fresh_settings, [])
    # The account itself may finish the change at once.
    moved = replace(mover, email=email)
    await users.change_email(moved, mover.email, [])
    assert await users.by_email(email) == moved

    stale = f"stale{secrets.token_hex(4)}@example.com"
    await _orphan_claim(session, stale, mover.id, stores.ORPHAN_CLAIM_AFTER + timedelta(seconds=1))
    late, late_settings = _user(stale)
    assert await users.create(late, late_settings, []) == late
    assert await users.by_email(stale) == late


async def test_a_claim_left_by_a_move_that_died_before_releasing_frees_the_old_address(
    session, cassandra_stores
):
    users = cassandra_stores.users
    user, settings = _user()
    await users.create(user, settings, [])
    # The account row already has the new address; the old claim was never released.
    moved = replace(user, email=f"new{secrets.token_hex(4)}@example.com")
    await users.change_email(moved, moved.email, [])  # as if the release never ran
    await session.execute(
        "UPDATE users_by_email SET claim_time = %s WHERE email = %s",
        (_now() - stores.ORPHAN_CLAIM_AFTER - timedelta(seconds=1), user.email),
    )
    assert await users.by_email(user.email) is None
    again, again_settings = _user(user.email)
    assert await users.create(again, again_settings, []) == again


async def test_a_retry_finishes_a_registration_that_died_after_claiming_the_email(
    session, cassandra_stores
):
    users = cassandra_stores.users
    request_id = str(uuid.uuid4())
    email = f"half-registered{secrets.token_hex(4)}@example.com"
    claimed = str(uuid.uuid4())
    await session.execute(
        "INSERT INTO users_by_email (email, user_id, request_id, claim_time) "
        "VALUES (%s, %s, %s, %s)",
        (email, uuid.UUID(claimed), request_id, _now()),
    )
    retry, settings = _user(email, request_id=request_id)
    token = _one_time(retry, Purpose.EMAIL_VERIFICATION)
    event = user_events_pb2.UserRegistered(
        user_id=retry.id, email=email, settings=user_settings_pb2.UserSettings(user_id=retry.id)
    )
    stored = await users.create(retry, settings, [event], token)
    assert stored.id == claimed
    assert (await users.by_email(email)).id == claimed
    assert (await users.find_token(token.token_hash, Purpose.EMAIL_VERIFICATION)).user_id == claimed
    rekeyed = stores._with_id(event, retry.id, claimed)
    assert (rekeyed.user_id, rekeyed.settings.user_id, rekeyed.email) == (claimed, claimed, email)
    assert event.user_id == retry.id  # the caller's message is left alone


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
        "emporium.events",
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": "emporium.unrouted"},  # as kit.bus declares it
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def reset_queue() -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A throwaway queue bound to PasswordResetRequested, declared before anything publishes."""
    connection = await aio_pika.connect_robust(RabbitSettings.from_env().url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        "emporium.events",
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": "emporium.unrouted"},  # as kit.bus declares it
    )
    queue = await channel.declare_queue(f"test.user.reset{SUFFIX}", exclusive=True)
    await queue.bind(exchange, "emporium.user.v1.PasswordResetRequested")
    yield queue
    await connection.close()


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


async def _reset_token(queue: aio_pika.abc.AbstractQueue, user_id: str) -> str:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            event = user_events_pb2.PasswordResetRequested.FromString(message.body)
            if event.user_id == user_id:
                return event.token
        assert asyncio.get_running_loop().time() < deadline, "PasswordResetRequested never came"
        await asyncio.sleep(0.1)


async def test_of_concurrent_resets_with_one_token_on_cassandra_exactly_one_succeeds(
    reset_queue, running, session
):
    user = await _register(running, f"reset{SUFFIX}@example.com")
    await running.stub.RequestPasswordReset(
        user_service_pb2.RequestPasswordResetRequest(email=user.email)
    )
    token = await _reset_token(reset_queue, user.id)
    rows = await session.execute("SELECT token_hash FROM one_time_tokens")
    assert token not in {r.token_hash for r in rows}  # only its hash is stored

    async def reset(password: str):
        return await running.stub.ResetPassword(
            user_service_pb2.ResetPasswordRequest(token=token, new_password=password)
        )

    results = await asyncio.gather(
        *(reset(f"new passphrase number {n}") for n in range(5)), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(failures) == 4
    assert {f.code() for f in failures} == {grpc.StatusCode.INVALID_ARGUMENT}
    [winner] = [n for n, r in enumerate(results) if not isinstance(r, grpc.aio.AioRpcError)]
    tokens = await running.stub.Login(
        user_service_pb2.LoginRequest(email=user.email, password=f"new passphrase number {winner}")
    )
    assert tokens.user.id == user.id
