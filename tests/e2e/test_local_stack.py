"""The local stack itself: every server answers its own protocol, and Envoy serves its pages."""

from __future__ import annotations

import urllib.request

import pytest

from gateway import render
from tests.integration.conftest import servers

SERVERS = ["rabbitmq", "cassandra", "mongo", "opensearch", "redis", "versitygw", "mailpit"]
no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.mark.parametrize("name", SERVERS)
def test_the_server_answers_a_protocol_request(name: str) -> None:
    servers()[name].require()


def test_the_gateway_answers_its_health_check(gateway_url: str) -> None:
    with no_proxy.open(f"{gateway_url}/healthz", timeout=5) as response:
        assert response.status == 200
        assert response.read() == b"ok\n"


def test_the_gateway_serves_the_openapi_document(gateway_url: str) -> None:
    with no_proxy.open(f"{gateway_url}/openapi.yaml", timeout=5) as response:
        assert response.status == 200
        body = response.read().decode()
    assert body == render.OPENAPI_YAML.read_text()  # the generated document, as committed
    assert "/v1/users:register:" in body
