"""kit.accounts: the broker accounts derived from the topology, and whose word a consumer takes."""

import re

import pytest

from kit import accounts, topology
from kit.config import ConfigError
from kit.events import owner


def allowed(pattern: str, name: str) -> bool:
    # RabbitMQ matches permission patterns against the whole resource name with re:run.
    return re.search(pattern, name) is not None


def test_every_consumer_and_every_event_owner_has_an_account():
    services = set(accounts.services())
    assert set(topology.QUEUES) <= services
    assert {owner(t) for t in topology.all_events()} - {""} <= services
    assert accounts.rabbitmq_user("catalog") == "emporium-catalog"


@pytest.mark.parametrize("service", sorted(topology.QUEUES))
def test_a_service_may_configure_and_read_its_own_queues(service):
    perms = accounts.rabbitmq_permissions(service)
    for name in (service, f"{service}.retry.0", f"{service}.retry.2", f"{service}.dlq"):
        assert allowed(perms.configure, name)
        assert allowed(perms.read, name)
        assert allowed(perms.write, name)


@pytest.mark.parametrize("service", sorted(topology.QUEUES))
def test_a_service_may_not_touch_another_services_queues(service):
    perms = accounts.rabbitmq_permissions(service)
    for other in set(topology.QUEUES) - {service}:
        for name in (other, f"{other}.retry.0", f"{other}.dlq"):
            assert not allowed(perms.configure, name), (service, name)
            assert not allowed(perms.read, name), (service, name)
            assert not allowed(perms.write, name), (service, name)
    assert not allowed(perms.configure, "emporium.events")
    assert not allowed(perms.read, "emporium.unrouted")


def test_the_catalog_cannot_read_the_payment_queue():
    perms = accounts.rabbitmq_permissions("catalog")
    assert not allowed(perms.read, "payment")
    assert not allowed(perms.read, "paymentx")
    assert not allowed(perms.read, "xcatalog")


def test_a_service_may_publish_only_the_routing_keys_of_the_events_it_owns():
    for service in accounts.services():
        topic = accounts.rabbitmq_permissions(service).topic_write
        for event in topology.all_events():
            assert allowed(topic, event) == (owner(event) == service), (service, event)
    catalog = accounts.rabbitmq_permissions("catalog").topic_write
    assert not allowed(catalog, "emporium.payment.v1.PaymentSucceeded")
    assert allowed(catalog, "emporium.catalog.v1.StockReserved")


def test_a_service_may_bind_its_queue_to_the_events_it_consumes_and_no_other():
    # RabbitMQ checks a binding's key against the topic read permission: the stack's cart
    # died at start with ACCESS_REFUSED binding emporium.catalog.v1.ProductArchived.
    for service in accounts.services():
        topic = accounts.rabbitmq_permissions(service).topic_read
        consumed = set(topology.QUEUES.get(service, ()))
        for event in topology.all_events():
            assert allowed(topic, event) == (event in consumed), (service, event)
    cart = accounts.rabbitmq_permissions("cart").topic_read
    assert allowed(cart, "emporium.catalog.v1.ProductArchived")


def test_a_publisher_without_a_queue_may_only_write_to_the_events_exchange():
    perms = accounts.rabbitmq_permissions("user")
    assert perms.configure == "^$"
    assert perms.read == "^$"
    assert allowed(perms.write, "emporium.events")
    assert not allowed(perms.write, "amq.default")


def test_a_service_account_is_the_source_whatever_app_id_it_claims():
    assert accounts.trusted_source("emporium-catalog", "payment", {}, "order") == "catalog"
    assert accounts.trusted_source("emporium-payment", "payment", {}, "order") == "payment"


def test_a_message_without_user_id_has_no_source():
    assert accounts.trusted_source(None, "payment", {}, "order") == ""
    assert accounts.trusted_source("", "payment", {}, None) == ""


def test_the_administrator_is_believed_on_app_id():
    assert accounts.trusted_source("guest", "payment", {}, "order") == "payment"
    assert accounts.trusted_source("emporium-unknown", "payment", {}, "order") == "payment"


def test_a_retry_copy_keeps_its_source_only_when_the_queues_own_service_parked_it():
    parked = {accounts.SOURCE_HEADER: "payment"}
    assert accounts.trusted_source("emporium-order", "payment", parked, "order") == "payment"
    # Another service cannot launder a source through the header.
    assert accounts.trusted_source("emporium-catalog", "payment", parked, "order") == "catalog"
    assert accounts.trusted_source("emporium-order", "payment", {}, "order") == "order"


def test_development_has_known_passwords_and_production_requires_them():
    dev = {"EMPORIUM_ENV": "development"}
    assert accounts.rabbitmq_password("order", dev) == "dev-order"
    given = {"EMPORIUM_ENV": "production", "EMPORIUM_RABBITMQ_PASSWORD_ORDER": "s3cret"}
    assert accounts.rabbitmq_password("order", given) == "s3cret"
    with pytest.raises(ConfigError, match="EMPORIUM_RABBITMQ_PASSWORD_ORDER"):
        accounts.rabbitmq_password("order", {"EMPORIUM_ENV": "production"})


def test_a_service_url_keeps_host_port_and_vhost_with_the_services_login():
    url = accounts.service_url("amqp://guest:guest@127.0.0.1:6672/emporium-it", "order", "p@ss")
    assert url == "amqp://emporium-order:p%40ss@127.0.0.1:6672/emporium-it"


def test_a_services_own_broker_login_replaces_the_one_in_the_shared_url():
    from kit.config import RabbitSettings

    env = {
        "EMPORIUM_RABBITMQ_URL": "amqp://guest:guest@rabbitmq:5672/shop",
        "EMPORIUM_RABBITMQ_USERNAME": "emporium-order",
        "EMPORIUM_RABBITMQ_PASSWORD": "s3/cret",
    }
    assert RabbitSettings.from_env(env).url == "amqp://emporium-order:s3%2Fcret@rabbitmq:5672/shop"
    assert RabbitSettings.development_defaults(env) == []
    del env["EMPORIUM_RABBITMQ_PASSWORD"]
    assert RabbitSettings.from_env(env).url == "amqp://guest:guest@rabbitmq:5672/shop"
