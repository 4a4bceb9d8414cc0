"""The catalog end to end: REST and gRPC through Envoy to the catalog service on Cassandra.

Tokens come from real sign-ins at the user service: the development admin
(admin@example.com, as `make run` creates it) and freshly registered shoppers.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import grpc
import httpx
import pytest
from emporium.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import render
from services.user.config import AdminSettings
from tests.integration.conftest import check_http

PASSWORD = "correct horse battery"


def _serving(name: str, port: int) -> None:
    """Fails the test unless the service answers its gRPC health check with SERVING."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]) as ch:
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            pytest.fail(f"the {name} service on {port} is not serving: {error.code().name}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        pytest.fail(f"the {name} service on {port} is not serving")


@pytest.fixture(scope="module")
def gateway() -> render.Gateway:
    """The gateway of this environment; a stack that is not up fails the tests (no skip)."""
    gw = render.load()
    why = check_http(f"http://127.0.0.1:{gw.port}/healthz")
    if why is not None:
        pytest.fail(f"the gateway is not reachable: {why}; run under infra/local/stack with")
    for name in ("user", "catalog"):
        _serving(name, gw.service(name).port)
    return gw


@pytest.fixture(scope="module")
def api(gateway) -> httpx.Client:
    with httpx.Client(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def admin(api) -> dict[str, str]:
    response = api.post(
        "/v1/auth:login",
        json={
            "email": AdminSettings.DEVELOPMENT_EMAIL,
            "password": AdminSettings.DEVELOPMENT_PASSWORD,
        },
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


@pytest.fixture(scope="module")
def shopper(api) -> dict[str, str]:
    email = f"e2e-{secrets.token_hex(6)}@example.com"
    registered = api.post(
        "/v1/users:register", json={"email": email, "password": PASSWORD, "display_name": "Ann"}
    )
    assert registered.status_code == 200, registered.text
    tokens = api.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
    return bearer(tokens.json()["access_token"])


def violations(response: httpx.Response) -> list[str]:
    fields = []
    for detail in response.json().get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            fields += [v["field"] for v in detail["field_violations"]]
    return fields


def create(api: httpx.Client, headers: dict[str, str], **fields: Any) -> httpx.Response:
    body = {
        "sku": f"E2E-{secrets.token_hex(5)}",
        "title": "Desk lamp",
        "price": {"currency_code": "USD", "units": "25"},
        **fields,
    }
    return api.post(
        "/v1/products", params={"request_id": str(uuid.uuid4())}, json=body, headers=headers
    )


def every_page(api: httpx.Client, params: dict[str, Any], **kw: Any) -> list[dict]:
    products, token = [], ""
    while True:
        response = api.get("/v1/products", params={**params, "page_token": token}, **kw)
        assert response.status_code == 200, response.text
        products += response.json().get("products", [])
        token = response.json().get("next_page_token", "")
        if not token:
            return products


def test_an_admin_creates_a_product_over_rest_and_anyone_gets_it(api, admin):
    created = create(api, admin, attributes={"color": "green"})
    assert created.status_code == 200, created.text
    product = created.json()
    assert product["state"] == "STATE_ACTIVE"
    got = api.get(f"/v1/products/{product['id']}")
    assert got.status_code == 200, got.text
    assert (got.json()["title"], got.json()["attributes"]) == ("Desk lamp", {"color": "green"})


def test_a_shopper_creating_a_product_gets_403(api, shopper):
    response = create(api, shopper)
    assert response.status_code == 403, response.text


def test_creating_without_a_token_gets_401(api):
    assert create(api, {}).status_code == 401


def test_shoppers_list_filter_and_search_only_active_products(api, admin):
    word = f"zq{secrets.token_hex(4)}"
    category = api.post(
        "/v1/categories",
        json={"name": "Lamps", "slug": f"lamps-{secrets.token_hex(4)}"},
        headers=admin,
    )
    assert category.status_code == 200, category.text
    cat = category.json()["id"]
    cheap = create(
        api, admin, title=f"Cheap {word}", price={"units": "10"}, category_ids=[cat]
    ).json()
    dear = create(
        api,
        admin,
        title=f"Dear {word}",
        price={"currency_code": "USD", "units": "80", "nanos": 500000000},
        category_ids=[cat],
    ).json()
    create(api, admin, title=f"Draft {word}", state="STATE_DRAFT", category_ids=[cat])

    in_category = every_page(api, {"category_id": cat, "sort_order": "SORT_ORDER_PRICE_ASCENDING"})
    assert [p["id"] for p in in_category] == [cheap["id"], dear["id"]]
    priced = every_page(api, {"query": word, "min_price.units": 50, "max_price.units": 100})
    assert [p["id"] for p in priced] == [dear["id"]]
    searched = every_page(api, {"query": f"cheap {word}"})
    assert [p["id"] for p in searched] == [cheap["id"]]
    as_admin = every_page(api, {"category_id": cat}, headers=admin)
    assert len(as_admin) == 3
    drafts = api.get("/v1/products", params={"state": "STATE_DRAFT"})
    assert drafts.status_code == 403


def test_paging_returns_every_product_exactly_once(api, admin):
    word = f"pg{secrets.token_hex(4)}"
    made = {create(api, admin, title=f"Page {word} {i}").json()["id"] for i in range(7)}
    seen, token = [], ""
    while True:
        page = api.get("/v1/products", params={"query": word, "page_size": 3, "page_token": token})
        assert page.status_code == 200, page.text
        seen += [p["id"] for p in page.json().get("products", [])]
        # A product added mid-walk must not shift the pages.
        create(api, admin, title=f"Late {word}")
        token = page.json().get("next_page_token", "")
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert made <= set(seen)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": {"currency_code": "USD", "units": "-5"}}, "product.price.units"),
        ({"title": ""}, "product.title"),
        ({"price": {"currency_code": "ABC", "units": "5"}}, "product.price.currency_code"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(api, admin, fields, field):
    sku = f"BAD-{secrets.token_hex(5)}"
    response = create(api, admin, sku=sku, **fields)
    assert response.status_code == 400, response.text
    assert field in violations(response)
    assert every_page(api, {"query": sku}, headers=admin) == []


def test_get_and_batch_get_over_grpc_through_the_gateway(api, admin, gateway):
    a = create(api, admin).json()
    b = create(api, admin).json()
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        got = stub.GetProduct(catalog_service_pb2.GetProductRequest(id=a["id"]))
        assert got.sku == a["sku"]
        batch = stub.BatchGetProducts(
            catalog_service_pb2.BatchGetProductsRequest(ids=[b["id"], a["id"]])
        )
        assert [p.id for p in batch.products] == [b["id"], a["id"]]
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetProduct(catalog_service_pb2.GetProductRequest(id=str(uuid.uuid4())))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_stock_is_reserved_and_released_over_rest(api, admin):
    product = create(api, admin).json()
    adjusted = api.post(
        f"/v1/products/{product['id']}/stock:adjust",
        json={"request_id": str(uuid.uuid4()), "delta": 3, "reason": "REASON_RESTOCK"},
        headers=admin,
    )
    assert adjusted.status_code == 200, adjusted.text
    order = f"e2e-{secrets.token_hex(4)}"
    reserved = api.post(
        "/v1/reservations",
        json={"order_id": order, "lines": [{"product_id": product["id"], "quantity": 2}]},
        headers=admin,
    )
    assert reserved.status_code == 200, reserved.text
    assert reserved.json()["state"] == "STATE_ACTIVE"
    public = api.get(f"/v1/products/{product['id']}/stock").json()
    assert public["available_quantity"] == 1
    short = api.post(
        "/v1/reservations",
        json={"order_id": order + "b", "lines": [{"product_id": product["id"], "quantity": 2}]},
        headers=admin,
    )
    assert short.status_code == 400, short.text  # FAILED_PRECONDITION
    released = api.post(f"/v1/reservations/{order}:release", json={}, headers=admin)
    assert released.json()["state"] == "STATE_RELEASED"
    assert api.get(f"/v1/products/{product['id']}/stock").json()["available_quantity"] == 3


def test_a_shopper_reviews_a_product_once_and_everyone_sees_the_rating(api, admin, shopper):
    product = create(api, admin).json()
    path = f"/v1/products/{product['id']}/reviews"
    posted = api.post(path, json={"rating": 4, "title": "Bright"}, headers=shopper)
    assert posted.status_code == 200, posted.text
    again = api.post(path, json={"rating": 5}, headers=shopper)
    assert again.status_code == 409, again.text
    anonymous = api.post(path, json={"rating": 5})
    assert anonymous.status_code == 401
    listed = api.get(path).json()["reviews"]
    assert [r["id"] for r in listed] == [posted.json()["id"]]
    summary = api.get(f"/v1/products/{product['id']}/rating-summary").json()
    assert (summary["rating_count"], summary["four_star_count"]) == (1, 1)
    edited = api.patch(f"{path}/{posted.json()['id']}", json={"rating": 2}, headers=admin)
    assert edited.status_code == 403, edited.text  # only the author edits a review
    assert api.get(f"/v1/products/{product['id']}").json()["rating_count"] == 1


def test_categories_are_created_by_admins_and_listed_by_anyone(api, admin, shopper):
    slug = f"garden-{secrets.token_hex(4)}"
    denied = api.post("/v1/categories", json={"name": "Garden", "slug": slug}, headers=shopper)
    assert denied.status_code == 403
    created = api.post("/v1/categories", json={"name": "Garden", "slug": slug}, headers=admin)
    assert created.status_code == 200, created.text
    found = api.get("/v1/categories", params={"slug": slug}).json()["categories"]
    assert [c["id"] for c in found] == [created.json()["id"]]
    bad = api.post("/v1/categories", json={"name": "X", "slug": "Not A Slug"}, headers=admin)
    assert bad.status_code == 400
    assert "category.slug" in violations(bad)


def test_the_old_image_upload_route_points_to_the_file_service(api, admin):
    # Images are uploaded through the file service now (tests/e2e/test_file_flows.py).
    product = create(api, admin).json()
    moved = api.post(
        f"/v1/products/{product['id']}/images",
        content=b"\x89PNG\r\n\x1a\n",
        headers={**admin, "content-type": "image/png"},
    )
    assert moved.status_code == 400, moved.text
    assert "IMAGE_UPLOADS_MOVED" in moved.text
