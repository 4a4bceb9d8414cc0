"""Revocation that bites: once an admin disables a user, that user's access token gets 401 /
UNAUTHENTICATED from every service within 5 s, through the gateway and directly."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from emporium.cart.v1 import cart_service_pb2
from emporium.catalog.v1 import catalog_service_pb2
from emporium.order.v1 import order_service_pb2
from emporium.payment.v1 import payment_service_pb2
from emporium.shipping.v1 import shipping_service_pb2
from emporium.user.v1 import user_service_pb2
from google.protobuf.message import Message

PASSWORD = "correct horse battery"
DEADLINE_SECONDS = 5.0


@dataclass(frozen=True)
class Probe:
    """One call a signed-in customer may make on a service, over REST and over gRPC."""

    service: str
    http_method: str
    path: str
    grpc_method: str
    request: Message


PROBES = [
    Probe(
        "user", "GET", "/v1/users/me",
        "/emporium.user.v1.UserService/GetMe", user_service_pb2.GetMeRequest(),
    ),
    Probe(
        "catalog", "POST", f"/v1/products/{uuid.uuid4()}/reviews",
        "/emporium.catalog.v1.CatalogService/PostReview",
        catalog_service_pb2.PostReviewRequest(product_id=str(uuid.uuid4())),
    ),
    Probe(
        "cart", "GET", "/v1/cart",
        "/emporium.cart.v1.CartService/GetCart", cart_service_pb2.GetCartRequest(),
    ),
    Probe(
        "order", "GET", "/v1/orders",
        "/emporium.order.v1.OrderService/ListOrders", order_service_pb2.ListOrdersRequest(),
    ),
    Probe(
        "payment", "GET", "/v1/payment-methods",
        "/emporium.payment.v1.PaymentService/ListPaymentMethods",
        payment_service_pb2.ListPaymentMethodsRequest(),
    ),
    Probe(
        "shipping", "GET", "/v1/shipments",
        "/emporium.shipping.v1.ShippingService/ListShipments",
        shipping_service_pb2.ListShipmentsRequest(),
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def api(gateway_url: str, service_address: Callable[[str], str]) -> Iterator[httpx.Client]:
    for probe in PROBES:
        service_address(probe.service)  # fails (in CI) unless every service is up
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def _rest_code(api: httpx.Client, probe: Probe, token: str) -> int:
    body = {} if probe.http_method == "POST" else None
    reply = api.request(
        probe.http_method, probe.path, json=body, headers={"authorization": f"Bearer {token}"}
    )
    return reply.status_code


def _grpc_code(address: str, probe: Probe, token: str) -> grpc.StatusCode:
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        call = channel.unary_unary(
            probe.grpc_method, request_serializer=lambda m: m.SerializeToString()
        )
        try:
            call(probe.request, metadata=[("authorization", f"Bearer {token}")], timeout=10)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_a_disabled_users_token_gets_401_on_every_service_within_5_s(api, service_address):
    email = f"revoked-{uuid.uuid4().hex[:12]}@example.com"
    user = api.post(
        "/v1/users:register", json={"email": email, "password": PASSWORD, "display_name": "Ann"}
    ).json()
    token = api.post("/v1/auth:login", json={"email": email, "password": PASSWORD}).json()[
        "access_token"
    ]
    admin_token = api.post(
        "/v1/auth:login", json={"email": "admin@example.com", "password": "emporium-admin-dev"}
    ).json()["access_token"]
    addresses = {p.service: service_address(p.service) for p in PROBES}
    for probe in PROBES:  # accepted before (whatever else the call answers)
        assert _rest_code(api, probe, token) != 401, probe.service
        code = _grpc_code(addresses[probe.service], probe, token)
        assert code != grpc.StatusCode.UNAUTHENTICATED, probe.service

    disabled = api.post(
        f"/v1/users/{user['id']}:disable",
        json={"reason": "revocation e2e"},
        headers={"authorization": f"Bearer {admin_token}"},
    )
    assert disabled.status_code == 200, disabled.text
    start = time.monotonic()
    pending = {(p.service, way) for p in PROBES for way in ("gateway", "direct")}
    took: dict[tuple[str, str], float] = {}
    while pending and time.monotonic() - start < DEADLINE_SECONDS + 5:
        for probe in PROBES:
            if (probe.service, "gateway") in pending and _rest_code(api, probe, token) == 401:
                took[(probe.service, "gateway")] = time.monotonic() - start
                pending.discard((probe.service, "gateway"))
            if (probe.service, "direct") in pending and (
                _grpc_code(addresses[probe.service], probe, token)
                == grpc.StatusCode.UNAUTHENTICATED
            ):
                took[(probe.service, "direct")] = time.monotonic() - start
                pending.discard((probe.service, "direct"))
        time.sleep(0.1)
    print("revocation took (s):", {f"{s}/{w}": round(t, 2) for (s, w), t in sorted(took.items())})
    assert not pending, f"still accepted: {sorted(pending)}"
    assert max(took.values()) <= DEADLINE_SECONDS
