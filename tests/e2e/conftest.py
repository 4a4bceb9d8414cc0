"""Fixtures of the end-to-end tier: the whole stack, called as a client would, through Envoy.

The stack is the local one (`make run` / `make stack-up`; `make test` and `make test-e2e` start
what is missing and stop it afterwards). Ports come from the environment as the stack sets them
(EMPORIUM_GATEWAY_PORT, EMPORIUM_<NAME>_GRPC_PORT; defaults in gateway/services.yaml). The tools:
grpcurl (EMPORIUM_GRPCURL, else .tools/grpcurl-*/grpcurl or PATH; `make e2e-tools`) and Chromium
(EMPORIUM_CHROMIUM, else /usr/bin/chromium).

As in tests/integration, whatever is missing skips the test on a laptop and fails it in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import render
from tests.integration.conftest import (  # the same servers' fixtures and CI rule
    check_http,
    local_servers,
    mailpit_url,
    pytest_runtest_makereport,
    rabbitmq_url,
    servers,
    unavailable,
)

__all__ = ["local_servers", "mailpit_url", "pytest_runtest_makereport", "rabbitmq_url", "servers"]

ROOT = Path(__file__).resolve().parents[2]


def existing_services() -> list[str]:
    """The services that exist (services/<name>/__main__.py), which the stack runs."""
    return [
        s.name
        for s in render.load().services
        if (ROOT / "services" / s.name / "__main__.py").is_file()
    ]


@pytest.fixture(scope="session")
def gateway() -> render.Gateway:
    """services.yaml with this environment's ports; Envoy's /healthz checked to answer."""
    gw = render.load()
    why = check_http(f"http://127.0.0.1:{gw.port}/healthz")
    if why is not None:
        unavailable("The gateway (Envoy)", why)
    return gw


@pytest.fixture(scope="session")
def gateway_url(gateway: render.Gateway) -> str:
    return f"http://127.0.0.1:{gateway.port}"


@pytest.fixture(scope="session")
def service_address() -> Callable[[str], str]:
    """host:port of a running service, checked with the gRPC health protocol (SERVING)."""

    def address(name: str) -> str:
        what = f"The {name} service"
        if name not in existing_services():
            unavailable(what, f"services/{name}/__main__.py does not exist yet")
        target = f"127.0.0.1:{render.load().service(name).port}"
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
                failure = None
            except grpc.RpcError as error:
                failure = error.code().name
        if failure is not None:
            unavailable(what, f"the health check on {target} failed: {failure}")
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            unavailable(what, f"{target} reports {status}")
        return target

    return address


@pytest.fixture(scope="session")
def grpcurl() -> str:
    """The grpcurl binary (`make e2e-tools` installs it into .tools)."""
    candidates = [
        os.environ.get("EMPORIUM_GRPCURL", ""),
        *sorted(str(p) for p in ROOT.glob(".tools/grpcurl-*/grpcurl")),
        shutil.which("grpcurl") or "",
    ]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if found is None:
        unavailable("grpcurl", "not installed (make e2e-tools)")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary the browser tests drive (`make e2e-tools` installs Debian's)."""
    path = os.environ.get("EMPORIUM_CHROMIUM") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        unavailable("Chromium", f"no executable at {path} (make e2e-tools)")
    return path
