"""Webhooks end to end (issue 13): the real stack, REST through Envoy, receivers on 127.0.0.1.

The local stack's webhooks service allows 127.0.0.0/8 over http and retries after 1, 2, 4, 8
and 16 s (infra/local/stack.py, LOCAL_WEBHOOKS). Other tests publish events at the same time,
so each test subscribes to the types it needs and matches its own ids in the payloads.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.checkout_support import (
    SERVICES,
    Shopper,
    admin_headers,
    ok,
    product,
    shipping_option,
    violations,
)
from tests.e2e.webhook_support import Receiver, Webhooks, until

PRODUCT_CREATED = "emporium.catalog.v1.ProductCreated"


@pytest.fixture(scope="module")
def api(gateway_url, service_address):
    for name in (*SERVICES, "webhooks"):
        service_address(name)
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def admin(api) -> dict[str, str]:
    return admin_headers(api)


@pytest.fixture
def hooks(api, admin):
    webhooks = Webhooks(api, admin)
    yield webhooks
    webhooks.delete_all()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(*args, **kwargs) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_order_and_payment_events_are_delivered_once_each_and_signed(api, admin, hooks, receivers):
    receiver = receivers()
    types = hooks.event_types("order") + hooks.event_types("payment")
    assert "emporium.order.v1.OrderPlaced" in types
    assert "emporium.payment.v1.PaymentSucceeded" in types
    endpoint = hooks.create(receiver.url, types, description="ERP order import")
    assert endpoint["secret"].startswith("whsec_")
    ann = Shopper(api)
    card = ann.card()
    teapot = product(api, admin, stock=3)
    placed = ok(
        ann.place(
            items=[{"product_id": teapot["id"], "quantity": 1}],
            shipping_option_id=shipping_option(api, teapot["id"]),
            payment_method_id=card,
        )
    )
    ann.until(
        placed["id"], lambda o: o["state"] in ("STATE_PAID", "STATE_SHIPPED", "STATE_DELIVERED")
    )
    wanted = {
        "emporium.order.v1.OrderPlaced",
        "emporium.order.v1.OrderConfirmed",
        "emporium.payment.v1.PaymentSucceeded",
    }

    def got() -> list:
        mine = receiver.payloads(endpoint["secret"], {"order_id": placed["id"]})
        return mine if wanted <= {data["type"] for _, data in mine} else []

    mine = until(got, 60, "the order's events at the receiver")
    time.sleep(2)  # anything sent twice would arrive by now
    mine = receiver.payloads(endpoint["secret"], {"order_id": placed["id"]})
    ids = Counter(headers["webhook-id"] for headers, _ in mine)
    assert all(n == 1 for n in ids.values()), ids
    assert all(set(data) == {"type", "timestamp", "data"} for _, data in mine)
    placed_event = next(d for _, d in mine if d["type"] == "emporium.order.v1.OrderPlaced")
    assert placed_event["data"]["user_id"]  # proto field names, not lowerCamelCase
    deliveries = hooks.deliveries(endpoint["id"])
    ours = [d for d in deliveries if d["event_id"] in ids]
    assert {d["state"] for d in ours} == {"STATE_SUCCEEDED"}
    assert all(len(d["attempts"]) == 1 for d in ours)


def test_two_failures_then_success_are_three_recorded_attempts(api, admin, hooks, receivers):
    receiver = receivers(lambda webhook_id, nth: 500 if nth <= 2 else 200)
    endpoint = hooks.create(receiver.url, [PRODUCT_CREATED])
    made = product(api, admin, stock=0)

    def done() -> dict | None:
        listed = hooks.deliveries(endpoint["id"], event_type=PRODUCT_CREATED)
        for d in listed:
            full = hooks.delivery(d["id"])
            if full["state"] == "STATE_SUCCEEDED" and made["id"] in full["payload"]:
                return full
        return None

    delivery = until(done, 60, "the third attempt")
    attempts = delivery["attempts"]
    print("attempts:", [(a["response_status_code"], a["latency"]) for a in attempts])
    assert [a["response_status_code"] for a in attempts] == [500, 500, 200]
    assert all(a["latency"].endswith("s") and float(a["latency"][:-1]) > 0 for a in attempts)
    assert all(a["attempt_time"] for a in attempts)


def test_410_gone_disables_the_endpoint_and_nothing_more_is_sent(api, admin, hooks, receivers):
    receiver = receivers(lambda webhook_id, nth: 410)
    endpoint = hooks.create(receiver.url, [PRODUCT_CREATED])
    product(api, admin, stock=0)
    until(lambda: hooks.endpoint(endpoint["id"])["state"] == "STATE_DISABLED", 30, "disabled")
    before = len(receiver.requests)
    product(api, admin, stock=0)
    time.sleep(3)
    assert before >= 1
    assert len(receiver.requests) == before


def test_after_a_rotation_deliveries_carry_two_signatures_each_verifying(
    api, admin, hooks, receivers
):
    receiver = receivers()
    endpoint = hooks.create(receiver.url, [PRODUCT_CREATED])
    rotated = ok(
        api.post(
            f"/v1/webhooks/endpoints/{endpoint['id']}:rotateSecret",
            json={"previous_secret_ttl": "3600s"},
            headers=admin,
        )
    )
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expire_time"]
    made = product(api, admin, stock=0)
    [(headers, _)] = until(
        lambda: receiver.payloads(rotated["secret"], {"product.id": made["id"]}), 30
    )
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    body = next(r["body"] for r in receiver.requests if r["headers"] == headers)
    for secret, signature in zip((rotated["secret"], endpoint["secret"]), signatures, strict=True):
        Webhook(secret).verify(body, {**headers, "webhook-signature": signature})


# Refused on the stack too, whose guard allows only 127.0.0.0/8 (and http); no case needs DNS.
SSRF_CASES = [
    "https://10.0.0.5/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://2130706433/",
    "https://0177.0.0.1/",
    "https://0x7f.0.0.1/",
    "https://0x7f000001/",
    "https://127.1/",
    "https://0xA9FEA9FE/",
    "https://2852039166/",
    "https://[::1]/",
    "https://[::]/",
    "https://[fe80::1]/",
    "https://[fd12:3456::1]/",
    "https://[ff02::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:a9fe:a9fe]/",
    "https://[64:ff9b::a00:1]/",
    "https://[2002:a00:1::]/",
    "https://user:pass@127.0.0.1/",
    "https://example.com@10.0.0.1/",
    "https://localhost/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata/",
    "https://db.internal/",
    "ftp://127.0.0.1/",
    "file:///etc/passwd",
]


def test_unsafe_urls_are_refused_with_400_naming_url(api, admin, hooks):
    assert len(SSRF_CASES) >= 30
    for url in SSRF_CASES:
        reply = api.post(
            "/v1/webhooks/endpoints",
            json={"url": url, "event_types": ["*"]},
            headers=admin,
        )
        assert reply.status_code == 400, (url, reply.status_code, reply.text)
        assert violations(reply) == ["url"], (url, reply.text)
    listed = ok(api.get("/v1/webhooks/endpoints", params={"page_size": 100}, headers=admin))
    assert not {e["url"] for e in listed.get("webhook_endpoints", [])} & set(SSRF_CASES)


def test_a_redirect_is_a_failed_attempt_and_not_followed(api, admin, hooks, receivers):
    receiver = receivers(lambda webhook_id, nth: 302)
    endpoint = hooks.create(receiver.url, [PRODUCT_CREATED])
    made = product(api, admin, stock=0)

    def failed_once() -> dict | None:
        for d in hooks.deliveries(endpoint["id"]):
            if made["id"] in d["payload"] and d["attempts"]:
                return d
        return None

    delivery = until(failed_once, 30)
    assert delivery["attempts"][0]["response_status_code"] == 302
    assert delivery["state"] in ("STATE_RETRYING", "STATE_PENDING")


def test_a_slow_receiver_does_not_delay_a_fast_one(api, admin, hooks, receivers):
    slow = receivers(delay=10)
    fast = receivers()
    hooks.create(slow.url, [PRODUCT_CREATED])
    fast_endpoint = hooks.create(fast.url, [PRODUCT_CREATED])
    made = [product(api, admin, stock=0)["id"] for _ in range(10)]  # over the per-endpoint cap (8)

    def fast_has_all() -> bool:
        ids = {d["data"]["product"]["id"] for _, d in fast.payloads(fast_endpoint["secret"])}
        return set(made) <= ids

    until(fast_has_all, 60, "every delivery at the fast receiver")
    slow_answered = len(slow.requests)
    # Event happened (payload timestamp) -> the fast receiver had it, for each of the ten.
    latencies = []
    for request in fast.requests:
        data = json.loads(request["body"])
        if data["data"]["product"]["id"] in made:
            happened = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
            latencies.append(request["arrived_wall"] - happened.timestamp())
    print(
        f"fast receiver: event -> delivered max {max(latencies):.2f} s;"
        f" slow answered {slow_answered}"
    )
    assert max(latencies) < 10  # none waited for the slow receiver's 10 s
    # ... and each reached the fast receiver before the slow one had answered it.
    webhook_ids = {r["headers"]["webhook-id"]: r["arrived"] for r in fast.requests}
    for answered in slow.requests:
        fast_arrival = webhook_ids.get(answered["headers"]["webhook-id"])
        if fast_arrival is not None:
            assert fast_arrival < answered["answered"]


RPCS = [
    ("post", "/v1/webhooks/endpoints", {"url": "https://a.example.com/", "event_types": ["*"]}),
    ("get", "/v1/webhooks/endpoints", None),
    ("get", "/v1/webhooks/endpoints/x", None),
    ("patch", "/v1/webhooks/endpoints/x", {"description": "d"}),
    ("delete", "/v1/webhooks/endpoints/x", None),
    ("post", "/v1/webhooks/endpoints/x:rotateSecret", {}),
    ("post", "/v1/webhooks/endpoints/x:sendTest", {}),
    ("post", "/v1/webhooks/endpoints/x:redeliverFailed", {"start_time": "2026-01-01T00:00:00Z"}),
    ("get", "/v1/webhooks/event-types", None),
    ("get", "/v1/webhooks/endpoints/x/deliveries", None),
    ("get", "/v1/webhooks/deliveries/x", None),
    ("post", "/v1/webhooks/deliveries/x:redeliver", {}),
]


def test_a_shopper_gets_403_and_no_token_401_on_every_webhooks_rpc(api):
    shopper = Shopper(api)
    for method, path, body in RPCS:
        kwargs = {"json": body} if body is not None else {}
        denied = api.request(method, path, headers=shopper.headers, **kwargs)
        assert denied.status_code == 403, (method, path, denied.text)
        anonymous = api.request(method, path, **kwargs)
        assert anonymous.status_code == 401, (method, path, anonymous.text)


def test_an_admin_sends_a_test_webhook_and_redelivers_it(api, admin, hooks, receivers):
    receiver = receivers()
    endpoint = hooks.create(receiver.url, [PRODUCT_CREATED], description=str(uuid.uuid4()))
    sent = ok(api.post(f"/v1/webhooks/endpoints/{endpoint['id']}:sendTest", json={}, headers=admin))
    assert (sent["test"], sent["state"]) == (True, "STATE_SUCCEEDED")
    [(headers, data)] = receiver.payloads(endpoint["secret"])
    assert data["type"] == PRODUCT_CREATED
    again = ok(api.post(f"/v1/webhooks/deliveries/{sent['id']}:redeliver", json={}, headers=admin))
    assert again["state"] == "STATE_PENDING"
    until(lambda: len(receiver.requests) == 2, 30, "the redelivery")
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {headers["webhook-id"]}
