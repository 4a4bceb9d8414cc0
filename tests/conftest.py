"""Fixtures shared by every test tier: the generated contract artefacts."""

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The committed descriptor set (with source info) that Envoy transcodes with."""
    # Importing the option modules registers their extensions, so Options parse them.
    from emporium.access.v1 import access_pb2  # noqa: F401
    from google.api import annotations_pb2, field_behavior_pb2  # noqa: F401

    data = (ROOT / "gen/descriptor/emporium.binpb").read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


@pytest.fixture(scope="session")
def openapi_path() -> Path:
    return ROOT / "gen/openapi/openapi.yaml"


# The REST surface the product promises (issue "Contracts first"); clients are built on it.
PROMISED_ROUTES = [
    ("post", "/v1/users:register"),
    ("post", "/v1/auth:login"),
    ("post", "/v1/auth:refresh"),
    ("post", "/v1/auth:logout"),
    ("get", "/v1/users/me"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/v1/products"),
    ("post", "/v1/products"),
    ("get", "/v1/products/{id}"),
    ("get", "/v1/cart"),
    ("post", "/v1/cart/items"),
    ("get", "/v1/orders"),
    ("post", "/v1/orders"),
    ("get", "/v1/orders/{id}"),
    ("post", "/v1/orders/{id}:cancel"),
    ("post", "/v1/payment-methods"),
    ("get", "/v1/shipping-options"),
    ("get", "/v1/webhooks/endpoints"),
    ("post", "/v1/webhooks/endpoints"),
    ("get", "/v1/notifications"),
]


@pytest.fixture(scope="session")
def promised_routes() -> list[tuple[str, str]]:
    return PROMISED_ROUTES
