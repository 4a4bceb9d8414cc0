"""The topology (kit.topology) is the one place that binds events to queues: each service's
consumers handle exactly what its queue receives."""

from __future__ import annotations

import importlib

import pytest
from emporium.user.v1 import user_events_pb2

from kit import topology
from kit.events import Event, aggregate_key, routing_keys

SERVICES = ["cart", "catalog", "order", "payment", "shipping", "webhooks", "notification"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_services_subscriptions_are_exactly_its_topology_entry(service: str) -> None:
    consumers = importlib.import_module(f"services.{service}.consumers")
    handled = set(routing_keys(consumers.subscriptions(object())))  # type: ignore[arg-type]
    assert service == consumers.QUEUE
    assert handled == set(topology.event_types(service))


def test_the_webhooks_queue_receives_every_public_event_without_personal_data() -> None:
    webhooks = topology.event_types("webhooks")
    assert "emporium.order.v1.OrderPlaced" in webhooks
    assert "emporium.user.v1.UserRolesChanged" in webhooks
    assert "emporium.user.v1.PasswordResetRequested" not in webhooks  # internal
    assert "emporium.user.v1.EmailVerificationRequested" not in webhooks
    assert "emporium.user.v1.UserRegistered" not in webhooks  # an email and a name
    assert "emporium.user.v1.UserUpdated" not in webhooks  # in the User it carries
    assert "emporium.webhooks.v1.WebhookEndpointSuspended" not in webhooks  # its own
    assert webhooks <= topology.public_events()


def test_every_bound_event_type_is_a_published_event() -> None:
    for queue, types in topology.QUEUES.items():
        assert types <= topology.all_events(), queue


def test_a_queue_missing_from_the_topology_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="no-such-service"):
        topology.event_types("no-such-service")


def test_the_aggregate_key_of_an_event_is_its_order_then_product_then_user() -> None:
    from emporium.catalog.v1 import catalog_events_pb2, product_pb2
    from emporium.order.v1 import order_events_pb2

    placed = Event.of(order_events_pb2.OrderPlaced(order_id="o1", user_id="u1"), "test")
    product = Event.of(
        catalog_events_pb2.ProductUpdated(product=product_pb2.Product(id="p1")),
        "test",
    )
    user = Event.of(user_events_pb2.UserRegistered(user_id="u1"), "test")
    assert aggregate_key(placed) == "order:o1"
    assert aggregate_key(product) == "product:p1"
    assert aggregate_key(user) == "user:u1"
