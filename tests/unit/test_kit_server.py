"""The kit's gRPC server: health, reflection, access rules, token checks and error mapping.

Each test serves a real grpc.aio server on a free loopback port, with the kit's interceptors in
front of a small UserService servicer that answers as each test tells it to.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from kit import auth, errors, server
from kit.config import AuthSettings, ServerSettings
from services.user.adapters.keys import SigningKeys

AUTH = AuthSettings()
USER_ID = "7d0c1f5e-0000-4000-8000-00000000000a"


SETTINGS = ServerSettings(name="user", port=0)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": USER_ID,
        "iss": AUTH.issuer,
        "aud": AUTH.audience,
        "iat": now,
        "exp": now + 300,
        "jti": "t1",
        "roles": ["customer"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


class UserService(user_service_pb2_grpc.UserServiceServicer):
    """GetJwks serves the keys; GetMe raises whatever the test put in `outcome`."""

    outcome: Exception | None = None

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys

    async def GetJwks(self, request, context):
        return httpbody_pb2.HttpBody(content_type="application/json", data=self.keys.jwks_json())

    async def GetMe(self, request, context):
        if self.outcome is not None:
            raise self.outcome
        principal = auth.caller()
        return user_pb2.User(id=principal.user_id, email="me@example.com")


class Served:
    def __init__(self, keys: SigningKeys, channel: grpc.aio.Channel, servicer: UserService):
        self.keys = keys
        self.channel = channel
        self.servicer = servicer
        self.users = user_service_pb2_grpc.UserServiceStub(channel)

    def token(self, **claims: Any) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.keys.sign(_claims(**claims))}")]


def _app(keys: SigningKeys, servicer: UserService) -> server.App:
    async def jwks() -> bytes:
        return keys.jwks_json()

    return server.App(
        servicers=[(user_service_pb2_grpc.add_UserServiceServicer_to_server, servicer)],
        service_names=["emporium.user.v1.UserService"],
        verifier=auth.JwtVerifier(jwks, issuer=AUTH.issuer, audience=AUTH.audience),
    )


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    servicer = UserService(keys)
    grpc_server, port, _ = await server.start(SETTINGS, _app(keys, servicer))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Served(keys, channel, servicer)
    await grpc_server.stop(0)


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value.code()


async def test_health_reports_serving_for_the_server_and_its_service(served):
    health = health_pb2_grpc.HealthStub(served.channel)
    for name in ("", "emporium.user.v1.UserService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_on_the_gateway_target_lists_every_emporium_service(served):
    stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    reply = await call.read()
    await call.done_writing()
    names = {s.name for s in reply.list_services_response.service}
    assert {"emporium.user.v1.UserService", "emporium.order.v1.OrderService"} <= names
    assert "grpc.health.v1.Health" in names


async def _file_containing(served, symbol: str) -> reflection_pb2.ServerReflectionResponse:
    call = reflection_pb2_grpc.ServerReflectionStub(served.channel).ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
    reply = await call.read()
    await call.done_writing()
    return reply


async def test_reflection_finds_the_file_of_a_method_as_grpcurl_describe_asks(served):
    # grpc/grpc#34743: grpcio's reflection alone answers NOT_FOUND for a method's symbol.
    reply = await _file_containing(served, "emporium.order.v1.OrderService.PlaceOrder")
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    assert files[0].name == "emporium/order/v1/order_service.proto"
    (service,) = [s for s in files[0].service if s.name == "OrderService"]
    assert "PlaceOrder" in [m.name for m in service.method]


async def test_reflection_still_answers_not_found_for_an_unknown_method(served):
    reply = await _file_containing(served, "emporium.order.v1.OrderService.NoSuchMethod")
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_a_public_rpc_answers_without_a_token(served):
    reply = await served.users.GetJwks(user_service_pb2.GetJwksRequest())
    document = json.loads(reply.data)
    assert reply.content_type == "application/json"
    assert [key["kid"] for key in document["keys"]] == [served.keys.kid]


async def test_a_user_rpc_without_a_token_is_unauthenticated(served):
    code = await _code(served.users.GetMe(user_service_pb2.GetMeRequest()))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_a_valid_token_reaches_the_handler_as_the_caller(served):
    me = await served.users.GetMe(user_service_pb2.GetMeRequest(), metadata=served.token())
    assert me.id == USER_ID


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _alg_none(keys: SigningKeys) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": keys.kid}
    parts = [
        base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
        for p in (header, _claims())
    ]
    return ".".join([*parts, ""])


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda keys: _tampered(keys.sign(_claims())), id="tampered"),
        pytest.param(lambda keys: keys.sign(_claims(exp=int(time.time()) - 60)), id="expired"),
        pytest.param(_alg_none, id="alg-none"),
        pytest.param(lambda keys: keys.sign(_claims(aud="someone-else")), id="wrong-audience"),
        pytest.param(lambda keys: keys.sign(_claims(iss="evil")), id="wrong-issuer"),
        pytest.param(lambda keys: keys.sign(_claims(exp=None)), id="no-expiry"),
        pytest.param(
            lambda keys: SigningKeys(ec.generate_private_key(ec.SECP256R1())).sign(_claims()),
            id="unknown-key",
        ),
        pytest.param(
            lambda keys: jwt.encode(_claims(), "s" * 32, "HS256", headers={"kid": keys.kid}),
            id="hmac",
        ),
    ],
)
async def test_a_bad_token_is_unauthenticated_even_on_a_public_rpc(served, make_token):
    metadata = [("authorization", f"Bearer {make_token(served.keys)}")]
    for call in (
        served.users.GetMe(user_service_pb2.GetMeRequest(), metadata=metadata),
        served.users.GetJwks(user_service_pb2.GetJwksRequest(), metadata=metadata),
    ):
        assert await _code(call) == grpc.StatusCode.UNAUTHENTICATED


async def test_an_admin_rpc_with_a_customer_token_is_permission_denied(served):
    call = served.users.GetUser(
        user_service_pb2.GetUserRequest(id=USER_ID), metadata=served.token()
    )
    assert await _code(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_an_admin_token_passes_the_admin_check(served):
    call = served.users.GetUser(
        user_service_pb2.GetUserRequest(id=USER_ID), metadata=served.token(roles=["admin"])
    )
    # Past the access check, the skeleton's base class answers for the missing handler.
    assert await _code(call) == grpc.StatusCode.UNIMPLEMENTED


async def test_an_invalid_argument_names_every_field_in_bad_request_details(served):
    served.servicer.outcome = errors.InvalidArgument(
        violations=[("email", "is not an email address"), ("password", "is too short")]
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await served.users.GetMe(user_service_pb2.GetMeRequest(), metadata=served.token())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    fields = [(v.field, v.description) for v in bad_request.field_violations]
    assert fields == [("email", "is not an email address"), ("password", "is too short")]


async def test_an_error_that_echoes_a_huge_input_stays_small_enough_for_the_trailers(served):
    huge = "x" * 200_000
    served.servicer.outcome = errors.InvalidArgument(
        violations=[(huge, f"is not a product id: {huge}")] * 500,
        message=f"no product {huge}",
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await served.users.GetMe(user_service_pb2.GetMeRequest(), metadata=served.token())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)
    # grpc-status-details-bin (base64) and grpc-message together fit gRPC's 8 KiB default.
    assert len(status.SerializeToString()) * 4 / 3 + len(status.message) < 8 * 1024
    assert status.message.endswith("(truncated)")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.NotFound("no such user"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("email taken"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition("disabled"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.ResourceExhausted("slow down"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_domain_errors_become_their_status_code_with_error_info(served, error, code):
    served.servicer.outcome = error
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await served.users.GetMe(user_service_pb2.GetMeRequest(), metadata=served.token())
    assert raised.value.code() == code
    info = error_details_pb2.ErrorInfo()
    assert rpc_status.from_call(raised.value).details[0].Unpack(info)
    assert (info.domain, info.reason) == ("emporium", error.reason)


async def test_an_unexpected_exception_is_internal_and_leaks_nothing(served):
    served.servicer.outcome = RuntimeError("password hash for root is abc")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await served.users.GetMe(user_service_pb2.GetMeRequest(), metadata=served.token())
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "abc" not in (raised.value.details() or "")


async def test_shutdown_lets_an_in_flight_call_finish_and_refuses_new_ones():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    started = asyncio.Event()

    class Slow(UserService):
        async def GetJwks(self, request, context):
            started.set()
            await asyncio.sleep(0.5)
            return await super().GetJwks(request, context)

    grpc_server, port, health_servicer = await server.start(SETTINGS, _app(keys, Slow(keys)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        in_flight = asyncio.ensure_future(users.GetJwks(user_service_pb2.GetJwksRequest()))
        await started.wait()
        await health_servicer.enter_graceful_shutdown()
        stopping = asyncio.ensure_future(grpc_server.stop(5))
        reply = await in_flight
        await stopping
        late = users.GetJwks(user_service_pb2.GetJwksRequest(), timeout=1)
        assert await _code(late) == grpc.StatusCode.UNAVAILABLE
    assert json.loads(reply.data)["keys"]


async def _order_server(keys: SigningKeys, orders: Any) -> tuple[grpc.aio.Server, int, list]:
    """The kit's server with an OrderService servicer; a customer token's metadata for it."""
    from emporium.order.v1 import order_service_pb2_grpc

    async def jwks() -> bytes:
        return keys.jwks_json()

    app = server.App(
        servicers=[(order_service_pb2_grpc.add_OrderServiceServicer_to_server, orders)],
        service_names=["emporium.order.v1.OrderService"],
        verifier=auth.JwtVerifier(jwks, issuer=AUTH.issuer, audience=AUTH.audience),
    )
    grpc_server, port, _ = await server.start(server.ServerSettings(name="order", port=0), app)
    return grpc_server, port, [("authorization", f"Bearer {keys.sign(_claims())}")]


async def test_a_server_stream_passes_every_message_and_maps_an_error_raised_mid_stream(tmp_path):
    from emporium.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))

    class Orders(order_service_pb2_grpc.OrderServiceServicer):
        async def WatchOrder(self, request, context):
            for state in (order_pb2.Order.STATE_PENDING, order_pb2.Order.STATE_PAID):
                order = order_pb2.Order(id=request.id, state=state)
                yield order_service_pb2.WatchOrderResponse(order=order)
            raise errors.NotFound("the order was deleted")

    grpc_server, port, metadata = await _order_server(keys, Orders())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        call = stub.WatchOrder(order_service_pb2.WatchOrderRequest(id="o1"), metadata=metadata)
        states = [(await call.read()).order.state, (await call.read()).order.state]
        assert await _code(call.read()) == grpc.StatusCode.NOT_FOUND
        anonymous = stub.WatchOrder(order_service_pb2.WatchOrderRequest(id="o1"))
        assert await _code(anonymous.read()) == grpc.StatusCode.UNAUTHENTICATED
    await grpc_server.stop(0)
    assert states == [order_pb2.Order.STATE_PENDING, order_pb2.Order.STATE_PAID]


async def test_a_token_issued_before_its_users_revocation_mark_is_refused():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    marks: dict[str, float] = {}
    fetches: list[float] = []

    async def jwks() -> bytes:
        return keys.jwks_json()

    async def revocations() -> dict[str, float]:
        fetches.append(time.monotonic())
        return dict(marks)

    verifier = auth.JwtVerifier(
        jwks,
        issuer=AUTH.issuer,
        audience=AUTH.audience,
        revocations=auth.Revocations(revocations, max_age_seconds=0.2),
    )
    now = int(time.time())
    old = keys.sign(_claims(iat=now - 10))
    assert (await verifier.verify(old)).user_id == USER_ID
    marks[auth.revocation_key(USER_ID)] = float(now - 5)
    await asyncio.sleep(0.25)  # older than max_age: the next check fetches the marks again
    with pytest.raises(errors.Unauthenticated, match="revoked"):
        await verifier.verify(old)
    # A token issued at or after the mark (a new sign-in) is accepted; other users too.
    assert (await verifier.verify(keys.sign(_claims(iat=now - 5)))).user_id == USER_ID
    other = "7d0c1f5e-0000-4000-8000-00000000000b"
    assert (await verifier.verify(keys.sign(_claims(sub=other, iat=now - 10)))).user_id == other
    assert len(fetches) == 2  # within max_age the copy is reused, not refetched per call


async def test_revocation_marks_keep_applying_while_their_source_is_down():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    now = int(time.time())
    answers: list[Any] = [{auth.revocation_key(USER_ID): float(now)}, ConnectionError("down")]

    async def jwks() -> bytes:
        return keys.jwks_json()

    async def revocations() -> dict[str, float]:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    verifier = auth.JwtVerifier(
        jwks,
        issuer=AUTH.issuer,
        audience=AUTH.audience,
        revocations=auth.Revocations(revocations, max_age_seconds=0),
    )
    old = keys.sign(_claims(iat=now - 10))
    for _ in range(3):
        with pytest.raises(errors.Unauthenticated, match="revoked"):
            await verifier.verify(old)


def _verifier(keys: SigningKeys, **options: Any) -> auth.JwtVerifier:
    async def jwks() -> bytes:
        return keys.jwks_json()

    return auth.JwtVerifier(jwks, issuer=AUTH.issuer, audience=AUTH.audience, **options)


async def test_a_token_sent_again_is_not_verified_twice():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    verifier = _verifier(keys)
    token = keys.sign(_claims())
    for _ in range(5):
        assert (await verifier.verify(token)).user_id == USER_ID
    assert verifier.signatures_checked == 1
    await verifier.verify(keys.sign(_claims(jti="t2")))  # another token is checked
    assert verifier.signatures_checked == 2


async def test_a_cached_token_is_refused_once_it_expires():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    verifier = _verifier(keys, leeway_seconds=0)
    token = keys.sign(_claims(exp=int(time.time()) + 1))
    assert (await verifier.verify(token)).user_id == USER_ID
    await asyncio.sleep(2.1)
    with pytest.raises(errors.Unauthenticated, match="expired"):
        await verifier.verify(token)


async def test_an_expired_token_is_refused_and_never_cached():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    verifier = _verifier(keys, leeway_seconds=0)
    token = keys.sign(_claims(iat=int(time.time()) - 60, exp=int(time.time()) - 30))
    for _ in range(2):
        with pytest.raises(errors.Unauthenticated, match="expired"):
            await verifier.verify(token)
    assert verifier.signatures_checked == 2


async def test_a_cached_token_is_refused_once_its_user_is_revoked():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    marks: dict[str, float] = {}

    async def revocations() -> dict[str, float]:
        return dict(marks)

    verifier = _verifier(keys, revocations=auth.Revocations(revocations, max_age_seconds=0.2))
    now = int(time.time())
    token = keys.sign(_claims(iat=now - 10))
    assert (await verifier.verify(token)).user_id == USER_ID
    marks[auth.revocation_key(USER_ID)] = float(now - 5)
    await asyncio.sleep(0.25)
    with pytest.raises(errors.Unauthenticated, match="revoked"):
        await verifier.verify(token)
    assert verifier.signatures_checked == 1


async def test_the_token_cache_is_bounded_and_keyed_by_the_tokens_hash():
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    verifier = _verifier(keys, cache_size=2)
    tokens = [keys.sign(_claims(jti=f"t{i}")) for i in range(3)]
    for token in tokens:
        await verifier.verify(token)
    assert len(verifier._verified) == 2
    assert all(len(key) == 32 and key not in tokens for key in verifier._verified)


async def test_the_interceptor_wraps_a_methods_handler_once_and_a_new_handler_again():
    async def get_me(request, context):
        return user_pb2.User()

    interceptor = server.CallInterceptor(None)
    first = grpc.unary_unary_rpc_method_handler(get_me)
    handlers = {"/emporium.user.v1.UserService/GetMe": first}

    async def continuation(details):
        return handlers.get(details.method)

    def details(method: str) -> Any:
        return type("Details", (), {"method": method, "invocation_metadata": ()})()

    get = details("/emporium.user.v1.UserService/GetMe")
    wrapped = await interceptor.intercept_service(continuation, get)
    assert wrapped is not first
    assert wrapped.unary_unary is not get_me
    assert await interceptor.intercept_service(continuation, get) is wrapped
    # A service registered again (a new handler object) is wrapped anew, never served stale.
    handlers[get.method] = grpc.unary_unary_rpc_method_handler(get_me)
    assert await interceptor.intercept_service(continuation, get) is not wrapped
    assert await interceptor.intercept_service(continuation, details("/x.Y/Z")) is None


async def test_a_unary_call_past_the_servers_bound_is_deadline_exceeded_and_the_next_is_served():
    """The server's own bound on unary calls (for clients that set no deadline)."""
    calls = 0

    class Slow(user_service_pb2_grpc.UserServiceServicer):
        async def GetJwks(self, request, context):  # public: no token needed
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(30)
            return httpbody_pb2.HttpBody(content_type="application/json", data=b"{}")

    grpc_server = grpc.aio.server(interceptors=[server.CallInterceptor(None, max_seconds=0.3)])
    user_service_pb2_grpc.add_UserServiceServicer_to_server(Slow(), grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await users.GetJwks(user_service_pb2.GetJwksRequest(), timeout=10)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "took longer than 0.3 s" in raised.value.details()
        assert 0.3 <= time.monotonic() - started < 2
        # Calls within the bound, after it, are untouched by it.
        for _ in range(3):
            reply = await users.GetJwks(user_service_pb2.GetJwksRequest(), timeout=10)
            assert reply.data == b"{}"
    await grpc_server.stop(0)


async def _serve_logged(keys: SigningKeys, servicer: UserService, **settings: Any):
    options = {"name": "user", "port": 0, **settings}
    grpc_server, port, _ = await server.start(ServerSettings(**options), _app(keys, servicer))
    return grpc_server, f"127.0.0.1:{port}"


async def test_a_sampled_access_log_skips_good_calls_but_logs_every_error(caplog):
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    servicer = UserService(keys)
    grpc_server, address = await _serve_logged(keys, servicer, access_log_sample=0.0)
    metadata = [("authorization", f"Bearer {keys.sign(_claims())}")]
    caplog.set_level("INFO", logger="emporium.access")
    async with grpc.aio.insecure_channel(address) as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        for _ in range(5):
            await users.GetMe(user_service_pb2.GetMeRequest(), metadata=metadata)
        servicer.outcome = errors.NotFound("gone")
        assert await _code(users.GetMe(user_service_pb2.GetMeRequest(), metadata=metadata)) == (
            grpc.StatusCode.NOT_FOUND
        )
        assert await _code(users.GetMe(user_service_pb2.GetMeRequest())) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    await grpc_server.stop(0)
    lines = [r.getMessage() for r in caplog.records if r.name == "emporium.access"]
    assert len(lines) == 2, lines
    assert "GetMe NOT_FOUND" in lines[0]
    assert f"user={USER_ID}" in lines[0]
    assert "GetMe UNAUTHENTICATED" in lines[1]


async def test_a_sampled_access_log_logs_slow_calls_and_every_call_at_ratio_one(caplog):
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    servicer = UserService(keys)
    caplog.set_level("INFO", logger="emporium.access")
    metadata = [("authorization", f"Bearer {keys.sign(_claims())}")]
    for settings, expected in (({"access_log_sample": 0.0, "slow_call_ms": 0.0}, 3), ({}, 3)):
        caplog.clear()
        grpc_server, address = await _serve_logged(keys, servicer, **settings)
        async with grpc.aio.insecure_channel(address) as channel:
            users = user_service_pb2_grpc.UserServiceStub(channel)
            for _ in range(3):
                await users.GetMe(user_service_pb2.GetMeRequest(), metadata=metadata)
        await grpc_server.stop(0)
        lines = [r.getMessage() for r in caplog.records if r.name == "emporium.access"]
        assert len(lines) == expected, lines
        assert all("GetMe OK" in line for line in lines), lines


def test_production_samples_traces_and_access_logs_and_checks_the_ratios():
    from kit.config import ConfigError, TelemetrySettings

    env = {"EMPORIUM_ENV": "development"}
    assert ServerSettings.from_env("user", env).access_log_sample == 0.1
    assert TelemetrySettings.from_env("user", env).sample_ratio == 0.1
    every = {**env, "EMPORIUM_ACCESS_LOG_SAMPLE": "1"}
    assert ServerSettings.from_env("user", every).access_log_sample == 1
    with pytest.raises(ConfigError):
        ServerSettings.from_env("user", {**env, "EMPORIUM_ACCESS_LOG_SAMPLE": "1.5"})


async def test_a_watcher_that_goes_away_ends_its_stream_quietly(caplog):
    """A client that stops watching (cancels, or its connection drops) ends the stream as
    CANCELLED: no 'unhandled error', no abort of the finished call. gRPC leaves the abandoned
    generator to the garbage collector, which closes it from another task's context (the
    caller's context variables cannot be reset there), as the order service's WatchOrder
    showed under bench.checkout before it died of a segmentation fault."""
    import gc

    from emporium.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))

    class Orders(order_service_pb2_grpc.OrderServiceServicer):
        async def WatchOrder(self, request, context):
            # Big messages, no pause: the stream waits at `yield` for the client to read.
            while True:
                order = order_pb2.Order(id="x" * 100_000, state=order_pb2.Order.STATE_PENDING)
                yield order_service_pb2.WatchOrderResponse(order=order)

    grpc_server, port, metadata = await _order_server(keys, Orders())
    caplog.set_level(logging.INFO)
    for _ in range(5):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            call = stub.WatchOrder(order_service_pb2.WatchOrderRequest(id="o1"), metadata=metadata)
            await call.read()
            call.cancel()
        await asyncio.sleep(0.1)
        gc.collect()
        await asyncio.sleep(0.1)
    await grpc_server.stop(0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]
    ends = [r.getMessage() for r in caplog.records if "WatchOrder" in r.getMessage()]
    assert len(ends) == 5, ends
    assert all("CANCELLED" in line for line in ends), ends
