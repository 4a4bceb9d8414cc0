"""Password reset, email verification, password and email changes, and user administration,
over real gRPC with the in-memory adapters: every rule and error code a client can meet."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.user.v1 import user_events_pb2, user_pb2, user_service_pb2

from kit import server
from services.user import bootstrap
from services.user.adapters.keys import SigningKeys
from services.user.adapters.memory import (
    InMemoryAddressRepository,
    InMemoryLoginThrottle,
    InMemoryTokenRepository,
    InMemoryUserRepository,
)
from services.user.adapters.passwords import Argon2Hasher
from services.user.config import AdminSettings, Settings
from services.user.domain import State
from tests.unit.test_user_service import FAST_ARGON2, PASSWORD, Client, _error, _fields

NEW_PASSWORD = "a brand new passphrase"
Role = user_pb2.User


class ShiftableClock:
    """The wall clock, plus however far a test moved it on."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        now = datetime.now(UTC) + self.offset
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Harness(Client):
    def __init__(self, channel, keys, users, tokens, clock) -> None:
        super().__init__(channel, keys, users)
        self.tokens = tokens
        self.clock = clock

    def events(self, kind: type) -> list[Any]:
        return [e for e in self.users.events if isinstance(e, kind)]

    def last_token(self, kind: type, user_id: str) -> str:
        return [e for e in self.events(kind) if e.user_id == user_id][-1].token

    async def admin(self) -> tuple[user_pb2.User, list[tuple[str, str]]]:
        user = await self.register()
        stored = await self.users.get(user.id)
        await self.users.save(replace(stored, roles=frozenset({"customer", "admin"})))
        tokens = await self.login(user.email)
        return user, [("authorization", f"Bearer {tokens.access_token}")]

    async def request_reset(self, email: str, **kw: Any) -> None:
        await self.stub.RequestPasswordReset(
            user_service_pb2.RequestPasswordResetRequest(email=email), **kw
        )

    async def reset(self, token: str, password: str = NEW_PASSWORD, **kw: Any) -> None:
        await self.stub.ResetPassword(
            user_service_pb2.ResetPasswordRequest(token=token, new_password=password), **kw
        )

    async def verify(self, token: str, **kw: Any) -> user_service_pb2.VerifyEmailResponse:
        return await self.stub.VerifyEmail(user_service_pb2.VerifyEmailRequest(token=token), **kw)

    async def refresh(self, refresh_token: str):
        return await self.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=refresh_token)
        )


@pytest.fixture
async def client() -> AsyncIterator[Harness]:
    # The tests call from 127.0.0.1 and play the gateway: their x-forwarded-for is trusted.
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_USER_GRPC_PORT": "0",
            "EMPORIUM_USER_TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    settings = Settings(**{**settings.__dict__, "admin": AdminSettings()})
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    users, tokens, clock = InMemoryUserRepository(), InMemoryTokenRepository(), ShiftableClock()
    app = await bootstrap.build(
        settings,
        users=users,
        addresses=InMemoryAddressRepository(),
        tokens=tokens,
        throttle=InMemoryLoginThrottle(),
        hasher=Argon2Hasher(FAST_ARGON2),
        keys=keys,
        clock=clock,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Harness(channel, keys, users, tokens, clock)
    await grpc_server.stop(0)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- password reset -------------------------------------------------------------------------


async def test_a_reset_request_records_a_one_hour_token_of_which_only_the_hash_is_stored(client):
    user = await client.register("ann@example.com")
    await client.request_reset("ANN@example.com ")
    [event] = client.events(user_events_pb2.PasswordResetRequested)
    assert (event.user_id, event.email, event.display_name) == (user.id, user.email, "Ann Shopper")
    assert len(event.token) >= 43  # 256 random bits, URL-safe base64
    lifetime = event.expire_time.ToDatetime(UTC) - datetime.now(UTC)
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)
    assert event.token not in client.users.one_time
    assert _sha256(event.token) in client.users.one_time


async def test_a_reset_request_for_an_unknown_email_succeeds_and_writes_nothing(client):
    await client.request_reset("nobody@example.com")
    assert client.users.events == []
    assert client.users.one_time == {}


async def test_a_reset_request_for_a_disabled_account_issues_no_token(client):
    user = await client.register()
    stored = await client.users.get(user.id)
    await client.users.save(replace(stored, state=State.DISABLED))
    await client.request_reset(user.email)
    assert client.events(user_events_pb2.PasswordResetRequested) == []


async def test_a_malformed_reset_email_is_invalid_argument(client):
    error = await _error(client.request_reset("not-an-email"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["email"]


@pytest.mark.parametrize("exists", [True, False])
async def test_too_many_reset_requests_for_one_email_are_throttled_whether_or_not_it_exists(
    client, exists
):
    email = "ann@example.com"
    if exists:
        await client.register(email)
    for _ in range(5):
        await client.request_reset(email)
    error = await _error(client.request_reset(email))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_too_many_reset_requests_from_one_address_are_throttled(client):
    metadata = [("x-forwarded-for", "203.0.113.9")]
    for n in range(20):
        await client.request_reset(f"who{n}@example.com", metadata=metadata)
    error = await _error(client.request_reset("who99@example.com", metadata=metadata))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await client.request_reset("who99@example.com")  # another address is not affected


async def test_resetting_sets_the_password_ends_every_session_and_records_password_changed(
    client,
):
    user = await client.register()
    session = await client.login(user.email)
    await client.request_reset(user.email)
    await client.reset(client.last_token(user_events_pb2.PasswordResetRequested, user.id))

    old = await _error(client.login(user.email))
    assert old.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await client.login(user.email, NEW_PASSWORD)).user.id == user.id
    revoked = await _error(client.refresh(session.refresh_token))
    assert revoked.code() == grpc.StatusCode.UNAUTHENTICATED
    [changed] = client.events(user_events_pb2.PasswordChanged)
    assert (changed.user_id, changed.email) == (user.id, user.email)
    stored = await client.users.get(user.id)
    assert stored.password_hash.startswith("$argon2id$")
    assert stored.email_verified  # the link reached the address


async def test_a_reset_token_works_once(client):
    user = await client.register()
    await client.request_reset(user.email)
    token = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    await client.reset(token)
    again = await _error(client.reset(token, "yet another passphrase"))
    assert again.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(again) == ["token"]


async def test_of_two_concurrent_resets_with_one_token_exactly_one_succeeds(client):
    user = await client.register()
    await client.request_reset(user.email)
    token = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    results = await asyncio.gather(
        client.reset(token, "first new passphrase"),
        client.reset(token, "second new passphrase"),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(failures) == 1
    assert failures[0].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(client.events(user_events_pb2.PasswordChanged)) == 1


async def test_an_unknown_or_missing_reset_token_and_a_weak_password_name_their_fields(client):
    unknown = await _error(client.reset("x" * 43))
    assert (unknown.code(), _fields(unknown)) == (grpc.StatusCode.INVALID_ARGUMENT, ["token"])
    both = await _error(client.reset("", "short"))
    assert _fields(both) == ["token", "new_password"]


async def test_a_weak_new_password_leaves_the_reset_token_usable(client):
    user = await client.register("ann.lee@example.com")
    await client.request_reset(user.email)
    token = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    for weak in ("short", "1234567890", "ann.lee@example.com"):
        error = await _error(client.reset(token, weak))
        assert (error.code(), _fields(error)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            ["new_password"],
        )
    await client.reset(token)


async def test_an_expired_reset_token_is_invalid_argument(client):
    user = await client.register()
    await client.request_reset(user.email)
    token = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    client.clock.offset = timedelta(hours=1, seconds=1)
    error = await _error(client.reset(token))
    assert _fields(error) == ["token"]


async def test_a_newer_reset_request_retires_the_earlier_token(client):
    user = await client.register()
    await client.request_reset(user.email)
    first = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    await client.request_reset(user.email)
    second = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    assert _fields(await _error(client.reset(first))) == ["token"]
    await client.reset(second)


async def test_a_verification_token_does_not_reset_a_password(client):
    user = await client.register()
    token = client.last_token(user_events_pb2.EmailVerificationRequested, user.id)
    assert _fields(await _error(client.reset(token))) == ["token"]
    await client.verify(token)  # and it was not used up


async def test_resetting_a_disabled_account_fails_precondition(client):
    user = await client.register()
    await client.request_reset(user.email)
    token = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    stored = await client.users.get(user.id)
    await client.users.save(replace(stored, state=State.DISABLED))
    error = await _error(client.reset(token))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_resetting_a_deleted_account_fails_precondition(client):
    user, token = await client.signed_in()
    await client.request_reset(user.email)
    reset_token = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    await client.stub.DeleteMe(user_service_pb2.DeleteMeRequest(), metadata=token)
    error = await _error(client.reset(reset_token))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_reset_clears_the_login_throttle_of_the_account(client):
    user = await client.register()
    for _ in range(5):
        await _error(client.login(user.email, "wrong password!"))
    assert (await _error(client.login(user.email))).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await client.request_reset(user.email)
    await client.reset(client.last_token(user_events_pb2.PasswordResetRequested, user.id))
    await client.login(user.email, NEW_PASSWORD)


async def test_guessing_tokens_from_one_address_is_throttled(client):
    metadata = [("x-forwarded-for", "198.51.100.4")]
    for n in range(20):
        await _error(client.reset(f"guess-{n:040d}", metadata=metadata))
    error = await _error(client.verify("guess-again", metadata=metadata))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_reset_link_sent_to_a_previous_email_no_longer_works(client):
    user, token = await client.signed_in()
    await client.request_reset(user.email)
    reset_token = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    await client.stub.ChangeEmail(
        user_service_pb2.ChangeEmailRequest(
            new_email="moved@example.com", current_password=PASSWORD
        ),
        metadata=token,
    )
    assert _fields(await _error(client.reset(reset_token))) == ["token"]


# --- email verification ---------------------------------------------------------------------


async def test_registering_sends_a_verification_token_that_verifies_the_email_once(client):
    user = await client.register("bea@example.com")
    assert not user.email_verified
    [requested] = client.events(user_events_pb2.EmailVerificationRequested)
    assert (requested.user_id, requested.email) == (user.id, "bea@example.com")
    lifetime = requested.expire_time.ToDatetime(UTC) - datetime.now(UTC)
    assert timedelta(hours=23) < lifetime <= timedelta(hours=24)
    assert _sha256(requested.token) in client.users.one_time

    answer = await client.verify(requested.token)
    assert answer.email == "bea@example.com"
    assert (await client.users.get(user.id)).email_verified
    [verified] = client.events(user_events_pb2.EmailVerified)
    assert (verified.user_id, verified.email) == (user.id, "bea@example.com")
    assert _fields(await _error(client.verify(requested.token))) == ["token"]


async def test_a_verification_token_for_an_email_the_account_no_longer_has_is_rejected(client):
    user, token = await client.signed_in()
    old = client.last_token(user_events_pb2.EmailVerificationRequested, user.id)
    await client.stub.ChangeEmail(
        user_service_pb2.ChangeEmailRequest(new_email="new@example.com", current_password=PASSWORD),
        metadata=token,
    )
    assert _fields(await _error(client.verify(old))) == ["token"]
    new = client.last_token(user_events_pb2.EmailVerificationRequested, user.id)
    assert (await client.verify(new)).email == "new@example.com"


async def test_an_empty_or_reset_token_does_not_verify_an_email(client):
    empty = await _error(client.verify(""))
    assert (empty.code(), _fields(empty)) == (grpc.StatusCode.INVALID_ARGUMENT, ["token"])
    user = await client.register()
    await client.request_reset(user.email)
    reset = client.last_token(user_events_pb2.PasswordResetRequested, user.id)
    assert _fields(await _error(client.verify(reset))) == ["token"]


async def test_send_verification_email_issues_a_new_token_and_retires_the_old_one(client):
    user, token = await client.signed_in()
    first = client.last_token(user_events_pb2.EmailVerificationRequested, user.id)
    sent = await client.stub.SendVerificationEmail(
        user_service_pb2.SendVerificationEmailRequest(), metadata=token
    )
    assert sent.email == user.email
    assert sent.expire_time.ToDatetime(UTC) > datetime.now(UTC) + timedelta(hours=23)
    second = client.last_token(user_events_pb2.EmailVerificationRequested, user.id)
    assert second != first
    assert _fields(await _error(client.verify(first))) == ["token"]
    await client.verify(second)
    again = await _error(
        client.stub.SendVerificationEmail(
            user_service_pb2.SendVerificationEmailRequest(), metadata=token
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_send_verification_email_is_throttled_and_needs_a_token(client):
    _, token = await client.signed_in()
    request = user_service_pb2.SendVerificationEmailRequest()
    for _ in range(5):
        await client.stub.SendVerificationEmail(request, metadata=token)
    error = await _error(client.stub.SendVerificationEmail(request, metadata=token))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    anonymous = await _error(client.stub.SendVerificationEmail(request))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED


# --- changing the password ------------------------------------------------------------------


def _change_password(current: str = PASSWORD, new: str = NEW_PASSWORD):
    return user_service_pb2.ChangePasswordRequest(current_password=current, new_password=new)


async def test_changing_the_password_ends_other_sessions_and_returns_a_fresh_one(client):
    user, token = await client.signed_in()
    other_device = await client.login(user.email)
    tokens = await client.stub.ChangePassword(_change_password(), metadata=token)
    assert tokens.token_type == "Bearer"
    assert tokens.user.id == user.id
    assert jwt.decode(tokens.access_token, options={"verify_signature": False})["sub"] == user.id
    await client.refresh(tokens.refresh_token)  # the new session works
    revoked = await _error(client.refresh(other_device.refresh_token))
    assert revoked.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await _error(client.login(user.email))).code() == grpc.StatusCode.UNAUTHENTICATED
    await client.login(user.email, NEW_PASSWORD)
    [changed] = client.events(user_events_pb2.PasswordChanged)
    assert changed.user_id == user.id


async def test_a_wrong_current_password_is_invalid_argument_then_throttled(client):
    _, token = await client.signed_in()
    for _ in range(5):
        error = await _error(
            client.stub.ChangePassword(_change_password("wrong password!"), metadata=token)
        )
        assert (error.code(), _fields(error)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            ["current_password"],
        )
    throttled = await _error(client.stub.ChangePassword(_change_password(), metadata=token))
    assert throttled.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.events(user_events_pb2.PasswordChanged) == []


@pytest.mark.parametrize(
    ("current", "new", "bad"),
    [
        (PASSWORD, PASSWORD, ["new_password"]),
        (PASSWORD, "short", ["new_password"]),
        (PASSWORD, "", ["new_password"]),
        ("", "", ["current_password", "new_password"]),
    ],
)
async def test_a_new_password_that_is_weak_or_unchanged_names_the_field(client, current, new, bad):
    _, token = await client.signed_in()
    error = await _error(client.stub.ChangePassword(_change_password(current, new), metadata=token))
    assert (error.code(), _fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, bad)


async def test_changing_the_password_needs_an_access_token(client):
    error = await _error(client.stub.ChangePassword(_change_password()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_disabled_account_cannot_use_its_access_token_to_change_credentials(client):
    user, token = await client.signed_in()
    stored = await client.users.get(user.id)
    await client.users.save(replace(stored, state=State.DISABLED))
    for call in (
        client.stub.ChangePassword(_change_password(), metadata=token),
        client.stub.ChangeEmail(
            user_service_pb2.ChangeEmailRequest(
                new_email="elsewhere@example.com", current_password=PASSWORD
            ),
            metadata=token,
        ),
        client.stub.SendVerificationEmail(
            user_service_pb2.SendVerificationEmailRequest(), metadata=token
        ),
    ):
        assert (await _error(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert len(client.tokens.families) == 1  # no new session was started


# --- changing the email ---------------------------------------------------------------------


def _change_email(new: str, password: str = PASSWORD):
    return user_service_pb2.ChangeEmailRequest(new_email=new, current_password=password)


async def test_changing_the_email_moves_the_sign_in_and_asks_to_verify_the_new_address(client):
    user, token = await client.signed_in()
    old = await client.users.get(user.id)
    await client.users.save(replace(old, email_verified=True))
    changed = await client.stub.ChangeEmail(_change_email("  New.Me@Example.COM"), metadata=token)
    assert (changed.email, changed.email_verified) == ("new.me@example.com", False)
    await client.login("new.me@example.com")
    assert (await _error(client.login(user.email))).code() == grpc.StatusCode.UNAUTHENTICATED
    [updated] = client.events(user_events_pb2.UserUpdated)
    assert (updated.previous_email, updated.user.email) == (user.email, "new.me@example.com")
    assert set(updated.update_mask.paths) == {"email", "email_verified"}
    requested = client.events(user_events_pb2.EmailVerificationRequested)[-1]
    assert (requested.user_id, requested.email) == (user.id, "new.me@example.com")
    await client.register(user.email)  # the previous address is free again


async def test_changing_to_an_email_another_account_uses_is_already_exists(client):
    taken = await client.register("taken@example.com")
    _, token = await client.signed_in()
    error = await _error(
        client.stub.ChangeEmail(_change_email("TAKEN@example.com"), metadata=token)
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await client.login(taken.email)).user.id == taken.id


@pytest.mark.parametrize(
    ("new", "password", "bad"),
    [
        ("not-an-email", PASSWORD, ["new_email"]),
        ("", PASSWORD, ["new_email"]),
        (None, PASSWORD, ["new_email"]),  # the current email
        ("fresh@example.com", "wrong password!", ["current_password"]),
        ("fresh@example.com", "", ["current_password"]),
    ],
)
async def test_bad_email_changes_name_the_field_and_change_nothing(client, new, password, bad):
    user, token = await client.signed_in()
    error = await _error(
        client.stub.ChangeEmail(_change_email(new or user.email.upper(), password), metadata=token)
    )
    assert (error.code(), _fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, bad)
    assert (await client.users.get(user.id)).email == user.email
    assert client.events(user_events_pb2.UserUpdated) == []


async def test_wrong_passwords_on_email_changes_are_throttled(client):
    _, token = await client.signed_in()
    for _ in range(5):
        await _error(
            client.stub.ChangeEmail(
                _change_email("x@example.com", "wrong password!"), metadata=token
            )
        )
    error = await _error(client.stub.ChangeEmail(_change_email("x@example.com"), metadata=token))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- administration -------------------------------------------------------------------------


async def test_disabling_an_account_blocks_sign_in_and_revokes_its_sessions(client):
    admin, admin_token = await client.admin()
    user = await client.register()
    session = await client.login(user.email)
    disabled = await client.stub.DisableUser(
        user_service_pb2.DisableUserRequest(id=user.id, reason="chargeback fraud"),
        metadata=admin_token,
    )
    assert disabled.state == user_pb2.User.STATE_DISABLED
    login = await _error(client.login(user.email))
    assert login.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await _error(client.refresh(session.refresh_token))).code() == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert all(f.revoked for f in client.tokens.families.values() if f.user_id == user.id)
    [event] = client.events(user_events_pb2.UserDisabled)
    assert (event.user_id, event.reason, event.admin_user_id) == (
        user.id,
        "chargeback fraud",
        admin.id,
    )
    again = await client.stub.DisableUser(
        user_service_pb2.DisableUserRequest(id=user.id), metadata=admin_token
    )
    assert again == disabled
    assert len(client.events(user_events_pb2.UserDisabled)) == 1


async def test_enabling_a_disabled_account_lets_it_sign_in_again(client):
    admin, admin_token = await client.admin()
    user = await client.register()
    await client.stub.DisableUser(
        user_service_pb2.DisableUserRequest(id=user.id), metadata=admin_token
    )
    enabled = await client.stub.EnableUser(
        user_service_pb2.EnableUserRequest(id=user.id), metadata=admin_token
    )
    assert enabled.state == user_pb2.User.STATE_ACTIVE
    await client.login(user.email)
    [event] = client.events(user_events_pb2.UserEnabled)
    assert (event.user_id, event.admin_user_id) == (user.id, admin.id)
    again = await client.stub.EnableUser(
        user_service_pb2.EnableUserRequest(id=user.id), metadata=admin_token
    )
    assert (again.state, again.update_time) == (enabled.state, enabled.update_time)
    assert len(client.events(user_events_pb2.UserEnabled)) == 1


async def test_an_admin_cannot_disable_or_demote_themselves(client):
    admin, admin_token = await client.admin()
    disable = await _error(
        client.stub.DisableUser(
            user_service_pb2.DisableUserRequest(id=admin.id), metadata=admin_token
        )
    )
    assert disable.code() == grpc.StatusCode.FAILED_PRECONDITION
    demote = await _error(
        client.stub.SetUserRoles(
            user_service_pb2.SetUserRolesRequest(id=admin.id, roles=[Role.ROLE_CUSTOMER]),
            metadata=admin_token,
        )
    )
    assert demote.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await client.users.get(admin.id)).roles == {"customer", "admin"}


async def test_admin_calls_on_missing_malformed_or_deleted_accounts(client):
    _, admin_token = await client.admin()
    missing = "7d0c1f5e-0000-4000-8000-00000000000a"
    calls = {
        "disable": lambda i: client.stub.DisableUser(
            user_service_pb2.DisableUserRequest(id=i), metadata=admin_token
        ),
        "enable": lambda i: client.stub.EnableUser(
            user_service_pb2.EnableUserRequest(id=i), metadata=admin_token
        ),
        "roles": lambda i: client.stub.SetUserRoles(
            user_service_pb2.SetUserRolesRequest(id=i, roles=[Role.ROLE_ADMIN]),
            metadata=admin_token,
        ),
    }
    deleted, deleted_token = await client.signed_in()
    await client.stub.DeleteMe(user_service_pb2.DeleteMeRequest(), metadata=deleted_token)
    for call in calls.values():
        assert (await _error(call(missing))).code() == grpc.StatusCode.NOT_FOUND
        bad = await _error(call("not-a-uuid"))
        assert (bad.code(), _fields(bad)) == (grpc.StatusCode.INVALID_ARGUMENT, ["id"])
        gone = await _error(call(deleted.id))
        assert gone.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_customers_cannot_call_the_admin_methods(client):
    user, customer = await client.signed_in()
    for call in (
        client.stub.DisableUser(user_service_pb2.DisableUserRequest(id=user.id), metadata=customer),
        client.stub.EnableUser(user_service_pb2.EnableUserRequest(id=user.id), metadata=customer),
        client.stub.SetUserRoles(
            user_service_pb2.SetUserRolesRequest(id=user.id, roles=[Role.ROLE_ADMIN]),
            metadata=customer,
        ),
    ):
        assert (await _error(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await client.users.get(user.id)).roles == {"customer"}


async def test_a_disable_reason_over_500_characters_is_invalid_argument(client):
    user = await client.register()
    _, admin_token = await client.admin()
    error = await _error(
        client.stub.DisableUser(
            user_service_pb2.DisableUserRequest(id=user.id, reason="x" * 501), metadata=admin_token
        )
    )
    assert _fields(error) == ["reason"]


async def test_granting_admin_reaches_the_token_at_the_next_refresh_and_keeps_customer(client):
    admin, admin_token = await client.admin()
    user = await client.register()
    session = await client.login(user.email)
    granted = await client.stub.SetUserRoles(
        user_service_pb2.SetUserRolesRequest(id=user.id, roles=[Role.ROLE_ADMIN]),
        metadata=admin_token,
    )
    assert list(granted.roles) == [Role.ROLE_CUSTOMER, Role.ROLE_ADMIN]
    refreshed = await client.refresh(session.refresh_token)
    claims = jwt.decode(refreshed.access_token, options={"verify_signature": False})
    assert claims["roles"] == ["admin", "customer"]
    [event] = client.events(user_events_pb2.UserRolesChanged)
    assert list(event.roles) == [Role.ROLE_CUSTOMER, Role.ROLE_ADMIN]
    assert list(event.previous_roles) == [Role.ROLE_CUSTOMER]
    assert event.admin_user_id == admin.id
    # Another admin's role can be taken away; setting the same roles again changes nothing.
    for _ in range(2):
        demoted = await client.stub.SetUserRoles(
            user_service_pb2.SetUserRolesRequest(id=user.id), metadata=admin_token
        )
        assert list(demoted.roles) == [Role.ROLE_CUSTOMER]
    assert len(client.events(user_events_pb2.UserRolesChanged)) == 2


async def test_an_unspecified_or_unknown_role_is_invalid_argument(client):
    user = await client.register()
    _, admin_token = await client.admin()
    for roles in ([Role.ROLE_UNSPECIFIED], [Role.ROLE_ADMIN, 42]):
        error = await _error(
            client.stub.SetUserRoles(
                user_service_pb2.SetUserRolesRequest(id=user.id, roles=roles),
                metadata=admin_token,
            )
        )
        assert (error.code(), _fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, ["roles"])


async def test_the_last_active_admin_cannot_delete_their_account(client):
    admin, admin_token = await client.admin()
    error = await _error(
        client.stub.DeleteMe(user_service_pb2.DeleteMeRequest(), metadata=admin_token)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    other, _ = await client.admin()
    await client.stub.DeleteMe(user_service_pb2.DeleteMeRequest(), metadata=admin_token)
    assert (await client.users.get(admin.id)).state is State.DELETED
    assert (await client.users.get(other.id)).state is State.ACTIVE


def test_token_lifetimes_and_login_limits_come_from_the_environment():
    defaults = Settings.from_env({"EMPORIUM_ENV": "development"})
    assert (defaults.password_reset_token_seconds, defaults.email_verification_token_seconds) == (
        3600,
        86400,
    )
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_USER_PASSWORD_RESET_TOKEN_SECONDS": "600",
            "EMPORIUM_USER_EMAIL_VERIFICATION_TOKEN_SECONDS": "7200",
            "EMPORIUM_USER_LOGIN_FAILURES_PER_ADDRESS": "500",
        }
    )
    assert settings.password_reset_token_seconds == 600
    assert settings.email_verification_token_seconds == 7200
    assert (settings.login_failures_per_account, settings.login_failures_per_address) == (5, 500)
