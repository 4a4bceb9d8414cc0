"""grpcurl, as a developer would use it: services listed by reflection, directly and via Envoy."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from gateway import render
from tests.e2e.conftest import existing_services


def grpcurl_out(grpcurl: str, *args: str) -> str:
    """grpcurl's output; the test fails with its stderr when it fails."""
    # No proxy for loopback, whatever the environment says.
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(
        [grpcurl, "-plaintext", "-max-time", "15", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 0, f"grpcurl {' '.join(args)} failed: {done.stderr.strip()}"
    return done.stdout


def test_grpcurl_lists_every_service_through_the_gateway(
    gateway: render.Gateway, grpcurl: str, service_address: Callable[[str], str]
) -> None:
    service_address(gateway.reflection_service)  # the server that answers reflection via Envoy
    listed = set(grpcurl_out(grpcurl, f"127.0.0.1:{gateway.port}", "list").split())
    expected = {s.proto_service for s in gateway.services}
    assert expected <= listed, f"missing from reflection: {sorted(expected - listed)}"


def test_grpcurl_describes_services_and_messages_through_the_gateway(
    gateway: render.Gateway, grpcurl: str, service_address: Callable[[str], str]
) -> None:
    service_address(gateway.reflection_service)
    address = f"127.0.0.1:{gateway.port}"
    user = grpcurl_out(grpcurl, address, "describe", "emporium.user.v1.UserService")
    assert "rpc Register ( .emporium.user.v1.RegisterRequest )" in user
    # Another service's contract, reflected by the user service even when that one is not up.
    order = grpcurl_out(grpcurl, address, "describe", "emporium.order.v1.OrderService")
    assert "rpc PlaceOrder (" in order
    request = grpcurl_out(grpcurl, address, "describe", "emporium.user.v1.RegisterRequest")
    assert "string email = " in request


def test_grpcurl_describes_a_method_through_the_gateway(
    gateway: render.Gateway, grpcurl: str, service_address: Callable[[str], str]
) -> None:
    # grpcio's reflection alone cannot (grpc/grpc#34743); kit.server.MethodAwareReflection can.
    service_address(gateway.reflection_service)
    method = grpcurl_out(
        grpcurl,
        f"127.0.0.1:{gateway.port}",
        "describe",
        "emporium.order.v1.OrderService.PlaceOrder",
    )
    assert "is a method:" in method
    assert "rpc PlaceOrder ( .emporium.order.v1.PlaceOrderRequest )" in method


@pytest.mark.parametrize("name", existing_services() or ["user"])
def test_grpcurl_lists_a_service_on_its_own_port(
    name: str, gateway: render.Gateway, grpcurl: str, service_address: Callable[[str], str]
) -> None:
    listed = grpcurl_out(grpcurl, service_address(name), "list").split()
    assert gateway.service(name).proto_service in listed
    assert "grpc.health.v1.Health" in listed


@pytest.mark.parametrize("name", existing_services() or ["user"])
def test_grpcurl_describes_each_method_of_a_service_on_its_own_port(
    name: str, gateway: render.Gateway, grpcurl: str, service_address: Callable[[str], str]
) -> None:
    address = service_address(name)
    prefix = gateway.service(name).grpc_prefix
    methods = [
        path.removeprefix(prefix)
        for path in render._rpcs(render.DESCRIPTOR)
        if path.startswith(prefix)
    ]
    assert methods
    for method in methods:
        out = grpcurl_out(grpcurl, address, "describe", f"{prefix.strip('/')}.{method}")
        assert f"rpc {method} (" in out
