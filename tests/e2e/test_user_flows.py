"""Accounts and tokens end to end: REST and gRPC through Envoy to the user service on Cassandra.

Bad tokens are minted with the stack's own signing key (the development key the user service
keeps under $EMPORIUM_VAR), so an expired or wrong-audience token is otherwise perfectly signed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aio_pika
import grpc
import httpx
import jwt
import pytest
from emporium.user.v1 import user_events_pb2, user_service_pb2, user_service_pb2_grpc
from google.protobuf.message import Message

from kit.config import RabbitSettings
from services.user.adapters import keys as key_adapter
from services.user.config import Settings

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def api(gateway_url, service_address) -> httpx.Client:
    service_address("user")  # fails (in CI) unless the user service is up
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def grpc_gateway(gateway) -> user_service_pb2_grpc.UserServiceStub:
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        yield user_service_pb2_grpc.UserServiceStub(channel)


@pytest.fixture(scope="module")
def grpc_direct(service_address) -> user_service_pb2_grpc.UserServiceStub:
    with grpc.insecure_channel(service_address("user")) as channel:
        yield user_service_pb2_grpc.UserServiceStub(channel)


def _email() -> str:
    return f"e2e-{secrets.token_hex(6)}@example.com"


def register(api: httpx.Client, email: str | None = None, **fields: Any) -> httpx.Response:
    body = {"email": email or _email(), "password": PASSWORD, "display_name": "Ann", **fields}
    return api.post("/v1/users:register", json=body)


def login(api: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return api.post("/v1/auth:login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def signed_in(api: httpx.Client) -> tuple[dict, dict[str, str]]:
    user = register(api).json()
    tokens = login(api, user["email"]).json()
    return user, bearer(tokens["access_token"])


def violations(response: httpx.Response) -> list[str]:
    """The fields named in a google.rpc.Status body's BadRequest details."""
    fields = []
    for detail in response.json().get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            fields += [v["field"] for v in detail["field_violations"]]
    return fields


# --- the happy path -------------------------------------------------------------------------


def test_register_login_and_get_me_over_rest(api):
    email = _email()
    created = register(api, email.upper())
    assert created.status_code == 200, created.text
    assert created.json()["email"] == email
    tokens = login(api, email)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "Bearer"
    me = api.get("/v1/users/me", headers=bearer(tokens.json()["access_token"]))
    assert me.status_code == 200, me.text
    assert (me.json()["id"], me.json()["email"]) == (created.json()["id"], email)


def test_register_login_and_get_me_over_grpc_through_the_gateway(grpc_gateway):
    email = _email()
    user = grpc_gateway.Register(
        user_service_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="Ann")
    )
    tokens = grpc_gateway.Login(user_service_pb2.LoginRequest(email=email, password=PASSWORD))
    me = grpc_gateway.GetMe(
        user_service_pb2.GetMeRequest(),
        metadata=[("authorization", f"Bearer {tokens.access_token}")],
    )
    assert me.id == user.id


def test_the_jwks_is_public_and_lists_the_token_signing_key(api):
    user = register(api).json()
    token = login(api, user["email"]).json()["access_token"]
    jwks = api.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["content-type"].startswith("application/json")
    kids = [key["kid"] for key in jwks.json()["keys"]]
    assert jwt.get_unverified_header(token)["kid"] in kids


# --- failures -------------------------------------------------------------------------------


def test_a_wrong_password_is_401(api):
    user = register(api).json()
    response = login(api, user["email"], "not the password")
    assert response.status_code == 401
    assert response.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]


def test_a_duplicate_email_is_409(api):
    email = _email()
    assert register(api, email).status_code == 200
    again = register(api, email)
    assert again.status_code == 409
    assert again.json()["code"] == grpc.StatusCode.ALREADY_EXISTS.value[0]


def test_of_twenty_racing_registrations_of_one_email_exactly_one_succeeds(api):
    email = _email()
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda _: register(api, email).status_code, range(20)))
    assert sorted(statuses) == [200] + [409] * 19


def _forge(token: str, **claims: Any) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _unsigned(token: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{header}.{token.split('.')[1]}."


def _signed(**overrides: Any) -> str:
    """A token signed with the stack's real key, with the claims the test chooses."""
    keys = key_adapter.load(Settings.from_env().keys)
    now = int(time.time())
    claims = {
        "iss": "emporium-user",
        "aud": "emporium",
        "sub": "7d0c1f5e-0000-4000-8000-00000000000a",
        "iat": now,
        "exp": now + 600,
        "roles": ["customer"],
    }
    claims.update(overrides)
    return keys.sign(claims)


BAD_TOKENS = {
    "tampered": lambda good: _forge(good, roles=["admin"]),
    "expired": lambda good: _signed(exp=int(time.time()) - 120, iat=int(time.time()) - 900),
    "alg-none": _unsigned,
    "wrong-audience": lambda good: _signed(aud="another-app"),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_a_bad_token_is_401_at_the_edge_and_unauthenticated_over_grpc(
    api, grpc_gateway, grpc_direct, kind
):
    _, good = signed_in(api)
    token = BAD_TOKENS[kind](good["authorization"].split()[1])
    assert api.get("/v1/users/me", headers=bearer(token)).status_code == 401
    for stub in (grpc_gateway, grpc_direct):
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetMe(
                user_service_pb2.GetMeRequest(), metadata=[("authorization", f"Bearer {token}")]
            )
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_no_token_on_a_user_route_is_401(api):
    assert api.get("/v1/users/me").status_code == 401


def test_reusing_a_rotated_refresh_token_revokes_the_newest_one_too(api):
    user = register(api).json()
    first = login(api, user["email"]).json()["refresh_token"]
    second = api.post("/v1/auth:refresh", json={"refresh_token": first})
    assert second.status_code == 200, second.text
    newest = second.json()["refresh_token"]
    assert api.post("/v1/auth:refresh", json={"refresh_token": first}).status_code == 401
    assert api.post("/v1/auth:refresh", json={"refresh_token": newest}).status_code == 401


def test_logout_ends_the_session(api):
    user = register(api).json()
    refresh = login(api, user["email"]).json()["refresh_token"]
    assert api.post("/v1/auth:logout", json={"refresh_token": refresh}).status_code == 200
    assert api.post("/v1/auth:refresh", json={"refresh_token": refresh}).status_code == 401


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"email": "no-at-sign"}, ["email"]),
        ({"password": "short"}, ["password"]),
        ({"display_name": "x" * 5000}, ["display_name"]),
        (
            {"email": "a@b", "password": "", "display_name": ""},
            ["email", "password", "display_name"],
        ),
    ],
)
def test_bad_registrations_are_400_naming_the_field_and_create_nothing(api, fields, bad):
    email = fields.pop("email", _email())
    response = register(api, email, **fields)
    assert response.status_code == 400, response.text
    assert violations(response) == bad
    if "@" in email and "." in email.split("@")[1]:
        assert login(api, email).status_code == 401  # nothing was stored


def test_a_body_with_wrong_types_is_400(api):
    response = api.post(
        "/v1/users:register", json={"email": ["x"], "password": 12, "display_name": {}}
    )
    assert response.status_code == 400


def test_an_oversized_body_is_rejected_before_reaching_the_service(api):
    response = api.post(
        "/v1/users:register",
        content=b'{"email": "' + b"a" * (13 * 2**20) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


# --- ownership ------------------------------------------------------------------------------


ADDRESS = {
    "label": "home",
    "postal_address": {
        "region_code": "US",
        "address_lines": ["1 Main St"],
        "recipients": ["Ann"],
        "locality": "Springfield",
    },
}


def test_a_user_cannot_read_or_change_another_users_address(api):
    _, ann = signed_in(api)
    _, bob = signed_in(api)
    created = api.post("/v1/users/me/addresses", json=ADDRESS, headers=ann)
    assert created.status_code == 200, created.text
    path = f"/v1/users/me/addresses/{created.json()['id']}"
    assert api.get(path, headers=bob).status_code == 404
    patched = api.patch(path, params={"update_mask": "label"}, json={"label": "mine"}, headers=bob)
    assert patched.status_code == 404
    assert api.delete(path, headers=bob).status_code == 404
    assert api.get(path, headers=ann).json()["label"] == "home"


def test_profile_and_settings_are_only_ever_the_callers_own(api):
    ann_user, ann = signed_in(api)
    _, bob = signed_in(api)
    renamed = api.patch(
        "/v1/users/me",
        params={"update_mask": "display_name"},
        json={"display_name": "B"},
        headers=bob,
    )
    assert renamed.status_code == 200, renamed.text
    assert api.get("/v1/users/me", headers=ann).json()["display_name"] == "Ann"
    # The only route that takes a user id is for admins.
    assert api.get(f"/v1/users/{ann_user['id']}", headers=bob).status_code == 403
    settings = api.patch(
        "/v1/users/me/settings",
        params={"update_mask": "locale"},
        json={"locale": "de-DE"},
        headers=bob,
    )
    assert settings.status_code == 200, settings.text
    assert api.get("/v1/users/me/settings", headers=ann).json()["locale"] == "en"


def test_the_development_admin_lists_users(api):
    tokens = login(api, "admin@example.com", "emporium-admin-dev")
    assert tokens.status_code == 200, tokens.text
    emails, page_token = [], ""
    while True:
        listed = api.get(
            "/v1/users",
            params={"email_prefix": "admin@", "page_size": 200, "page_token": page_token},
            headers=bearer(tokens.json()["access_token"]),
        )
        assert listed.status_code == 200, listed.text
        emails += [u["email"] for u in listed.json()["users"]]
        page_token = listed.json()["next_page_token"]
        if not page_token:
            break
    assert emails == ["admin@example.com"]


# --- one-time tokens, credentials and administration ------------------------------------------


class EventTap:
    """A throwaway exclusive queue on `emporium.events`, bound to some of the user events
    before the test triggers them: how the tests read the one-time tokens the notification
    service would email."""

    def __init__(self, *events: type[Message]) -> None:
        self.loop = asyncio.new_event_loop()
        self.types = {e.DESCRIPTOR.full_name: e for e in events}
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        self.connection = await aio_pika.connect_robust(RabbitSettings.from_env().url)
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(
            "emporium.events",
            aio_pika.ExchangeType.TOPIC,
            durable=True,
            arguments={"alternate-exchange": "emporium.unrouted"},  # as kit.bus declares it
        )
        self.queue = await channel.declare_queue(
            f"test.e2e.user.{secrets.token_hex(4)}", exclusive=True
        )
        for name in self.types:
            await self.queue.bind(exchange, name)

    def next(self, kind: type[Message], user_id: str, timeout: float = 15, **fields: Any) -> Any:
        """The next event of `kind` about `user_id` with these field values (others are
        dropped)."""

        async def wait() -> Any:
            deadline = self.loop.time() + timeout
            while self.loop.time() < deadline:
                message = await self.queue.get(no_ack=True, fail=False)
                if message is None:
                    await asyncio.sleep(0.1)
                    continue
                if message.type != kind.DESCRIPTOR.full_name:
                    continue
                event = kind.FromString(message.body)
                if event.user_id == user_id and all(
                    getattr(event, k) == v for k, v in fields.items()
                ):
                    return event
            raise AssertionError(f"{kind.DESCRIPTOR.name} for {user_id} never arrived")

        return self.loop.run_until_complete(wait())

    def close(self) -> None:
        self.loop.run_until_complete(self.connection.close())
        self.loop.close()


@pytest.fixture(scope="module")
def events() -> Iterator[EventTap]:
    tap = EventTap(
        user_events_pb2.PasswordResetRequested,
        user_events_pb2.EmailVerificationRequested,
        user_events_pb2.PasswordChanged,
    )
    yield tap
    tap.close()


NEW_PASSWORD = "an entirely new passphrase"


def refuses_password(api: httpx.Client, headers: dict[str, str], password: str) -> bool:
    """Whether `password` is not the account's password, asked without a failed login: every
    e2e request comes from 127.0.0.1, whose failed logins the user service throttles (20 per
    15 minutes), so tests that fail logins on purpose would throttle every later test's."""
    response = api.post(
        "/v1/users/me:changePassword",
        json={"current_password": password, "new_password": "never set by this check"},
        headers=headers,
    )
    return response.status_code == 400 and violations(response) == ["current_password"]


def test_the_password_reset_flow_over_rest(api, events):
    user = register(api).json()
    old_session = login(api, user["email"]).json()["refresh_token"]
    requested = api.post("/v1/auth:requestPasswordReset", json={"email": user["email"].upper()})
    assert requested.status_code == 200, requested.text
    assert requested.json() == {}
    token = events.next(user_events_pb2.PasswordResetRequested, user["id"]).token

    reset = api.post("/v1/auth:resetPassword", json={"token": token, "new_password": NEW_PASSWORD})
    assert reset.status_code == 200, reset.text
    session = login(api, user["email"], NEW_PASSWORD)
    assert session.status_code == 200, session.text
    assert refuses_password(api, bearer(session.json()["access_token"]), PASSWORD)
    assert api.post("/v1/auth:refresh", json={"refresh_token": old_session}).status_code == 401
    assert events.next(user_events_pb2.PasswordChanged, user["id"]).email == user["email"]

    again = api.post("/v1/auth:resetPassword", json={"token": token, "new_password": PASSWORD})
    assert again.status_code == 400
    assert violations(again) == ["token"]


def test_a_reset_request_for_an_unknown_email_looks_the_same(api):
    response = api.post("/v1/auth:requestPasswordReset", json={"email": _email()})
    assert response.status_code == 200, response.text
    assert response.json() == {}
    bad = api.post("/v1/auth:requestPasswordReset", json={"email": "not-an-email"})
    assert (bad.status_code, violations(bad)) == (400, ["email"])


def test_the_registration_verification_link_verifies_the_email(api, events):
    user = register(api).json()
    assert user.get("email_verified", False) is False
    token = events.next(user_events_pb2.EmailVerificationRequested, user["id"]).token
    verified = api.post("/v1/auth:verifyEmail", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email"] == user["email"]
    session = login(api, user["email"]).json()
    me = api.get("/v1/users/me", headers=bearer(session["access_token"])).json()
    assert me["email_verified"] is True
    assert api.post("/v1/auth:verifyEmail", json={"token": token}).status_code == 400


def test_change_password_signs_out_other_sessions_and_returns_new_tokens(api):
    user = register(api).json()
    first = login(api, user["email"]).json()
    other_device = login(api, user["email"]).json()["refresh_token"]
    wrong = api.post(
        "/v1/users/me:changePassword",
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=bearer(first["access_token"]),
    )
    assert (wrong.status_code, violations(wrong)) == (400, ["current_password"])
    changed = api.post(
        "/v1/users/me:changePassword",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(first["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    tokens = changed.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["user"]["id"] == user["id"]
    assert api.post("/v1/auth:refresh", json={"refresh_token": other_device}).status_code == 401
    refreshed = api.post("/v1/auth:refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert refuses_password(api, bearer(tokens["access_token"]), PASSWORD)
    assert login(api, user["email"], NEW_PASSWORD).status_code == 200


def test_change_password_needs_a_token_at_the_edge(api):
    response = api.post(
        "/v1/users/me:changePassword",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 401


def _admin(api: httpx.Client) -> dict[str, str]:
    tokens = login(api, "admin@example.com", "emporium-admin-dev")
    assert tokens.status_code == 200, tokens.text
    return bearer(tokens.json()["access_token"])


def test_a_disabled_user_gets_403_at_login_until_enabled_again(api):
    admin = _admin(api)
    user = register(api).json()
    session = login(api, user["email"]).json()
    disabled = api.post(
        f"/v1/users/{user['id']}:disable", json={"reason": "e2e test"}, headers=admin
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["state"] == "STATE_DISABLED"
    denied = login(api, user["email"])
    assert denied.status_code == 403
    assert denied.json()["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    refresh = api.post("/v1/auth:refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401

    enabled = api.post(f"/v1/users/{user['id']}:enable", json={}, headers=admin)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["state"] == "STATE_ACTIVE"
    assert login(api, user["email"]).status_code == 200


def test_admins_cannot_disable_themselves_and_customers_cannot_disable_anyone(api):
    admin = _admin(api)
    me = api.get("/v1/users/me", headers=admin).json()
    own = api.post(f"/v1/users/{me['id']}:disable", json={}, headers=admin)
    assert own.status_code == 400, own.text
    assert own.json()["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    _, customer = signed_in(api)
    forbidden = api.post(f"/v1/users/{me['id']}:disable", json={}, headers=customer)
    assert forbidden.status_code == 403
    assert login(api, "admin@example.com", "emporium-admin-dev").status_code == 200


def test_set_user_roles_grants_admin_at_the_next_refresh(api):
    admin = _admin(api)
    user = register(api).json()
    session = login(api, user["email"]).json()
    granted = api.post(
        f"/v1/users/{user['id']}:setRoles", json={"roles": ["ROLE_ADMIN"]}, headers=admin
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["roles"] == ["ROLE_CUSTOMER", "ROLE_ADMIN"]
    refreshed = api.post("/v1/auth:refresh", json={"refresh_token": session["refresh_token"]})
    claims = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["admin", "customer"]
    bad = api.post(
        f"/v1/users/{user['id']}:setRoles", json={"roles": ["ROLE_UNSPECIFIED"]}, headers=admin
    )
    assert (bad.status_code, violations(bad)) == (400, ["roles"])


def test_change_email_moves_the_sign_in_and_the_new_address_verifies(api, events):
    user, token = signed_in(api)
    new_email = _email()
    wrong = api.post(
        "/v1/users/me:changeEmail",
        json={"new_email": new_email, "current_password": "not the password"},
        headers=token,
    )
    assert (wrong.status_code, violations(wrong)) == (400, ["current_password"])
    changed = api.post(
        "/v1/users/me:changeEmail",
        json={"new_email": new_email.upper(), "current_password": PASSWORD},
        headers=token,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == new_email
    assert changed.json().get("email_verified", False) is False
    assert api.get("/v1/users/me", headers=token).json()["email"] == new_email
    assert login(api, new_email).status_code == 200
    verification = events.next(
        user_events_pb2.EmailVerificationRequested, user["id"], email=new_email
    )
    verified = api.post("/v1/auth:verifyEmail", json={"token": verification.token})
    assert (verified.status_code, verified.json()["email"]) == (200, new_email)
    # The old address is free again; the new one is taken.
    assert register(api, user["email"]).status_code == 200
    _, other = signed_in(api)
    taken = api.post(
        "/v1/users/me:changeEmail",
        json={"new_email": new_email, "current_password": PASSWORD},
        headers=other,
    )
    assert taken.status_code == 409
