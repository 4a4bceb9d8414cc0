"""The example clients in other languages (clients/node, clients/go) place an order through the
gateway over gRPC: register, sign in, browse, card, shipping quote, PlaceOrder, WatchOrder until
delivered. `make clients` builds them (npm ci; stubs generated from protos/, go build)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from gateway import render
from tests.e2e.checkout_support import SERVICES, admin_headers, ok
from tests.integration.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
GO_CLIENT = ROOT / ".tools/emporium-go-client"


@pytest.fixture(scope="module")
def api(gateway_url, service_address):
    for name in SERVICES:
        service_address(name)
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
def product_query(api: httpx.Client) -> str:
    """A word that finds exactly one new, published product with stock."""
    word = f"kettle{secrets.token_hex(4)}"
    admin = admin_headers(api)
    body = {
        "sku": f"E2E-CLIENT-{word.upper()}",
        "title": f"Client {word}",
        "price": {"currency_code": "USD", "units": "15", "nanos": 0},
        "weight_grams": 700,
        "state": "STATE_DRAFT",
    }
    created = ok(
        api.post("/v1/products", params={"request_id": str(uuid.uuid4())}, json=body, headers=admin)
    )
    ok(api.post(f"/v1/products/{created['id']}:publish", json={}, headers=admin))
    ok(
        api.post(
            f"/v1/products/{created['id']}/stock:adjust",
            json={"request_id": str(uuid.uuid4()), "delta": 10, "reason": "REASON_RESTOCK"},
            headers=admin,
        )
    )
    return word


def _run(command: list[str], gateway: render.Gateway, query: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env |= {"EMPORIUM_GATEWAY": f"127.0.0.1:{gateway.port}", "EMPORIUM_PRODUCT_QUERY": query}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_node_client_places_an_order_and_watches_it_delivered(
    gateway: render.Gateway, product_query: str
) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "clients/node/node_modules/@grpc/grpc-js").is_dir():
        unavailable("The Node client", "node or clients/node/node_modules missing: make clients")
    out = _run([node, "place_order.js"], gateway, product_query, ROOT / "clients/node")
    assert f"buying Client {product_query}" in out
    assert "STATE_PAID" in out
    assert out.rstrip().endswith("delivered")


def test_the_go_client_places_an_order_and_watches_it_delivered(
    gateway: render.Gateway, product_query: str
) -> None:
    if not GO_CLIENT.is_file():
        unavailable("The Go client", f"{GO_CLIENT} is not built: make clients")
    out = _run([str(GO_CLIENT)], gateway, product_query, ROOT / "clients/go")
    assert f"buying Client {product_query}" in out
    assert "STATE_PAID" in out
    assert out.rstrip().endswith("delivered")
