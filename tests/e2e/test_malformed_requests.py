"""Bad input tried as a new user would, across every service: wrong JSON types, overflowing
numbers, unknown enum names and parameters, broken, deep or non-object JSON, wrong content
types, bad UTF-8, huge paths, ids, page tokens and bodies. Every answer is a 4xx JSON
google.rpc.Status within 10 s (never a 429 or 5xx for input that can never succeed), and the
platform keeps serving."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

PASSWORD = "correct horse battery"
HUGE_ID = "a" * 5000
HUGE_TOKEN = "A" * 5000
DEEP = b"[" * 10_000 + b"]" * 10_000
JSON = "application/json"

# (path, who may list it)
LISTS = [
    ("/v1/orders", "shopper"),
    ("/v1/products", None),
    ("/v1/categories", None),
    ("/v1/shipments", "shopper"),
    ("/v1/payments", "shopper"),
    ("/v1/payment-methods", "shopper"),
    ("/v1/users/me/addresses", "shopper"),
    ("/v1/users", "admin"),
    ("/v1/shipping-rates", "admin"),
    ("/v1/reservations", "admin"),
]
# (path, who may post to it)
WRITES = [
    ("/v1/users:register", None),
    ("/v1/auth:login", None),
    ("/v1/cart/items", "shopper"),
    ("/v1/orders", "shopper"),
    ("/v1/payment-methods", "shopper"),
    ("/v1/users/me/addresses", "shopper"),
    ("/v1/shipping-options:quote", None),
    ("/v1/products", "admin"),
    ("/v1/categories", "admin"),
    ("/v1/shipping-rates", "admin"),
]
# (path with a huge id, who may read it)
ITEMS = [
    (f"/v1/orders/{HUGE_ID}", "shopper"),
    (f"/v1/products/{HUGE_ID}", None),
    (f"/v1/categories/{HUGE_ID}", None),
    (f"/v1/shipments/{HUGE_ID}", "shopper"),
    (f"/v1/payments/{HUGE_ID}", "shopper"),
    (f"/v1/payment-methods/{HUGE_ID}", "shopper"),
    (f"/v1/users/me/addresses/{HUGE_ID}", "shopper"),
    (f"/v1/users/{HUGE_ID}", "admin"),
    (f"/v1/shipping-rates/{HUGE_ID}", "admin"),
    (f"/v1/products/{HUGE_ID}/reviews", None),
]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    who: str | None = None
    body: bytes | None = None
    content_type: str | None = None


def _cases() -> list[Case]:
    cases: list[Case] = []
    for path, who in LISTS:
        cases += [
            Case(f"{path} overflowing page_size", "GET", f"{path}?page_size=1{'0' * 25}", who),
            Case(f"{path} negative page_size", "GET", f"{path}?page_size=-1", who),
            Case(f"{path} page_size that is a word", "GET", f"{path}?page_size=many", who),
            Case(f"{path} unknown parameter", "GET", f"{path}?colour=red", who),
            Case(f"{path} forged page_token", "GET", f"{path}?page_token=not-a-token", who),
            Case(f"{path} huge page_token", "GET", f"{path}?page_token={HUGE_TOKEN}", who),
        ]
    for path, who in WRITES:
        cases += [
            Case(f"{path} broken json", "POST", path, who, b'{"a": ', JSON),
            Case(f"{path} json that is not an object", "POST", path, who, b"[1, 2]", JSON),
            Case(f"{path} deeply nested json", "POST", path, who, DEEP, JSON),
            Case(f"{path} bad utf-8", "POST", path, who, b'{"request_id": "\xff\xfe"}', JSON),
            Case(f"{path} wrong type", "POST", path, who, b'{"request_id": {"a": 1}}', JSON),
            Case(f"{path} plain text", "POST", path, who, b"hello", "text/plain"),
            Case(f"{path} huge body", "POST", path, who, b" " * (12 * 2**20 + 1), JSON),
        ]
    for path, who in ITEMS:
        cases.append(Case(f"huge id in {path[:24]}", "GET", path, who))
    cases += [
        Case("unknown order state", "GET", "/v1/orders?state=STATE_FLYING", "shopper"),
        Case("unknown shipment state", "GET", "/v1/shipments?state=LOST_AT_SEA", "shopper"),
        Case("unknown payment state", "GET", "/v1/payments?state=MAYBE", "shopper"),
        Case("unknown role", "GET", "/v1/users?role=ROLE_KING", "admin"),
        Case("a number for a password", "POST", "/v1/users/me:changePassword", "shopper",
             b'{"current_password": 1}', JSON),
        Case("a wrong-typed quantity", "POST", "/v1/cart/items", "shopper",
             b'{"product_id": "p", "quantity": "many"}', JSON),
        Case("an overflowing quantity", "POST", "/v1/cart/items", "shopper",
             b'{"product_id": "p", "quantity": 99999999999999999999}', JSON),
        Case("a huge path", "GET", "/v1/orders/" + "a" * 20_000, "shopper"),
        Case("an unknown path", "GET", "/v1/no-such-thing"),
        Case("an unknown method", "PUT", "/v1/orders", "shopper", b"{}", JSON),
    ]  # fmt: skip
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def api(gateway_url: str, service_address: Callable[[str], str]) -> Iterator[httpx.Client]:
    for name in ("user", "catalog", "cart", "order", "payment", "shipping"):
        service_address(name)  # fails (in CI) unless every service is up
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(api: httpx.Client) -> dict[str, str]:
    email = f"malformed-{uuid.uuid4().hex[:12]}@example.com"
    api.post("/v1/users:register", json={"email": email, "password": PASSWORD, "display_name": "M"})
    shopper = api.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
    admin = api.post(
        "/v1/auth:login", json={"email": "admin@example.com", "password": "emporium-admin-dev"}
    )
    return {"shopper": shopper.json()["access_token"], "admin": admin.json()["access_token"]}


def test_there_are_at_least_sixty_cases_across_the_services():
    assert len(CASES) >= 60
    print(f"{len(CASES)} malformed requests")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_malformed_request_gets_a_4xx_json_status_quickly(api, tokens, case):
    headers = {}
    if case.who:
        headers["authorization"] = f"Bearer {tokens[case.who]}"
    if case.content_type:
        headers["content-type"] = case.content_type
    started = time.monotonic()
    reply = api.request(case.method, case.path, content=case.body, headers=headers)
    took = time.monotonic() - started

    assert took < 10
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
    assert reply.status_code not in (401, 429), reply.text[:300]
    assert reply.headers["content-type"].startswith("application/json"), reply.text[:300]
    status = reply.json()
    assert isinstance(status["code"], int)
    assert status["code"] > 0
    assert isinstance(status["message"], str)
    assert len(reply.content) < 20 * 1024  # bounded, whatever the input's size


def test_the_platform_keeps_serving_after_the_malformed_requests(api, tokens):
    shopper = {"authorization": f"Bearer {tokens['shopper']}"}
    assert api.get("/v1/products").status_code == 200
    assert api.get("/v1/users/me", headers=shopper).status_code == 200
    assert api.get("/v1/orders", headers=shopper).status_code == 200
    assert api.get("/v1/cart", headers=shopper).status_code == 200
