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


def test_every_service_with_a_cassandra_schema_has_a_role_named_after_its_keyspace():
    assert accounts.cassandra_services() == ("catalog", "order", "payment", "shipping", "user")
    assert accounts.cassandra_role("catalog", {}) == "emporium_catalog"
    suffixed = {"EMPORIUM_KEYSPACE_SUFFIX": "_it7"}
    assert accounts.cassandra_role("catalog", suffixed) == "emporium_catalog_it7"
    assert accounts.cassandra_keyspace("catalog", suffixed) == "emporium_catalog_it7"
    with pytest.raises(ConfigError):
        accounts.cassandra_keyspace("catalog", {"EMPORIUM_KEYSPACE_SUFFIX": "; DROP"})


def test_a_cassandra_role_gets_all_permissions_on_its_own_keyspace_and_nothing_else():
    statements = accounts.cassandra_statements(
        "catalog", "pw", {"class": "SimpleStrategy", "replication_factor": "1"}, {}
    )
    assert statements == [
        "CREATE ROLE IF NOT EXISTS emporium_catalog WITH LOGIN = true AND PASSWORD = 'pw'",
        "CREATE KEYSPACE IF NOT EXISTS emporium_catalog WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': '1'}",
        "GRANT ALL PERMISSIONS ON KEYSPACE emporium_catalog TO emporium_catalog",
    ]
    grants = [s for s in statements if s.startswith("GRANT")]
    assert all("ON KEYSPACE emporium_catalog " in g for g in grants)
    assert not any("ALL KEYSPACES" in s or "SUPERUSER" in s.upper() for s in statements)
    again = accounts.cassandra_statements(
        "catalog",
        "new",
        {"class": "SimpleStrategy", "replication_factor": "1"},
        {},
        role_exists=True,
    )
    assert again[0] == "ALTER ROLE emporium_catalog WITH LOGIN = true AND PASSWORD = 'new'"
    assert again[1:] == statements[1:]


def test_a_cassandra_password_is_quoted_as_a_cql_string():
    statements = accounts.cassandra_statements("order", "it's", {"class": "SimpleStrategy"}, {})
    assert statements[0].endswith("PASSWORD = 'it''s'")


def test_cassandra_development_passwords_and_the_administrator_only_in_development():
    dev = {"EMPORIUM_ENV": "development"}
    assert accounts.cassandra_password("user", dev) == "dev-user"
    given = {"EMPORIUM_ENV": "production", "EMPORIUM_CASSANDRA_PASSWORD_USER": "s3cret"}
    assert accounts.cassandra_password("user", given) == "s3cret"
    with pytest.raises(ConfigError, match="EMPORIUM_CASSANDRA_PASSWORD_USER"):
        accounts.cassandra_password("user", {"EMPORIUM_ENV": "production"})
    admin = accounts.cassandra_admin({**dev, "EMPORIUM_CASSANDRA_HOSTS": "db1,db2"})
    assert (admin.username, admin.hosts) == ("cassandra", ("db1", "db2"))
    with pytest.raises(ConfigError, match="EMPORIUM_CASSANDRA_ADMIN_PASSWORD"):
        accounts.cassandra_admin({"EMPORIUM_ENV": "production"})
    ops = {
        "EMPORIUM_ENV": "production",
        "EMPORIUM_CASSANDRA_ADMIN_USERNAME": "ops",
        "EMPORIUM_CASSANDRA_ADMIN_PASSWORD": "ops-pw",
    }
    assert accounts.cassandra_admin(ops).username == "ops"
    assert "ops-pw" not in repr(accounts.cassandra_admin(ops))


def test_the_stack_gives_each_service_its_own_cassandra_role_and_nobody_the_administrators():
    import importlib.util
    import sys

    from kit.config import ROOT

    spec = importlib.util.spec_from_file_location("_stack_for_test", ROOT / "infra/local/stack.py")
    assert spec is not None
    assert spec.loader is not None
    stack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = stack
    spec.loader.exec_module(stack)
    env = {
        "EMPORIUM_ENV": "development",
        "EMPORIUM_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "EMPORIUM_CASSANDRA_ADMIN_USERNAME": "cassandra",
        "EMPORIUM_CASSANDRA_ADMIN_PASSWORD": "cassandra",
    }
    catalog = stack.service_logins(env, "catalog")
    assert catalog["EMPORIUM_CASSANDRA_USERNAME"] == "emporium_catalog"
    assert catalog["EMPORIUM_CASSANDRA_PASSWORD"] == "dev-catalog"
    assert catalog["EMPORIUM_CASSANDRA_ADMIN_PASSWORD"] == ""
    cart = stack.service_logins(env, "cart")
    assert cart["EMPORIUM_CASSANDRA_USERNAME"] == cart["EMPORIUM_CASSANDRA_PASSWORD"] == ""


def test_the_stack_reserves_its_ports_that_lie_in_the_ephemeral_range(tmp_path):
    import importlib.util
    import sys

    from kit.config import ROOT

    spec = importlib.util.spec_from_file_location("_stack_ports", ROOT / "infra/local/stack.py")
    assert spec is not None
    assert spec.loader is not None
    stack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = stack
    spec.loader.exec_module(stack)
    (tmp_path / "ip_local_port_range").write_text("32768\t60999\n")
    reserved = tmp_path / "ip_local_reserved_ports"
    reserved.write_text("50052,50060-50061\n")

    assert stack.reserve_ports([8080, 50051, 50052, 50056, 5672], tmp_path) == [50051, 50056]
    assert reserved.read_text() == "50052,50060-50061,50051,50056"
    assert stack.reserve_ports([50051, 50056, 50061], tmp_path) == []  # all reserved already
    assert stack.reserve_ports([50051], tmp_path / "missing") == []  # not Linux, or no access
