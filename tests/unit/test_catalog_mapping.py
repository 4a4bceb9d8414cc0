"""The catalog's mapping: what the read cache stores comes back as the same product."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.catalog import mapping
from services.catalog.domain import (
    ImageThumbnail,
    Money,
    Product,
    ProductImage,
    ProductState,
)

NOW = datetime(2026, 12, 5, 14, 30, 15, 123456, tzinfo=UTC)


def _product(**changes) -> Product:
    fields = {
        "id": "3f1c7a9e-0000-4000-8000-000000000001",
        "sku": "MUG-1",
        "title": "Mug",
        "price": Money("EUR", 12, 500_000_000),
        "state": ProductState.ACTIVE,
        "create_time": NOW,
        "update_time": NOW,
        "description": "A mug for tea",
        "category_ids": ("c-1", "c-2"),
        "attributes": {"colour": "blue"},
        "seller_id": "seller-1",
        "weight_grams": 350,
        "rating_average": 4.5,
        "rating_count": 2,
        "version": "v-7",
        "publish_time": NOW,
        "ever_published": True,
        "images": (
            ProductImage(
                id="img-1",
                product_id="3f1c7a9e-0000-4000-8000-000000000001",
                content_type="image/png",
                size_bytes=2048,
                width=640,
                height=480,
                create_time=NOW,
                alt_text="front",
                position=0,
                url="/v1/files/img-1:content",
                thumbnails=(ImageThumbnail(size=128, width=128, height=96, url="/t/128"),),
            ),
        ),
    }
    return Product(**{**fields, **changes})


@pytest.mark.parametrize(
    "product",
    [
        _product(),
        _product(state=ProductState.DRAFT, publish_time=None, ever_published=False, images=()),
        _product(state=ProductState.ARCHIVED, attributes={}, category_ids=()),
    ],
    ids=["on sale with an image", "draft never published", "archived"],
)
def test_a_product_read_back_from_the_cache_is_the_product_stored(product):
    stored = mapping.product_to_proto(product).SerializeToString()
    assert mapping.product_from_bytes(stored) == product


def test_a_reply_is_built_once_per_product_and_a_changed_product_gets_its_own():
    product = _product()
    reply = mapping.product_reply(product)
    assert reply == mapping.product_to_proto(product)
    assert mapping.product_reply(product) is reply
    # An update is a new Product (the domain replaces, never edits): its reply is new too.
    renamed = _product(title="Big mug", version="v-8")
    assert mapping.product_reply(renamed).title == "Big mug"
    assert mapping.product_reply(product).title == "Mug"


def test_replies_stay_bounded_and_right_after_their_products_are_gone():
    for i in range(mapping._REPLIES_MAX + 50):
        # Each product dies after its reply: a later one may take its id().
        assert mapping.product_reply(_product(sku=f"SKU-{i}")).sku == f"SKU-{i}"
    assert len(mapping._replies) <= mapping._REPLIES_MAX
