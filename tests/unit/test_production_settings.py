"""Production-safe settings: no development default outside EMPORIUM_ENV=development, and
secrets never printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kit.config import ROOT, ConfigError, RabbitSettings
from services.order.config import Settings as OrderSettings
from services.user.config import Settings as UserSettings

SECRET_ENV = {
    "EMPORIUM_ENV": "production",
    "EMPORIUM_PAGE_TOKEN_KEY": "page-token-key-0123456789abcdef",
    "EMPORIUM_RABBITMQ_URL": "amqp://user-svc:broker-pass-42@127.0.0.1:5672/",
    "EMPORIUM_ADMIN_EMAIL": "root@example.com",
    "EMPORIUM_ADMIN_PASSWORD": "admin-pass-0123456789",
    "EMPORIUM_CASSANDRA_USERNAME": "emporium_order",
    "EMPORIUM_CASSANDRA_PASSWORD": "cassandra-pass-77",
}


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only the interpreter's own variables: no EMPORIUM_* setting leaks in from the caller.
    base = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("stage", [None, "production"])
def test_a_service_without_development_env_or_secrets_exits_naming_each_missing_setting(stage):
    env = {"EMPORIUM_ENV": stage} if stage else {}
    started = _start("services.user", env)
    assert started.returncode != 0
    assert "Traceback" not in started.stderr
    for name in (
        "EMPORIUM_USER_JWT_PRIVATE_KEY",
        "EMPORIUM_PAGE_TOKEN_KEY",
        "EMPORIUM_RABBITMQ_URL",
        "EMPORIUM_CASSANDRA_USERNAME",
        "EMPORIUM_CASSANDRA_PASSWORD",
    ):
        assert name in started.stderr
    assert f"EMPORIUM_ENV is {stage or 'unset'}" in started.stderr


def test_a_service_refuses_the_brokers_guest_login_outside_development():
    started = _start(
        "services.order",
        {
            "EMPORIUM_ENV": "production",
            "EMPORIUM_PAGE_TOKEN_KEY": "k" * 32,
            "EMPORIUM_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
        },
    )
    assert started.returncode != 0
    assert "EMPORIUM_RABBITMQ_URL: logs in as guest" in started.stderr
    assert "EMPORIUM_PAGE_TOKEN_KEY" not in started.stderr


def test_the_development_admin_password_is_refused_outside_development():
    env = {**SECRET_ENV, "EMPORIUM_ADMIN_PASSWORD": "emporium-admin-dev"}
    with pytest.raises(ConfigError, match="EMPORIUM_ADMIN_PASSWORD"):
        UserSettings.from_env(env)


def test_production_creates_no_admin_unless_asked():
    env = {k: v for k, v in SECRET_ENV.items() if not k.startswith("EMPORIUM_ADMIN")}
    from kit.config import AuthSettings
    from services.user.config import AdminSettings

    assert AdminSettings.from_env(AuthSettings.from_env(env), env).email == ""


def test_settings_never_print_their_secrets():
    order = OrderSettings.from_env(SECRET_ENV)
    rabbit = RabbitSettings.from_env(SECRET_ENV)
    printed = repr(order) + str(order) + repr(rabbit) + rabbit.safe_url
    assert "broker-pass-42" not in printed
    assert "cassandra-pass-77" not in printed
    assert "emporium_order" in repr(order.cassandra)
    assert "page-token-key" not in printed
    assert "amqp://user-svc:***@127.0.0.1:5672/" in rabbit.safe_url
    from services.user.config import AdminSettings

    admin = AdminSettings.from_env(OrderSettings.from_env(SECRET_ENV).auth, SECRET_ENV)
    assert "admin-pass" not in repr(admin)


def test_cassandra_login_defaults_to_the_services_development_role_only_in_development():
    from kit.config import CassandraSettings

    dev = CassandraSettings.from_env("emporium_catalog", {"EMPORIUM_ENV": "development"})
    assert dev.username == "emporium_catalog"
    assert dev.password is not None
    assert dev.password.get_secret_value() == "dev-catalog"
    suffixed = CassandraSettings.from_env(
        "emporium_catalog", {"EMPORIUM_ENV": "development", "EMPORIUM_KEYSPACE_SUFFIX": "_t1"}
    )
    assert (suffixed.keyspace, suffixed.username) == ("emporium_catalog_t1", "emporium_catalog_t1")
    for stage in ({}, {"EMPORIUM_ENV": "production"}):
        with pytest.raises(ConfigError, match="EMPORIUM_CASSANDRA_PASSWORD"):
            CassandraSettings.from_env("emporium_catalog", stage)
    given = CassandraSettings.from_env(
        "emporium_catalog",
        {
            "EMPORIUM_ENV": "production",
            "EMPORIUM_CASSANDRA_USERNAME": "shop_catalog",
            "EMPORIUM_CASSANDRA_PASSWORD": "pw-9",
        },
    )
    assert given.username == "shop_catalog"
    assert "pw-9" not in repr(given) + str(given)


def test_a_service_names_the_cassandra_login_it_lacks_outside_development():
    env = {k: v for k, v in SECRET_ENV.items() if k != "EMPORIUM_CASSANDRA_PASSWORD"}
    with pytest.raises(ConfigError) as refused:
        OrderSettings.from_env(env)
    assert "EMPORIUM_CASSANDRA_PASSWORD" in str(refused.value)
    assert "EMPORIUM_CASSANDRA_USERNAME" not in str(refused.value)


def test_a_cassandra_ca_file_turns_tls_on_and_verifies_the_nodes(tmp_path):
    import datetime
    import ssl

    # A CA certificate the ssl module can load: any self-signed PEM will do; make one.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from kit.config import CassandraSettings

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "emporium test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    dev = {"EMPORIUM_ENV": "development"}
    assert CassandraSettings.from_env("emporium_user", dev).ssl_context() is None
    settings = CassandraSettings.from_env(
        "emporium_user", {**dev, "EMPORIUM_CASSANDRA_TLS_CA": str(ca)}
    )
    context = settings.ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 1
    with pytest.raises(ConfigError, match="EMPORIUM_CASSANDRA_TLS_CA"):
        CassandraSettings.from_env(
            "emporium_user", {**dev, "EMPORIUM_CASSANDRA_TLS_CA": str(tmp_path / "missing.pem")}
        )
