"""The gateway: real Envoy, configured by gateway/render.py, in front of fake Emporium services.

The fakes are grpc.aio servers (generated servicers with canned answers) running on an event loop
in a background thread, so the tests can call Envoy with blocking HTTP and gRPC clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from emporium.catalog.v1 import catalog_service_pb2_grpc, product_pb2
from emporium.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from emporium.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from google.type import money_pb2
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from gateway import render

ME = "7d0c1f5e-0000-4000-8000-00000000000a"
OTHER_USER = "5b7e3a52-9d1c-4c8e-8f0e-2f6f1c3b4a10"
CREATED = timestamp_pb2.Timestamp(seconds=1_767_225_600)  # 2026-01-01T00:00:00Z
MIB = 2**20


# --- fake services --------------------------------------------------------------------------


@dataclass
class Calls:
    """What the fake servicers received, as (RPC name, request) in arrival order."""

    seen: list[tuple[str, Any]] = field(default_factory=list)

    def record(self, rpc: str, request: Any) -> None:
        self.seen.append((rpc, request))

    def last(self, rpc: str) -> Any:
        return next(r for name, r in reversed(self.seen) if name == rpc)

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


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
        self.calls.record("Register", request)
        if not request.email:
            await _abort_invalid(context, "email", "must not be empty")
        return _user(OTHER_USER, request.email, request.display_name)

    async def GetMe(self, request, context):
        self.calls.record("GetMe", request)
        return _user(ME, "me@example.com", "Me")

    async def GetUser(self, request, context):
        self.calls.record("GetUser", request)
        return _user(request.id, "someone@example.com")


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
        self.calls.record("GetOrder", request)
        if request.id == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "order missing does not exist")
        return _order(request.id)

    async def WatchOrder(self, request, context):
        self.calls.record("WatchOrder", request)
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
        self.calls.record("UploadProductImage", request)
        return product_pb2.ProductImage(
            id="img-1",
            product_id=request.product_id,
            content_type=request.file.content_type,
            size_bytes=len(request.file.data),
            alt_text=request.alt_text,
        )

    async def GetProductImage(self, request, context):
        self.calls.record("GetProductImage", request)
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
        port, admin_port = _free_port(), _free_port()
        environ = {
            **os.environ,
            "EMPORIUM_GATEWAY_PORT": str(port),
            "EMPORIUM_GATEWAY_ADMIN_PORT": str(admin_port),
            # Services without a fake get a free port with nothing behind it.
            **{
                f"EMPORIUM_{s.name.upper()}_GRPC_PORT": str(ports.get(s.name) or _free_port())
                for s in render.load(environ={}).services
            },
        }
        folder = tmp_path_factory.mktemp("gateway")
        try:
            config = render.write(render.load(environ=environ), folder / "envoy.yaml", environ)
        except render.MissingSwaggerUI as error:
            pytest.fail(str(error), pytrace=False)
        stdout, stderr = folder / "stdout.log", folder / "stderr.log"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            command = [*render.envoy_command(config), "--concurrency", "1"]
            process = subprocess.Popen(command, stdout=out, stderr=err)
        try:
            _wait_ready(process, admin_port, stderr)
            yield Gateway(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", stdout, calls, orders)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
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


def post_json(url: str, document: dict[str, Any]) -> Response:
    body = json.dumps(document).encode()
    return http("POST", url, body, {"Content-Type": "application/json"})


# --- REST through the transcoder ------------------------------------------------------------


def test_rest_get_order_returns_the_servicers_order_as_snake_case_json(gateway):
    response = http("GET", f"{gateway.url}/v1/orders/o-42")

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
    response = http("GET", f"{gateway.url}/v1/orders/missing")

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
    me = http("GET", f"{gateway.url}/v1/users/me")
    between = len(gateway.calls.seen)
    other = http("GET", f"{gateway.url}/v1/users/{OTHER_USER}")

    assert me.status == 200, me.body
    assert me.json()["id"] == ME
    assert gateway.calls.names()[before:between] == ["GetMe"]
    assert other.status == 200, other.body
    assert other.json()["id"] == OTHER_USER
    assert gateway.calls.names()[between:] == ["GetUser"]
    assert gateway.calls.last("GetUser").id == OTHER_USER


def test_watch_order_streams_newline_delimited_json_as_updates_come(gateway):
    request = urllib.request.Request(f"{gateway.url}/v1/orders/o-7:watch")
    with _opener.open(request, timeout=10) as stream:
        first = json.loads(stream.readline())
        gateway.orders.first_update_read.set()
        rest = [json.loads(line) for line in stream.read().splitlines() if line.strip()]

    states = [update["order"]["state"] for update in [first, *rest]]
    assert states == ["STATE_PAID", "STATE_SHIPPED", "STATE_DELIVERED"]
    assert first["order"]["id"] == "o-7"


def test_an_unknown_query_parameter_is_rejected_with_400(gateway):
    response = http("GET", f"{gateway.url}/v1/orders/o-1?colour=red")

    assert response.status == 400


def test_a_path_no_rpc_binds_is_404(gateway):
    response = http("GET", f"{gateway.url}/v1/nothing-here")

    assert response.status == 404


def test_a_ten_mib_image_upload_reaches_the_catalog_and_a_larger_body_is_413(gateway):
    image = b"\x89PNG\r\n\x1a\n" + bytes(10 * MIB - 8)
    url = f"{gateway.url}/v1/products/p-1/images?alt_text=Red+shirt"

    accepted = http("POST", url, image, {"Content-Type": "image/png"})
    too_big = http("POST", url, image + bytes(2 * MIB + 1), {"Content-Type": "image/png"})

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
        order = stub.GetOrder(order_service_pb2.GetOrderRequest(id="o-9"), timeout=5)
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetOrder(order_service_pb2.GetOrderRequest(id="missing"), timeout=5)

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
        updates = list(stub.WatchOrder(order_service_pb2.WatchOrderRequest(id="o-3"), timeout=5))

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
            call(b"", timeout=5)

    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


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


def test_each_request_is_logged_as_json_on_stdout(gateway):
    http("GET", f"{gateway.url}/v1/orders/logged-order")

    deadline = time.monotonic() + 5  # Envoy flushes access logs every second
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        entries = [json.loads(line) for line in gateway.access_log.read_text().splitlines()]
        if any(e["path"] == "/v1/orders/logged-order" for e in entries):
            break
        time.sleep(0.1)
    entry = next(e for e in entries if e["path"] == "/v1/orders/logged-order")
    assert entry["method"] == "GET"
    assert entry["rpc"] == "/emporium.order.v1.OrderService/GetOrder"
    assert entry["status"] == 200
    assert entry["upstream"] == "order"


# --- services.yaml and the renderer ---------------------------------------------------------


def test_services_yaml_names_every_service_of_the_descriptor_set_on_its_own_port(descriptor_set):
    from contracts import own_files

    described = {f"{f.package}.{s.name}" for f in own_files(descriptor_set) for s in f.service}
    gateway = render.load(environ={})

    assert {s.proto_service for s in gateway.services} == described
    assert [s.port for s in gateway.services] == list(range(50051, 50060))
    assert [s.name for s in gateway.services] == [
        *("user", "catalog", "cart", "order", "payment", "shipping"),
        *("notification", "webhooks", "logging"),
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
