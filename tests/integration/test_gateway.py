"""The gateway: real Envoy, configured by gateway/render.py, in front of fake Emporium services.

The fakes are grpc.aio servers (generated servicers with canned answers) running on an event loop
in a background thread, so the tests can call Envoy with blocking HTTP and gRPC clients. The fake
user service publishes the JWK Set of a key the tests sign their access tokens with.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.access.v1 import access_pb2
from emporium.catalog.v1 import catalog_service_pb2_grpc, product_pb2
from emporium.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from emporium.user.v1 import auth_tokens_pb2, user_pb2, user_service_pb2, user_service_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from google.type import money_pb2
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status
from jwt.algorithms import ECAlgorithm

from gateway import render
from kit.config import AuthSettings

ME = "7d0c1f5e-0000-4000-8000-00000000000a"
OTHER_USER = "5b7e3a52-9d1c-4c8e-8f0e-2f6f1c3b4a10"
CREATED = timestamp_pb2.Timestamp(seconds=1_767_225_600)  # 2026-01-01T00:00:00Z
MIB = 2**20


# --- access tokens --------------------------------------------------------------------------

# The user service's signing key, as the tests have it: ES256 (P-256) with a key id.
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
KID = "test-key-1"
JWKS = {
    "keys": [
        {
            **ECAlgorithm.to_jwk(SIGNING_KEY.public_key(), as_dict=True),
            "kid": KID,
            "alg": "ES256",
            "use": "sig",
        }
    ]
}


def mint(key: ec.EllipticCurvePrivateKey = SIGNING_KEY, kid: str = KID, **claims: Any) -> str:
    """An access token as the user service issues it; claims override the defaults."""
    now = int(time.time())
    defaults = {
        "iss": AuthSettings.issuer,
        "aud": AuthSettings.audience,
        "sub": ME,
        "roles": ["customer"],
        "iat": now,
        "exp": now + 900,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode({**defaults, **claims}, key, "ES256", headers={"kid": kid})


TOKEN = mint()


def bearer(token: str = TOKEN) -> dict[str, str]:
    """The HTTP header that carries an access token."""
    return {"Authorization": f"Bearer {token}"}


def grpc_bearer(token: str = TOKEN) -> list[tuple[str, str]]:
    """The same as gRPC call metadata."""
    return [("authorization", f"Bearer {token}")]


# --- fake services --------------------------------------------------------------------------


@dataclass
class Calls:
    """What the fake servicers received, as (RPC name, request, metadata) in arrival order."""

    seen: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)

    def record(self, rpc: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.seen.append((rpc, request, metadata))

    def last(self, rpc: str) -> Any:
        return next(r for name, r, _ in reversed(self.seen) if name == rpc)

    def last_metadata(self, rpc: str) -> dict[str, str]:
        return next(m for name, _, m in reversed(self.seen) if name == rpc)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.seen]


async def _abort_invalid(context: grpc.aio.ServicerContext, field_name: str, why: str) -> None:
    """INVALID_ARGUMENT with a google.rpc.BadRequest naming the field, as the services will."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=field_name, description=why)
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=f"{field_name}: {why}", details=[detail]
    )
    await context.abort_with_status(rpc_status.to_status(status))


def _user(user_id: str, email: str, display_name: str = "") -> user_pb2.User:
    return user_pb2.User(
        id=user_id,
        email=email,
        display_name=display_name,
        roles=[user_pb2.User.ROLE_CUSTOMER],
        state=user_pb2.User.STATE_ACTIVE,
        create_time=CREATED,
    )


class FakeUserService(user_service_pb2_grpc.UserServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def Register(self, request, context):
        self.calls.record("Register", request, context)
        if not request.email:
            await _abort_invalid(context, "email", "must not be empty")
        return _user(OTHER_USER, request.email, request.display_name)

    async def GetMe(self, request, context):
        self.calls.record("GetMe", request, context)
        return _user(ME, "me@example.com", "Me")

    async def GetUser(self, request, context):
        self.calls.record("GetUser", request, context)
        return _user(request.id, "someone@example.com")

    async def Login(self, request, context):
        self.calls.record("Login", request, context)
        return auth_tokens_pb2.AuthTokens(access_token=TOKEN, token_type="Bearer")

    async def GetJwks(self, request, context):
        self.calls.record("GetJwks", request, context)
        return httpbody_pb2.HttpBody(
            content_type="application/json", data=json.dumps(JWKS).encode()
        )


def _add_user_service(servicer: FakeUserService, server: grpc.aio.Server) -> None:
    """The user service with reflection, as the gateway's reflection_service."""
    user_service_pb2_grpc.add_UserServiceServicer_to_server(servicer, server)
    name = user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
    reflection.enable_server_reflection([name, reflection.SERVICE_NAME], server)


def _money(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units, nanos=nanos)


def _order(order_id: str, state: int = order_pb2.Order.STATE_PAID) -> order_pb2.Order:
    return order_pb2.Order(
        id=order_id,
        user_id=ME,
        state=state,
        line_items=[
            order_pb2.LineItem(
                product_id="p-1",
                sku="SHIRT-RED-M",
                title="Red shirt",
                quantity=2,
                unit_price=_money(19, 990_000_000),
                total=_money(39, 980_000_000),
            )
        ],
        total=_money(39, 980_000_000),
        create_time=CREATED,
    )


class FakeOrderService(order_service_pb2_grpc.OrderServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        # Set by a test once it has read the first streamed update.
        self.first_update_read = threading.Event()

    async def GetOrder(self, request, context):
        self.calls.record("GetOrder", request, context)
        if request.id == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "order missing does not exist")
        return _order(request.id)

    async def CancelOrder(self, request, context):
        self.calls.record("CancelOrder", request, context)
        return _order(request.id, order_pb2.Order.STATE_CANCELLED)

    async def WatchOrder(self, request, context):
        self.calls.record("WatchOrder", request, context)
        yield order_service_pb2.WatchOrderResponse(order=_order(request.id))
        # The second update is sent only after the client has read the first: proof that the
        # gateway streams each message as it comes instead of buffering the whole response.
        await asyncio.to_thread(self.first_update_read.wait, 5)
        for state in (order_pb2.Order.STATE_SHIPPED, order_pb2.Order.STATE_DELIVERED):
            yield order_service_pb2.WatchOrderResponse(order=_order(request.id, state))


class FakeCatalogService(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def UploadProductImage(self, request, context):
        self.calls.record("UploadProductImage", request, context)
        return product_pb2.ProductImage(
            id="img-1",
            product_id=request.product_id,
            content_type=request.file.content_type,
            size_bytes=len(request.file.data),
            alt_text=request.alt_text,
        )

    async def GetProductImage(self, request, context):
        self.calls.record("GetProductImage", request, context)
        return httpbody_pb2.HttpBody(content_type="image/png", data=IMAGE)


IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (5 * MIB // 256)  # 5 MiB: above 1 MiB buffers


class Upstreams:
    """grpc.aio servers on an event loop of their own thread; stopped by close()."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[grpc.aio.Server] = []

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def serve(self, register: Callable[[grpc.aio.Server], None]) -> int:
        """Starts a server on a free loopback port with what register adds; returns the port."""

        async def start() -> int:
            # Images are up to 10 MiB; grpcio's default receive limit is 4 MiB.
            server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 * MIB)])
            register(server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            self.servers.append(server)
            return port

        return self._run(start())

    def close(self) -> None:
        for server in self.servers:
            self._run(server.stop(grace=None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


# --- Envoy ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gateway:
    """A running Envoy: its URL, its access log (stdout) and what the fakes received."""

    url: str
    grpc_target: str
    access_log: Path
    calls: Calls
    orders: FakeOrderService
    config: render.Gateway


def _wait_ready(process: subprocess.Popen, admin_port: int, stderr: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Envoy exited with {process.returncode}:\n{stderr.read_text()}")
        try:
            with _opener.open(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"Envoy was not ready within 30 s:\n{stderr.read_text()}")


def _wait_for_jwks(admin_port: int, stderr: Path) -> None:
    """Envoy fetches the JWK Set in the background after start; tokens fail until it has it."""
    url = f"http://127.0.0.1:{admin_port}/stats?filter=jwks_fetch_success$&format=json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with _opener.open(url, timeout=1) as r:
            stats = json.loads(r.read())["stats"]
        if any(stat["value"] > 0 for stat in stats):
            return
        time.sleep(0.05)
    pytest.fail(f"Envoy did not fetch the JWK Set within 30 s:\n{stderr.read_text()}")


# Credential RPCs get a small bucket here, so a test can drain one quickly; the tests call
# Register only a few times, Login only to drain it.
TEST_CREDENTIAL_BUCKET = render.Bucket(requests_per_second=1, burst=20)
# Each user's writes, small too; the tests that drain it sign as users of their own.
TEST_USER_WRITE_BUCKET = render.Bucket(requests_per_second=1, burst=10)


@contextlib.contextmanager
def _envoy(
    folder: Path, ports: dict[str, int], credentials: render.Bucket | None = None
) -> Iterator[tuple[render.Gateway, int, int, Path, Path]]:
    """Envoy on free ports in front of the services on `ports` (the others: nothing there).

    Yields the settings it was rendered from, its port and admin port, its stdout (the access
    log) and stderr; stops it on exit.
    """
    port, admin_port = _free_port(), _free_port()
    environ = {
        **os.environ,
        "EMPORIUM_GATEWAY_PORT": str(port),
        "EMPORIUM_GATEWAY_ADMIN_PORT": str(admin_port),
        # Production's access log keeps failed and slow requests only (and a share of the rest).
        "EMPORIUM_ACCESS_LOG_SAMPLE": "0",
        # Services without a fake get a free port with nothing behind it.
        **{
            f"EMPORIUM_{s.name.upper()}_GRPC_PORT": str(ports.get(s.name) or _free_port())
            for s in render.load(environ={}).services
        },
    }
    settings = render.load(environ=environ)
    if credentials is not None:
        settings = replace(
            settings,
            rate_limits=replace(
                settings.rate_limits, credentials=credentials, user_writes=TEST_USER_WRITE_BUCKET
            ),
        )
    try:
        config = render.write(settings, folder / "envoy.yaml", environ)
    except render.MissingSwaggerUI as error:
        pytest.fail(str(error), pytrace=False)
    stdout, stderr = folder / "stdout.log", folder / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        command = [*render.envoy_command(config), "--concurrency", "1"]
        process = subprocess.Popen(command, stdout=out, stderr=err)
    try:
        _wait_ready(process, admin_port, stderr)
        yield settings, port, admin_port, stdout, stderr
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    calls = Calls()
    orders = FakeOrderService(calls)
    upstreams = Upstreams()
    try:
        ports = {
            "user": upstreams.serve(lambda s: _add_user_service(FakeUserService(calls), s)),
            "order": upstreams.serve(
                lambda s: order_service_pb2_grpc.add_OrderServiceServicer_to_server(orders, s)
            ),
            "catalog": upstreams.serve(
                lambda s: catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(
                    FakeCatalogService(calls), s
                )
            ),
        }
        folder = tmp_path_factory.mktemp("gateway")
        with _envoy(folder, ports, TEST_CREDENTIAL_BUCKET) as envoy:
            settings, port, admin_port, stdout, stderr = envoy
            _wait_for_jwks(admin_port, stderr)
            url, target = f"http://127.0.0.1:{port}", f"127.0.0.1:{port}"
            yield Gateway(url, target, stdout, calls, orders, settings)
    finally:
        upstreams.close()


# --- HTTP client ----------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy from the environment, no redirect following: the tests look at Envoy's own answers.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Response:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=10) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def post_json(
    url: str, document: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(document).encode()
    return http("POST", url, body, {"Content-Type": "application/json", **(headers or {})})


# --- REST through the transcoder ------------------------------------------------------------


def test_rest_get_order_returns_the_servicers_order_as_snake_case_json(gateway):
    response = http("GET", f"{gateway.url}/v1/orders/o-42", headers=bearer())

    assert response.status == 200, response.body
    assert response.headers["content-type"] == "application/json"
    order = response.json()
    assert order["id"] == "o-42"
    assert order["state"] == "STATE_PAID"
    assert order["create_time"] == "2026-01-01T00:00:00Z"
    assert order["line_items"] == [
        {
            "product_id": "p-1",
            "sku": "SHIRT-RED-M",
            "title": "Red shirt",
            "quantity": 2,
            "unit_price": {"currency_code": "EUR", "units": "19", "nanos": 990000000},
            "total": {"currency_code": "EUR", "units": "39", "nanos": 980000000},
        }
    ]
    # Primitive fields at their default value are printed, not dropped.
    assert order["payment_id"] == ""
    assert gateway.calls.last("GetOrder").id == "o-42"


def test_rest_register_decodes_the_json_body_into_the_request(gateway):
    response = post_json(
        f"{gateway.url}/v1/users:register",
        {
            "email": "ada@example.com",
            "password": "correct horse battery staple",
            "display_name": "Ada",
            "marketing_consent": True,
        },
    )

    assert response.status == 200, response.body
    assert response.json()["display_name"] == "Ada"
    request = gateway.calls.last("Register")
    assert request.email == "ada@example.com"
    assert request.password == "correct horse battery staple"
    assert request.display_name == "Ada"
    assert request.marketing_consent is True


def test_not_found_from_a_service_is_http_404_with_a_status_body(gateway):
    response = http("GET", f"{gateway.url}/v1/orders/missing", headers=bearer())

    assert response.status == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": 5, "message": "order missing does not exist", "details": []}


def test_invalid_argument_is_http_400_naming_the_field_in_its_bad_request(gateway):
    response = post_json(f"{gateway.url}/v1/users:register", {"password": "x"})

    assert response.status == 400
    status = response.json()
    assert status["code"] == 3
    (detail,) = status["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    (violation,) = detail["field_violations"]
    assert (violation["field"], violation["description"]) == ("email", "must not be empty")


def test_users_me_reaches_get_me_and_a_user_id_reaches_get_user(gateway):
    # /v1/users/me also fits GetUser's /v1/users/{id}: the literal binding must win.
    before = len(gateway.calls.seen)
    me = http("GET", f"{gateway.url}/v1/users/me", headers=bearer())
    between = len(gateway.calls.seen)
    other = http("GET", f"{gateway.url}/v1/users/{OTHER_USER}", headers=bearer())

    assert me.status == 200, me.body
    assert me.json()["id"] == ME
    assert gateway.calls.names()[before:between] == ["GetMe"]
    assert other.status == 200, other.body
    assert other.json()["id"] == OTHER_USER
    assert gateway.calls.names()[between:] == ["GetUser"]
    assert gateway.calls.last("GetUser").id == OTHER_USER


def test_watch_order_streams_newline_delimited_json_as_updates_come(gateway):
    request = urllib.request.Request(f"{gateway.url}/v1/orders/o-7:watch", headers=bearer())
    with _opener.open(request, timeout=10) as stream:
        first = json.loads(stream.readline())
        gateway.orders.first_update_read.set()
        rest = [json.loads(line) for line in stream.read().splitlines() if line.strip()]

    states = [update["order"]["state"] for update in [first, *rest]]
    assert states == ["STATE_PAID", "STATE_SHIPPED", "STATE_DELIVERED"]
    assert first["order"]["id"] == "o-7"


def test_an_unknown_query_parameter_is_rejected_with_400(gateway):
    response = http("GET", f"{gateway.url}/v1/orders/o-1?colour=red", headers=bearer())

    assert response.status == 400


def test_a_path_no_rpc_binds_is_404(gateway):
    response = http("GET", f"{gateway.url}/v1/nothing-here")

    assert response.status == 404


def test_a_ten_mib_image_upload_reaches_the_catalog_and_a_larger_body_is_413(gateway):
    image = b"\x89PNG\r\n\x1a\n" + bytes(10 * MIB - 8)
    url = f"{gateway.url}/v1/products/p-1/images?alt_text=Red+shirt"

    headers = {"Content-Type": "image/png", **bearer()}
    accepted = http("POST", url, image, headers)
    too_big = http("POST", url, image + bytes(2 * MIB + 1), headers)

    assert accepted.status == 200, accepted.body[:300]
    stored = accepted.json()
    assert stored["size_bytes"] == str(len(image))
    assert stored["content_type"] == "image/png"
    assert stored["alt_text"] == "Red shirt"
    assert too_big.status == 413


def test_an_image_larger_than_envoys_buffers_downloads_with_its_media_type(gateway):
    response = http("GET", f"{gateway.url}/v1/products/p-1/images/img-1")

    assert response.status == 200, response.body[:300]
    assert response.headers["content-type"] == "image/png"
    assert response.body == IMAGE


def test_a_cors_preflight_from_any_origin_is_allowed(gateway):
    response = http(
        "OPTIONS",
        f"{gateway.url}/v1/orders",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert response.status == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]


# --- native gRPC ----------------------------------------------------------------------------


def test_a_native_grpc_call_through_the_gateway_reaches_the_service(gateway):
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        order = stub.GetOrder(
            order_service_pb2.GetOrderRequest(id="o-9"), timeout=5, metadata=grpc_bearer()
        )
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetOrder(
                order_service_pb2.GetOrderRequest(id="missing"), timeout=5, metadata=grpc_bearer()
            )

    assert order == _order("o-9")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_native_grpc_error_details_pass_through_the_gateway(gateway):
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Register(user_service_pb2.RegisterRequest(password="x"), timeout=5)

    status = rpc_status.from_call(error.value)
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "email"


def test_a_server_stream_works_over_native_grpc_through_the_gateway(gateway):
    gateway.orders.first_update_read.set()
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        request = order_service_pb2.WatchOrderRequest(id="o-3")
        updates = list(stub.WatchOrder(request, timeout=5, metadata=grpc_bearer()))

    assert [u.order.state for u in updates] == [
        order_pb2.Order.STATE_PAID,
        order_pb2.Order.STATE_SHIPPED,
        order_pb2.Order.STATE_DELIVERED,
    ]


def test_grpc_reflection_through_the_gateway_is_answered_by_the_user_service(gateway):
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()

    assert "emporium.user.v1.UserService" in services


def test_a_grpc_call_to_an_unknown_service_is_unimplemented(gateway):
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        call = channel.unary_unary("/emporium.nothing.v1.NothingService/Get")
        with pytest.raises(grpc.RpcError) as error:
            # Everything under /emporium. needs a token, known to the gateway or not.
            call(b"", timeout=5, metadata=grpc_bearer())

    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- access tokens at the edge --------------------------------------------------------------

OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tampered() -> str:
    """A valid token whose payload names another user, the signature left as it was."""
    header, payload, signature = mint().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([header, _b64(json.dumps({**claims, "sub": OTHER_USER}).encode()), signature])


def _unsigned() -> str:
    """`alg: none`: claims that are otherwise valid, with no signature at all."""
    header = _b64(json.dumps({"alg": "none", "kid": KID, "typ": "JWT"}).encode())
    claims = jwt.decode(mint(), options={"verify_signature": False})
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _hmac_with_the_public_key() -> str:
    """The algorithm-confusion forgery: HS256 keyed with the published public key."""
    header = _b64(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"}).encode())
    claims = jwt.decode(mint(), options={"verify_signature": False})
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    public_pem = SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _without_expiry() -> str:
    claims = jwt.decode(mint(), options={"verify_signature": False})
    del claims["exp"]
    return jwt.encode(claims, SIGNING_KEY, "ES256", headers={"kid": KID})


NOW = int(time.time())
UNKNOWN_KEY = "Jwks doesn't have key to match kid or alg from Jwt"
FORM = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
# Each way a token can be wrong, and Envoy's reason (the message clients get): the gateway
# refuses all of them before any service sees them.
BAD_TOKENS = {
    "missing": (None, "Jwt is missing"),
    "tampered": (_tampered(), "Jwt verification fails"),
    "expired": (mint(iat=NOW - 960, exp=NOW - 60), "Jwt is expired"),
    "not yet valid": (mint(nbf=NOW + 3600), "Jwt not yet valid"),
    "unsigned with alg none": (_unsigned(), FORM),
    "for another audience": (mint(aud="another-platform"), "Audiences in Jwt are not allowed"),
    "from another issuer": (mint(iss="someone-else"), "Jwt issuer is not configured"),
    "signed by another key under the known kid": (mint(key=OTHER_KEY), "Jwt verification fails"),
    "signed by a key the jwks does not list": (mint(key=OTHER_KEY, kid="new-key"), UNKNOWN_KEY),
    "hs256 keyed with the public key": (_hmac_with_the_public_key(), UNKNOWN_KEY),
    "without an expiry": (_without_expiry(), "Jwt verification fails"),
    "garbage": ("not-a-jwt", FORM),
}


def _headers(token: str | None) -> dict[str, str]:
    return {} if token is None else bearer(token)


def _metadata(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else grpc_bearer(token)


def test_a_valid_token_reaches_a_non_public_rpc_over_rest_with_the_header_forwarded(gateway):
    response = http("GET", f"{gateway.url}/v1/users/me", headers=bearer())

    assert response.status == 200, response.body
    assert response.json()["id"] == ME
    # Forwarded unchanged: the service verifies the token again itself (kit/auth.py).
    assert gateway.calls.last_metadata("GetMe")["authorization"] == f"Bearer {TOKEN}"


def test_a_valid_token_reaches_a_non_public_rpc_over_native_grpc_with_the_header_forwarded(
    gateway,
):
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        user = stub.GetMe(user_service_pb2.GetMeRequest(), timeout=5, metadata=grpc_bearer())

    assert user.id == ME
    assert gateway.calls.last_metadata("GetMe")["authorization"] == f"Bearer {TOKEN}"


def test_the_bearer_scheme_is_accepted_in_lower_case_too(gateway):
    response = http(
        "GET", f"{gateway.url}/v1/users/me", headers={"Authorization": f"bearer {TOKEN}"}
    )

    assert response.status == 200, response.body


@pytest.mark.parametrize(("token", "reason"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_non_public_rest_call_is_refused_with_401_when_the_token_is(gateway, token, reason):
    before = len(gateway.calls.seen)
    response = http("GET", f"{gateway.url}/v1/orders/o-1", headers=_headers(token))

    assert response.status == 401, response.body
    # The same google.rpc.Status body as a service's UNAUTHENTICATED, Envoy's reason as message.
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "code": code_pb2.UNAUTHENTICATED,
        "message": reason,
        "details": [],
    }
    assert response.headers["www-authenticate"].startswith("Bearer realm=")
    assert len(gateway.calls.seen) == before  # no service was called


@pytest.mark.parametrize(("token", "reason"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_non_public_grpc_call_is_unauthenticated_when_the_token_is(gateway, token, reason):
    before = len(gateway.calls.seen)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.GetOrder(
                order_service_pb2.GetOrderRequest(id="o-1"), timeout=5, metadata=_metadata(token)
            )

    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.value.details() == reason
    assert len(gateway.calls.seen) == before


def test_the_401_carries_cors_headers_so_a_browser_can_read_it(gateway):
    response = http(
        "GET", f"{gateway.url}/v1/orders/o-1", headers={"Origin": "https://shop.example"}
    )

    assert response.status == 401
    assert response.headers["access-control-allow-origin"] == "https://shop.example"


def test_public_rpcs_work_without_a_token_over_rest_and_grpc(gateway):
    registered = post_json(
        f"{gateway.url}/v1/users:register", {"email": "bo@example.com", "password": "pw"}
    )
    jwks = http("GET", f"{gateway.url}/.well-known/jwks.json")
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        over_grpc = stub.Register(
            user_service_pb2.RegisterRequest(email="cy@example.com", password="pw"), timeout=5
        )

    assert registered.status == 200, registered.body
    assert registered.json()["email"] == "bo@example.com"
    assert jwks.status == 200, jwks.body
    assert jwks.headers["content-type"] == "application/json"
    assert jwks.json() == JWKS
    assert over_grpc.email == "cy@example.com"


def test_a_public_rpc_refuses_a_bad_token_rather_than_ignoring_it(gateway):
    bad = bearer(BAD_TOKENS["expired"][0])
    over_rest = post_json(f"{gateway.url}/v1/users:register", {"email": "x@example.com"}, bad)
    garbage = http("GET", f"{gateway.url}/.well-known/jwks.json", headers=bearer("garbage"))
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        with pytest.raises(grpc.RpcError) as over_grpc:
            stub.Register(
                user_service_pb2.RegisterRequest(email="x@example.com"),
                timeout=5,
                metadata=grpc_bearer("garbage"),
            )

    assert over_rest.status == 401
    assert over_rest.json()["code"] == code_pb2.UNAUTHENTICATED
    assert garbage.status == 401
    assert over_grpc.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_public_rpc_passes_a_valid_token_on_to_the_service(gateway):
    response = post_json(f"{gateway.url}/v1/users:register", {"email": "dee@example.com"}, bearer())

    assert response.status == 200, response.body
    assert gateway.calls.last_metadata("Register")["authorization"] == f"Bearer {TOKEN}"


def test_the_gateways_own_routes_need_no_token(gateway):
    for path in ("/healthz", "/docs/", "/openapi.yaml", "/openapi.json"):
        assert http("GET", f"{gateway.url}{path}").status == 200, path
    assert http("GET", f"{gateway.url}/docs").status == 301


def test_services_get_the_client_address_in_x_forwarded_for_not_what_the_client_sent(gateway):
    spoofed = {"X-Forwarded-For": "203.0.113.9", **bearer()}
    http("GET", f"{gateway.url}/v1/users/me", headers=spoofed)
    rest = gateway.calls.last_metadata("GetMe")["x-forwarded-for"]
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        metadata = [("x-forwarded-for", "203.0.113.9"), *grpc_bearer()]
        stub.GetMe(user_service_pb2.GetMeRequest(), timeout=5, metadata=metadata)
    native = gateway.calls.last_metadata("GetMe")["x-forwarded-for"]

    assert (rest, native) == ("127.0.0.1", "127.0.0.1")


def test_the_gateway_starts_and_serves_while_the_user_service_is_down(tmp_path):
    # No service at all behind it: the JWK Set cannot be fetched.
    with _envoy(tmp_path, ports={}) as (_, port, _, _, _):
        url = f"http://127.0.0.1:{port}"
        health = http("GET", f"{url}/healthz")
        docs = http("GET", f"{url}/docs/")
        with_token = http("GET", f"{url}/v1/orders/o-1", headers=bearer())
        public = post_json(f"{url}/v1/users:register", {"email": "f@example.com"})

    assert (health.status, docs.status) == (200, 200)
    # A token cannot be checked without the keys: refused, saying why.
    assert with_token.status == 401
    assert with_token.json()["message"] == "Jwks remote fetch is failed"
    # A public RPC without a token goes on to its service (here: not there).
    assert public.status == 503


# --- rate limits ----------------------------------------------------------------------------


def test_a_credential_rpc_answers_429_after_its_burst_and_other_rpcs_still_pass(gateway):
    burst = TEST_CREDENTIAL_BUCKET.burst
    url = f"{gateway.url}/v1/auth:login"
    started = time.monotonic()
    responses = [post_json(url, {"email": "e@example.com", "password": "pw"})]
    while responses[-1].status == 200 and len(responses) < 10 * burst:
        responses.append(post_json(url, {"email": "e@example.com", "password": "pw"}))
    elapsed = time.monotonic() - started
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        with pytest.raises(grpc.RpcError) as over_grpc:
            stub.Login(user_service_pb2.LoginRequest(email="e@example.com"), timeout=5)
    other = http("GET", f"{gateway.url}/v1/orders/o-1", headers=bearer())

    limited = responses[-1]
    assert limited.status == 429, [r.status for r in responses]
    # The burst passes, plus what the bucket refilled meanwhile (1 token/s here).
    assert (
        burst
        <= len(responses) - 1
        <= burst + elapsed * TEST_CREDENTIAL_BUCKET.requests_per_second + 1
    )
    assert limited.headers["content-type"] == "application/json"
    assert limited.json()["code"] == code_pb2.RESOURCE_EXHAUSTED
    assert limited.headers["x-ratelimit-limit"] == str(burst)
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert "x-ratelimit-reset" in limited.headers
    assert limited.headers["retry-after"] == "1"
    assert over_grpc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Every other RPC draws on the default bucket (services.yaml: 2000), which is far from empty.
    assert other.status == 200
    assert other.headers["x-ratelimit-limit"] == str(gateway.config.rate_limits.default.burst)


def _login_from(gateway, source: str) -> Response:
    """POST /v1/auth:login over a connection from `source` (an address on 127.0.0.0/8)."""
    import http.client

    connection = http.client.HTTPConnection(
        "127.0.0.1", gateway.config.port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request(
            "POST",
            "/v1/auth:login",
            json.dumps({"email": "e@example.com", "password": "pw"}),
            {"Content-Type": "application/json"},
        )
        reply = connection.getresponse()
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        connection.close()


def test_one_client_flooding_login_gets_429_while_another_client_still_signs_in(gateway):
    burst = TEST_CREDENTIAL_BUCKET.burst
    flood = [_login_from(gateway, "127.0.0.2")]
    while flood[-1].status == 200 and len(flood) < 10 * burst:
        flood.append(_login_from(gateway, "127.0.0.2"))
    other = _login_from(gateway, "127.0.0.3")

    assert flood[-1].status == 429, [r.status for r in flood]
    assert flood[-1].headers["retry-after"] == "1"
    assert other.status == 200, other.body[:300]
    assert _login_from(gateway, "127.0.0.3").status == 200


def _cancel_as(gateway, user: str) -> Response:
    """POST /v1/orders/o-1:cancel (a write) with a token whose subject is `user`."""
    return post_json(f"{gateway.url}/v1/orders/o-1:cancel", {}, bearer(mint(sub=user)))


def test_one_user_flooding_writes_gets_429_while_another_user_still_writes(gateway):
    flooder, other = str(uuid.uuid4()), str(uuid.uuid4())
    burst = TEST_USER_WRITE_BUCKET.burst
    flood = [_cancel_as(gateway, flooder)]
    while flood[-1].status == 200 and len(flood) < 10 * burst:
        flood.append(_cancel_as(gateway, flooder))
    # The same user's reads and another user's writes are not limited by the flood.
    read = http("GET", f"{gateway.url}/v1/orders/o-1", headers=bearer(mint(sub=flooder)))
    others = [_cancel_as(gateway, other) for _ in range(3)]
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as over_grpc:
            stub.CancelOrder(
                order_service_pb2.CancelOrderRequest(id="o-1"),
                metadata=grpc_bearer(mint(sub=flooder)),
                timeout=5,
            )

    limited = flood[-1]
    assert limited.status == 429, [r.status for r in flood]
    assert burst <= len(flood) - 1 <= 2 * burst
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["content-type"] == "application/json"
    assert limited.json()["code"] == code_pb2.RESOURCE_EXHAUSTED
    assert over_grpc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert read.status == 200
    assert [r.status for r in others] == [200, 200, 200]


def test_the_write_rpcs_are_those_not_bound_to_get(descriptor_set):
    writes = render.write_rpcs(render.load(environ={}))

    assert "/emporium.order.v1.OrderService/CancelOrder" in writes
    assert "/emporium.user.v1.UserService/UpdateMe" in writes
    assert "/emporium.order.v1.OrderService/GetOrder" not in writes
    assert "/emporium.order.v1.OrderService/WatchOrder" not in writes
    assert "/emporium.catalog.v1.CatalogService/ListProducts" not in writes


def test_the_per_client_bucket_follows_the_environment():
    environ = {
        "EMPORIUM_GATEWAY_CLIENT_REQUESTS_PER_SECOND": "100000",
        "EMPORIUM_GATEWAY_CLIENT_REQUESTS_BURST": "5000",
    }

    assert render.load(environ={}).rate_limits.default == render.Bucket(2000, 2000)
    assert render.load(environ=environ).rate_limits.default == render.Bucket(100000, 5000)
    with pytest.raises(ValueError, match="CLIENT_REQUESTS_PER_SECOND"):
        render.load(environ={"EMPORIUM_GATEWAY_CLIENT_REQUESTS_PER_SECOND": "-1"})


def test_the_user_write_bucket_follows_the_environment():
    environ = {
        "EMPORIUM_GATEWAY_USER_WRITES_PER_SECOND": "7",
        "EMPORIUM_GATEWAY_USER_WRITES_BURST": "30",
    }

    assert render.load(environ={}).rate_limits.user_writes == render.Bucket(50, 200)
    assert render.load(environ=environ).rate_limits.user_writes == render.Bucket(7, 30)
    with pytest.raises(ValueError, match="USER_WRITES_BURST"):
        render.load(environ={"EMPORIUM_GATEWAY_USER_WRITES_BURST": "lots"})


# --- what Envoy serves itself ---------------------------------------------------------------


def test_healthz_answers_200(gateway):
    response = http("GET", f"{gateway.url}/healthz")

    assert response.status == 200
    assert response.body == b"ok\n"


def test_the_openapi_document_is_served_as_yaml_and_as_json(gateway):
    as_yaml = http("GET", f"{gateway.url}/openapi.yaml")
    as_json = http("GET", f"{gateway.url}/openapi.json")

    assert as_yaml.status == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.body == render.OPENAPI_YAML.read_bytes()
    assert as_json.status == 200
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json() == yaml.safe_load(as_yaml.body)


def test_docs_serve_swagger_ui_over_the_openapi_document(gateway):
    page = http("GET", f"{gateway.url}/docs/")
    initializer = http("GET", f"{gateway.url}/docs/swagger-initializer.js")
    bundle = http("GET", f"{gateway.url}/docs/swagger-ui-bundle.js")
    css = http("GET", f"{gateway.url}/docs/swagger-ui.css")

    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert b'<div id="swagger-ui">' in page.body
    assert b"./swagger-ui-bundle.js" in page.body
    assert initializer.status == 200
    assert b'url: "/openapi.yaml"' in initializer.body
    assert b"Authorization" in initializer.body
    assert bundle.status == 200
    assert bundle.headers["content-type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in bundle.body
    assert len(bundle.body) > 1_000_000
    assert css.status == 200
    assert css.headers["content-type"].startswith("text/css")


def test_docs_without_a_slash_redirects_to_docs_slash(gateway):
    response = http("GET", f"{gateway.url}/docs")

    assert response.status == 301
    assert response.headers["location"].endswith("/docs/")


def test_failed_requests_are_logged_as_json_on_stdout_and_good_ones_by_sample(gateway):
    def logged(path: str) -> dict[str, Any] | None:
        lines = gateway.access_log.read_text().splitlines()
        return next((e for e in map(json.loads, lines) if e["path"] == path), None)

    assert http("GET", f"{gateway.url}/v1/orders/logged-order", headers=bearer()).status == 200
    assert http("GET", f"{gateway.url}/v1/orders/missing", headers=bearer()).status == 404

    deadline = time.monotonic() + 5  # Envoy flushes access logs every second
    while (entry := logged("/v1/orders/missing")) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert entry is not None, "the failed request was not logged"
    assert entry["method"] == "GET"
    assert entry["rpc"] == "/emporium.order.v1.OrderService/GetOrder"
    assert entry["status"] == 404
    assert entry["upstream"] == "order"
    assert entry["user"] == ME  # the verified token's sub
    time.sleep(1.5)  # a flush later, the good request (sent first) is still not there
    assert logged("/v1/orders/logged-order") is None


def test_the_access_log_sample_and_slow_threshold_come_from_the_environment():
    def access_log(**environ: str) -> dict[str, Any]:
        return render._access_log(render.load(environ=environ))

    assert "filter" not in access_log(EMPORIUM_ACCESS_LOG_SAMPLE="1")  # every request
    filters = access_log(EMPORIUM_ACCESS_LOG_SAMPLE="0.25", EMPORIUM_SLOW_CALL_MS="200")["filter"]
    status, grpc_status, slow, sample = filters["or_filter"]["filters"]
    assert status["status_code_filter"]["comparison"]["value"]["default_value"] == 400
    assert grpc_status["grpc_status_filter"] == {"statuses": ["OK"], "exclude": True}
    assert slow["duration_filter"]["comparison"]["value"]["default_value"] == 200
    assert sample["runtime_filter"]["percent_sampled"]["numerator"] == 2500
    with pytest.raises(ValueError, match="EMPORIUM_ACCESS_LOG_SAMPLE"):
        render.load(environ={"EMPORIUM_ACCESS_LOG_SAMPLE": "2"})


# --- services.yaml and the renderer ---------------------------------------------------------


def test_services_yaml_names_every_service_of_the_descriptor_set_on_its_own_port(descriptor_set):
    from contracts import own_files

    described = {f"{f.package}.{s.name}" for f in own_files(descriptor_set) for s in f.service}
    gateway = render.load(environ={})

    assert {s.proto_service for s in gateway.services} == described
    assert [s.port for s in gateway.services] == list(range(50051, 50061))
    assert [s.name for s in gateway.services] == [
        *("user", "catalog", "cart", "order", "payment", "shipping"),
        *("notification", "webhooks", "logging", "file"),
    ]
    assert (gateway.port, gateway.admin_port) == (8080, 9901)


def test_ports_and_hosts_are_overridden_from_the_environment():
    gateway = render.load(
        environ={
            "EMPORIUM_GATEWAY_PORT": "18080",
            "EMPORIUM_ORDER_GRPC_PORT": "51054",
            "EMPORIUM_ORDER_GRPC_HOST": "order.emporium.svc",
        }
    )

    assert gateway.port == 18080
    assert gateway.admin_port == 9901
    assert (gateway.service("order").host, gateway.service("order").port) == (
        "order.emporium.svc",
        51054,
    )
    assert gateway.service("user").port == 50051


def test_a_port_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError, match="EMPORIUM_GATEWAY_PORT"):
        render.load(environ={"EMPORIUM_GATEWAY_PORT": "80a"})


def test_rendering_without_swagger_ui_says_to_run_the_install_script(tmp_path):
    with pytest.raises(render.MissingSwaggerUI, match=r"run gateway/install-swagger-ui\.sh"):
        render.write(render.load(environ={}), tmp_path / "envoy.yaml", {"EMPORIUM_CACHE": "/no"})


def _envoy_validate(config: Path) -> subprocess.CompletedProcess:
    command = [*render.envoy_command(config), "--mode", "validate"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_rendered_default_config_is_one_envoy_accepts(tmp_path):
    out = tmp_path / "envoy.yaml"
    rendered = subprocess.run(
        [sys.executable, "-m", "gateway.render", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "openapi.json").is_file()

    validated = _envoy_validate(out)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_envoy_rejects_a_service_missing_from_the_descriptor_set(tmp_path):
    gateway = render.load(environ={})
    nothing = render.Service("nothing", "emporium.nothing.v1.NothingService", "127.0.0.1", 50099)
    out = render.write(replace(gateway, services=(*gateway.services, nothing)), tmp_path / "e.yaml")

    validated = _envoy_validate(out)
    assert validated.returncode != 0
    assert "NothingService" in validated.stdout + validated.stderr


def test_the_public_rpcs_are_those_the_contracts_declare_public(descriptor_set):
    from contracts import own_files

    declared = {
        f"/{f.package}.{s.name}/{m.name}"
        for f in own_files(descriptor_set)
        for s in f.service
        for m in s.method
        if m.options.Extensions[access_pb2.access] == access_pb2.ACCESS_PUBLIC
    }
    public = render.public_rpcs(render.load(environ={}))

    assert set(public) == declared
    assert "/emporium.user.v1.UserService/Register" in public
    assert "/emporium.user.v1.UserService/GetJwks" in public
    assert "/emporium.user.v1.UserService/GetMe" not in public


def test_the_token_rules_let_public_rpcs_pass_and_demand_a_token_on_everything_else(tmp_path):
    gateway = render.load(environ={})
    out = render.write(gateway, tmp_path / "envoy.yaml")
    listener = yaml.safe_load(out.read_text())["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in manager["http_filters"]]
    rules = next(f for f in manager["http_filters"] if f["name"] == render.JWT_AUTHN)[
        "typed_config"
    ]["rules"]

    # After the transcoder (REST has its gRPC path by then), rate limits before tokens.
    assert names.index(render.TRANSCODER) < names.index(render.RATE_LIMIT)
    assert names.index(render.RATE_LIMIT) < names.index(render.JWT_AUTHN)
    # The per-user write buckets read the verified subject: after the token check.
    assert names.index(render.JWT_AUTHN) < names.index(render.USER_WRITE_LIMIT)
    *public, last = rules
    assert [r["match"] for r in public] == [{"path": p} for p in render.public_rpcs(gateway)]
    assert all(
        r["requires"]["requires_any"]["requirements"]
        == [{"provider_name": render.JWT_PROVIDER}, {"allow_missing": {}}]
        for r in public
    )
    assert last == {"match": {"prefix": "/emporium."}, "requires": {"provider_name": "emporium"}}


def test_issuer_and_audience_are_kits_and_follow_the_same_variables():
    environ = {"EMPORIUM_JWT_ISSUER": "issuer.test", "EMPORIUM_JWT_AUDIENCE": "audience.test"}

    default, overridden = render.load(environ={}).auth, render.load(environ=environ).auth

    assert (default.issuer, default.audience) == (AuthSettings.issuer, AuthSettings.audience)
    assert (overridden.issuer, overridden.audience) == (
        AuthSettings.from_env(environ).issuer,
        AuthSettings.from_env(environ).audience,
    )


def test_a_credential_rpc_the_contracts_do_not_have_is_refused(tmp_path):
    gateway = render.load(environ={})
    typo = replace(gateway.rate_limits, credential_rpcs=("/emporium.user.v1.UserService/LogIn",))

    with pytest.raises(ValueError, match="LogIn is not an RPC"):
        render.write(replace(gateway, rate_limits=typo), tmp_path / "envoy.yaml")


@pytest.mark.parametrize(
    ("rate", "per_fill", "interval"), [(2000, 100, "0.05s"), (20, 1, "0.05s"), (7, 7, "1.0s")]
)
def test_a_bucket_refills_in_the_smallest_whole_token_steps(rate, per_fill, interval):
    bucket = render._token_bucket(render.Bucket(requests_per_second=rate, burst=3 * rate))

    assert bucket == {
        "max_tokens": 3 * rate,
        "tokens_per_fill": per_fill,
        "fill_interval": interval,
    }


# --- errors the gateway produces itself -----------------------------------------------------

REGISTER = "/v1/users:register"
JSON = {"Content-Type": "application/json"}
GATEWAY_ERRORS = [
    # (case, method, path, body, headers, expected HTTP status)
    ("unknown path", "GET", "/v1/no-such-thing", None, {}, 404),
    ("unknown method on a known path", "PUT", "/v1/orders/o-1", b"{}", JSON, 404),
    ("malformed json", "POST", REGISTER, b'{"email": ', JSON, 400),
    ("json that is not an object", "POST", REGISTER, b"[1, 2]", JSON, 400),
    ("a number for a string", "POST", REGISTER, b'{"email": 12}', JSON, 400),
    ("an object for a string", "POST", REGISTER, b'{"email": {"a": 1}}', JSON, 400),
    ("bad utf-8", "POST", REGISTER, b'{"email": "\xff\xfe"}', JSON, 400),
    ("unknown query parameter", "GET", "/v1/orders?colour=red", None, {}, 400),
    ("unknown enum name", "GET", "/v1/orders?state=STATE_FLYING", None, {}, 400),
    ("a word for a number", "GET", "/v1/orders?page_size=many", None, {}, 400),
    ("an overflowing number", "GET", "/v1/orders?page_size=99999999999999999999", None, {}, 400),
    ("a body over the limit", "POST", REGISTER, b" " * (12 * MIB + 1), JSON, 413),
    ("headers over the limit", "GET", "/v1/orders", None, {"X-Big": "a" * 100_000}, 431),
    ("a path over the limit", "GET", "/v1/orders/" + "a" * 20_000, None, {}, 431),
    ("a huge unknown enum name", "GET", "/v1/orders?state=" + "X" * 10_000, None, {}, 400),
    ("a huge unknown parameter", "GET", f"/v1/orders?{'q' * 10_000}=1", None, {}, 400),
    ("a huge wrong-typed value", "POST", REGISTER, b'{"email": [' + b"1," * 100_000 + b"1]}",
     JSON, 400),
    ("deeply nested json", "POST", REGISTER, b'{"email": ' + b"[" * 10_000, JSON, 400),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [case[1:] for case in GATEWAY_ERRORS],
    ids=[case[0] for case in GATEWAY_ERRORS],
)
def test_every_error_the_gateway_makes_itself_is_a_json_google_rpc_status(
    gateway, method, path, body, headers, status
):
    response = http(method, f"{gateway.url}{path}", body, {**bearer(), **headers})
    assert response.status == status, response.body[:300]
    assert response.headers["content-type"].startswith("application/json"), response.body[:300]
    document = response.json()
    assert isinstance(document["code"], int)
    assert document["code"] > 0
    assert isinstance(document["message"], str)
    assert document["message"]
    # Never echoes an unbounded input: a body is not quoted at length, and what the transcoder
    # quotes of a URL is bounded by the gateway's header limit.
    limit = 2048 if len(path) < 1024 else render.MAX_REQUEST_HEADERS_KB * 1024 + 1024
    assert len(response.body) < limit
