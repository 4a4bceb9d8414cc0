"""The user service over real gRPC, with the in-memory adapters: what a client sees."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import argon2
import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.user.v1 import (
    address_pb2,
    user_events_pb2,
    user_pb2,
    user_service_pb2,
    user_service_pb2_grpc,
    user_settings_pb2,
)
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from google.type import postal_address_pb2
from grpc_status import rpc_status

from kit import auth, server
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

PASSWORD = "correct horse battery"
# Argon2id with tiny costs: the same code path, fast enough for many tests.
FAST_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Client:
    def __init__(self, channel: grpc.aio.Channel, keys: SigningKeys, users: InMemoryUserRepository):
        self.stub = user_service_pb2_grpc.UserServiceStub(channel)
        self.keys = keys
        self.users = users
        self._n = 0

    async def register(self, email: str | None = None, **fields: Any) -> user_pb2.User:
        self._n += 1
        request = user_service_pb2.RegisterRequest(
            email=email or f"shopper{self._n}@example.com",
            password=fields.pop("password", PASSWORD),
            display_name=fields.pop("display_name", "Ann Shopper"),
            **fields,
        )
        return await self.stub.Register(request)

    async def login(self, email: str, password: str = PASSWORD, **kw: Any):
        return await self.stub.Login(
            user_service_pb2.LoginRequest(email=email, password=password), **kw
        )

    async def signed_in(self) -> tuple[user_pb2.User, list[tuple[str, str]]]:
        user = await self.register()
        tokens = await self.login(user.email)
        return user, [("authorization", f"Bearer {tokens.access_token}")]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
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
    users = InMemoryUserRepository()
    app = await bootstrap.build(
        settings,
        users=users,
        addresses=InMemoryAddressRepository(),
        tokens=InMemoryTokenRepository(),
        throttle=InMemoryLoginThrottle(),
        hasher=Argon2Hasher(FAST_ARGON2),
        keys=keys,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Client(channel, keys, users)
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


# --- registration ---------------------------------------------------------------------------


async def test_register_normalises_the_email_and_stores_an_argon2id_hash(client):
    user = await client.register("  Ann.Shopper@Example.COM ")
    assert user.email == "ann.shopper@example.com"
    assert list(user.roles) == [user_pb2.User.ROLE_CUSTOMER]
    assert user.state == user_pb2.User.STATE_ACTIVE
    stored = await client.users.get(user.id)
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


async def test_register_records_a_user_registered_event_with_the_settings(client):
    user = await client.register("ann@example.com", locale="fr-FR", time_zone="Europe/Paris")
    [event] = [e for e in client.users.events if isinstance(e, user_events_pb2.UserRegistered)]
    assert (event.user_id, event.email, event.locale) == (user.id, "ann@example.com", "fr-FR")
    assert event.settings.time_zone == "Europe/Paris"


async def test_a_duplicate_email_in_another_case_is_already_exists(client):
    await client.register("ann@example.com")
    error = await _error(client.register("ANN@example.com"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_twenty_racing_registrations_of_one_email_leave_exactly_one_account(client):
    results = await asyncio.gather(
        *(client.register("race@example.com") for _ in range(20)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, user_pb2.User)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert {e.code() for e in losers} == {grpc.StatusCode.ALREADY_EXISTS}


async def test_a_retried_registration_with_the_same_request_id_returns_the_same_account(client):
    request_id = "0b8e4a4e-8a55-4a38-9d0e-7f1f3f0c8f11"
    first = await client.register("retry@example.com", request_id=request_id)
    again = await client.register("retry@example.com", request_id=request_id)
    assert again.id == first.id
    assert len(client.users.users) == 1


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"email": "not-an-email"}, ["email"]),
        ({"password": "short"}, ["password"]),
        ({"password": "1234567890"}, ["password"]),
        ({"display_name": "   "}, ["display_name"]),
        (
            {"email": "x@y", "password": "short", "display_name": ""},
            ["email", "password", "display_name"],
        ),
        ({"locale": "french"}, ["locale"]),
        ({"time_zone": "Mars/Olympus"}, ["time_zone"]),
        ({"request_id": "not-a-uuid"}, ["request_id"]),
    ],
)
async def test_bad_registration_input_names_every_bad_field_and_stores_nothing(client, fields, bad):
    email = fields.pop("email", "ok@example.com")
    error = await _error(client.register(email, **fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == bad
    assert client.users.users == {}
    assert client.users.events == []


# --- login and tokens -----------------------------------------------------------------------


async def test_login_returns_a_short_lived_es256_token_with_the_claims_services_check(client):
    user = await client.register("ann@example.com")
    tokens = await client.login("Ann@Example.com")
    header = jwt.get_unverified_header(tokens.access_token)
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    assert header["alg"] == "ES256"
    assert header["kid"] == client.keys.kid
    assert claims["sub"] == user.id
    assert (claims["iss"], claims["aud"]) == ("emporium-user", "emporium")
    assert claims["roles"] == ["customer"]
    assert 0 < claims["exp"] - time.time() <= 15 * 60 + 5
    assert tokens.token_type == "Bearer"
    assert tokens.refresh_token


async def test_a_wrong_password_and_an_unknown_email_get_the_same_unauthenticated(client):
    await client.register("ann@example.com")
    wrong = await _error(client.login("ann@example.com", "wrong password!"))
    unknown = await _error(client.login("nobody@example.com"))
    assert wrong.code() == unknown.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.details() == unknown.details()


async def test_repeated_failed_logins_are_throttled_even_with_the_right_password(client):
    await client.register("ann@example.com")
    for _ in range(5):
        await _error(client.login("ann@example.com", "wrong password!"))
    error = await _error(client.login("ann@example.com"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_one_client_address_guessing_many_accounts_is_throttled(client):
    metadata = [("x-forwarded-for", "203.0.113.7")]
    for n in range(20):
        await _error(client.login(f"guess{n}@example.com", metadata=metadata))
    error = await _error(client.login("guess99@example.com", metadata=metadata))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Another address is not affected.
    other = await _error(client.login("guess99@example.com"))
    assert other.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_direct_callers_spoofed_forwarded_for_does_not_move_its_throttle():
    # Only the gateway's address (services.yaml) is trusted by default, not 127.0.0.1.
    settings = Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_USER_GRPC_PORT": "0"})
    settings = Settings(**{**settings.__dict__, "admin": AdminSettings()})
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.10/32"]
    app = await bootstrap.build(settings, **_stores())
    grpc_server, port, _ = await server.start(settings.server, app)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            for n in range(20):  # each guess claims to come from another address
                spoofed = [("x-forwarded-for", f"203.0.113.{n}")]
                await _error(
                    stub.Login(
                        user_service_pb2.LoginRequest(email=f"g{n}@example.com", password="x"),
                        metadata=spoofed,
                    )
                )
            error = await _error(
                stub.Login(
                    user_service_pb2.LoginRequest(email="g99@example.com", password="x"),
                    metadata=[("x-forwarded-for", "198.51.100.1")],
                )
            )
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await grpc_server.stop(None)


async def test_get_me_returns_the_callers_own_account(client):
    user, token = await client.signed_in()
    me = await client.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=token)
    assert (me.id, me.email) == (user.id, user.email)
    assert me.last_login_time.seconds > 0


async def test_refresh_rotates_the_token_and_the_old_one_stops_working(client):
    user, _ = await client.signed_in()
    first = await client.login(user.email)
    second = await client.stub.RefreshToken(
        user_service_pb2.RefreshTokenRequest(refresh_token=first.refresh_token)
    )
    assert second.refresh_token != first.refresh_token
    assert jwt.decode(second.access_token, options={"verify_signature": False})["sub"] == user.id


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(client):
    user, _ = await client.signed_in()
    first = await client.login(user.email)
    refresh = user_service_pb2.RefreshTokenRequest
    second = await client.stub.RefreshToken(refresh(refresh_token=first.refresh_token))
    reuse = await _error(client.stub.RefreshToken(refresh(refresh_token=first.refresh_token)))
    assert reuse.code() == grpc.StatusCode.UNAUTHENTICATED
    newest = await _error(client.stub.RefreshToken(refresh(refresh_token=second.refresh_token)))
    assert newest.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_logout_revokes_the_refresh_token(client):
    user, _ = await client.signed_in()
    tokens = await client.login(user.email)
    await client.stub.Logout(user_service_pb2.LogoutRequest(refresh_token=tokens.refresh_token))
    error = await _error(
        client.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
        )
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_malformed_refresh_token_is_invalid_argument(client):
    error = await _error(
        client.stub.RefreshToken(user_service_pb2.RefreshTokenRequest(refresh_token="abc"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["refresh_token"]


# --- profile, settings, addresses -----------------------------------------------------------


async def test_update_me_changes_only_the_masked_fields(client):
    _, token = await client.signed_in()
    request = user_service_pb2.UpdateMeRequest(
        user=user_pb2.User(display_name="Ann B.", phone_number="+14155550100"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
    )
    me = await client.stub.UpdateMe(request, metadata=token)
    assert (me.display_name, me.phone_number) == ("Ann B.", "")


async def test_update_me_with_an_unknown_mask_path_is_invalid_argument(client):
    _, token = await client.signed_in()
    request = user_service_pb2.UpdateMeRequest(
        user=user_pb2.User(email="new@example.com"),
        update_mask=field_mask_pb2.FieldMask(paths=["email"]),
    )
    error = await _error(client.stub.UpdateMe(request, metadata=token))
    assert _fields(error) == ["update_mask"]


async def test_settings_update_changes_one_channel_and_keeps_the_others(client):
    _, token = await client.signed_in()
    wanted = user_settings_pb2.UserSettings(
        notification_channels=user_settings_pb2.UserSettings.NotificationChannels(sms_enabled=True)
    )
    request = user_service_pb2.UpdateSettingsRequest(
        settings=wanted,
        update_mask=field_mask_pb2.FieldMask(paths=["notification_channels.sms_enabled"]),
    )
    error = await _error(client.stub.UpdateSettings(request, metadata=token))
    assert _fields(error) == ["update_mask"]  # the mask uses the domain's short names
    request.update_mask.paths[:] = ["notification_channels.sms"]
    settings = await client.stub.UpdateSettings(request, metadata=token)
    channels = settings.notification_channels
    assert (channels.email_enabled, channels.sms_enabled) == (True, True)


def _address(**fields: Any) -> address_pb2.Address:
    postal = postal_address_pb2.PostalAddress(
        region_code="US", address_lines=["1 Main St"], recipients=["Ann"], locality="Springfield"
    )
    return address_pb2.Address(postal_address=postal, **fields)


async def test_addresses_are_private_to_their_owner(client):
    _, ann = await client.signed_in()
    _, bob = await client.signed_in()
    created = await client.stub.CreateAddress(
        user_service_pb2.CreateAddressRequest(address=_address(label="home")), metadata=ann
    )
    listed = await client.stub.ListAddresses(user_service_pb2.ListAddressesRequest(), metadata=ann)
    assert [a.id for a in listed.addresses] == [created.id]
    for call in (
        client.stub.GetAddress(user_service_pb2.GetAddressRequest(id=created.id), metadata=bob),
        client.stub.DeleteAddress(
            user_service_pb2.DeleteAddressRequest(id=created.id), metadata=bob
        ),
        client.stub.UpdateAddress(
            user_service_pb2.UpdateAddressRequest(
                id=created.id,
                address=_address(label="mine"),
                update_mask=field_mask_pb2.FieldMask(paths=["label"]),
            ),
            metadata=bob,
        ),
    ):
        assert (await _error(call)).code() == grpc.StatusCode.NOT_FOUND
    bobs = await client.stub.ListAddresses(user_service_pb2.ListAddressesRequest(), metadata=bob)
    assert list(bobs.addresses) == []


async def test_a_new_default_shipping_address_takes_the_flag_from_the_old_one(client):
    _, token = await client.signed_in()
    create = user_service_pb2.CreateAddressRequest
    first = await client.stub.CreateAddress(
        create(address=_address(default_shipping=True)), metadata=token
    )
    second = await client.stub.CreateAddress(
        create(address=_address(default_shipping=True)), metadata=token
    )
    listed = await client.stub.ListAddresses(
        user_service_pb2.ListAddressesRequest(), metadata=token
    )
    flags = {a.id: a.default_shipping for a in listed.addresses}
    assert flags == {first.id: False, second.id: True}


async def test_an_address_without_region_or_lines_names_both_fields(client):
    _, token = await client.signed_in()
    bad = address_pb2.Address(postal_address=postal_address_pb2.PostalAddress(recipients=["A"]))
    error = await _error(
        client.stub.CreateAddress(
            user_service_pb2.CreateAddressRequest(address=bad), metadata=token
        )
    )
    assert _fields(error) == [
        "address.postal_address.region_code",
        "address.postal_address.address_lines",
    ]


async def test_paging_addresses_returns_each_once(client):
    _, token = await client.signed_in()
    created = set()
    for n in range(5):
        address = await client.stub.CreateAddress(
            user_service_pb2.CreateAddressRequest(address=_address(label=f"a{n}")), metadata=token
        )
        created.add(address.id)
    seen: list[str] = []
    page_token = ""
    while True:
        page = await client.stub.ListAddresses(
            user_service_pb2.ListAddressesRequest(page_size=2, page_token=page_token),
            metadata=token,
        )
        seen += [a.id for a in page.addresses]
        page_token = page.next_page_token
        if not page_token:
            break
    assert sorted(seen) == sorted(created)


async def test_delete_me_anonymises_the_account_and_revokes_its_sessions(client):
    user, token = await client.signed_in()
    tokens = await client.login(user.email)
    await client.stub.DeleteMe(user_service_pb2.DeleteMeRequest(), metadata=token)
    gone = await _error(client.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=token))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    refresh = await _error(
        client.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
        )
    )
    assert refresh.code() == grpc.StatusCode.UNAUTHENTICATED
    stored = await client.users.get(user.id)
    assert (stored.display_name, stored.password_hash) == ("", "")
    assert any(isinstance(e, user_events_pb2.UserDeleted) for e in client.users.events)
    # The email is free again.
    await client.register(user.email)


# --- administration -------------------------------------------------------------------------


async def _admin_metadata(client) -> list[tuple[str, str]]:
    admin_user = await client.register()
    stored = await client.users.get(admin_user.id)
    await client.users.save(stored.__class__(**{**stored.__dict__, "roles": frozenset({"admin"})}))
    tokens = await client.login(admin_user.email)
    return [("authorization", f"Bearer {tokens.access_token}")]


async def _refused_within(seconds: float, call: Any) -> grpc.aio.AioRpcError:
    """The error of `call()` once it fails; services refetch revocation marks every second."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            return error
        assert time.monotonic() < deadline, f"still accepted after {seconds} s"
        await asyncio.sleep(0.1)


async def test_a_disabled_users_access_token_stops_working_within_seconds(client):
    admin = await _admin_metadata(client)
    user, metadata = await client.signed_in()
    assert (await client.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=metadata)).id
    await client.stub.DisableUser(user_service_pb2.DisableUserRequest(id=user.id), metadata=admin)
    denied = await _refused_within(
        5, lambda: client.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=metadata)
    )
    assert denied.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in denied.details()
    revocations = await client.stub.ListTokenRevocations(
        user_service_pb2.ListTokenRevocationsRequest()
    )
    assert [r.user_id_sha256 for r in revocations.revocations] == [auth.revocation_key(user.id)]


async def test_tokens_with_old_roles_stop_working_and_a_new_sign_in_right_away_works(
    client,
):
    admin = await _admin_metadata(client)
    other, other_metadata = await client.signed_in()
    await client.stub.SetUserRoles(
        user_service_pb2.SetUserRolesRequest(id=other.id, roles=[user_pb2.User.ROLE_ADMIN]),
        metadata=admin,
    )
    demoted = await _refused_within(
        5, lambda: client.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=other_metadata)
    )
    assert demoted.code() == grpc.StatusCode.UNAUTHENTICATED
    # Signing in again right away gives a token with the new roles that works at once.
    fresh = await client.login(other.email)
    claims = jwt.decode(fresh.access_token, options={"verify_signature": False})
    assert claims["roles"] == ["admin", "customer"]
    listed = await client.stub.ListUsers(
        user_service_pb2.ListUsersRequest(),
        metadata=[("authorization", f"Bearer {fresh.access_token}")],
    )
    assert other.id in {u.id for u in listed.users}


async def test_admins_list_and_get_users_and_customers_cannot(client):
    user, customer = await client.signed_in()
    admin_user = await client.register("boss@example.com")
    stored = await client.users.get(admin_user.id)
    await client.users.save(stored.__class__(**{**stored.__dict__, "roles": frozenset({"admin"})}))
    tokens = await client.login("boss@example.com")
    admin = [("authorization", f"Bearer {tokens.access_token}")]

    listed = await client.stub.ListUsers(user_service_pb2.ListUsersRequest(), metadata=admin)
    assert {u.id for u in listed.users} == {user.id, admin_user.id}
    got = await client.stub.GetUser(user_service_pb2.GetUserRequest(id=user.id), metadata=admin)
    assert got.email == user.email
    denied = await _error(
        client.stub.ListUsers(user_service_pb2.ListUsersRequest(), metadata=customer)
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


def _stores() -> dict[str, Any]:
    return dict(
        users=InMemoryUserRepository(),
        addresses=InMemoryAddressRepository(),
        tokens=InMemoryTokenRepository(),
        throttle=InMemoryLoginThrottle(),
        hasher=Argon2Hasher(FAST_ARGON2),
        keys=SigningKeys(ec.generate_private_key(ec.SECP256R1())),
    )


async def test_an_account_that_claimed_the_admin_email_first_is_not_made_admin_at_start(caplog):
    settings = Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_USER_GRPC_PORT": "0"})
    stores = _stores()
    no_admin = Settings(**{**settings.__dict__, "admin": AdminSettings()})
    app = await bootstrap.build(no_admin, **stores)
    grpc_server, port, _ = await server.start(no_admin.server, app)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            client = Client(channel, stores["keys"], stores["users"])
            squatter = await client.register(
                AdminSettings.DEVELOPMENT_EMAIL, password="the squatter's own pass"
            )
    finally:
        await grpc_server.stop(None)

    caplog.clear()  # the first build's own report ("admin bootstrap off") is not this one
    with caplog.at_level("INFO", logger="services.user.bootstrap"):
        await bootstrap.build(settings, **stores)

    [account] = stores["users"].users.values()
    assert account.id == squatter.id
    assert "admin" not in account.roles
    [report] = [r for r in caplog.records if "admin bootstrap" in r.getMessage()]
    assert report.levelname == "WARNING"
    assert "refused" in report.getMessage()
    assert "never promoted" in report.getMessage()
    assert squatter.id in report.getMessage()


async def test_no_first_admin_is_created_when_an_admin_already_exists(caplog):
    settings = Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_USER_GRPC_PORT": "0"})
    stores = _stores()
    await bootstrap.build(settings, **stores)
    renamed = Settings(
        **{
            **settings.__dict__,
            "admin": AdminSettings.from_env(
                settings.auth,
                {"EMPORIUM_ADMIN_EMAIL": "boss@example.com", "EMPORIUM_ADMIN_PASSWORD": "x" * 20},
            ),
        }
    )
    with caplog.at_level("INFO", logger="services.user.bootstrap"):
        await bootstrap.build(renamed, **stores)
    assert [u.email for u in stores["users"].users.values()] == [AdminSettings.DEVELOPMENT_EMAIL]
    assert any("skipped: an admin already exists" in r.getMessage() for r in caplog.records)


async def test_the_configured_admin_is_created_once_with_the_admin_role(tmp_path):
    settings = Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_USER_GRPC_PORT": "0"})
    users = InMemoryUserRepository()
    kw = dict(
        users=users,
        addresses=InMemoryAddressRepository(),
        tokens=InMemoryTokenRepository(),
        throttle=InMemoryLoginThrottle(),
        hasher=Argon2Hasher(FAST_ARGON2),
        keys=SigningKeys(ec.generate_private_key(ec.SECP256R1())),
    )
    await bootstrap.build(settings, **kw)
    await bootstrap.build(settings, **kw)
    [admin] = users.users.values()
    assert admin.email == AdminSettings.DEVELOPMENT_EMAIL
    assert admin.roles == {"admin", "customer"}
