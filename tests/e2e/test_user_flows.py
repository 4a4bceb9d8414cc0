"""Accounts and tokens end to end: REST and gRPC through Envoy to the user service on Cassandra.

Bad tokens are minted with the stack's own signing key (the development key the user service
keeps under $EMPORIUM_VAR), so an expired or wrong-audience token is otherwise perfectly signed.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import jwt
import pytest
from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

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
