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
    assert "page-token-key" not in printed
    assert "amqp://user-svc:***@127.0.0.1:5672/" in rabbit.safe_url
    from services.user.config import AdminSettings

    admin = AdminSettings.from_env(OrderSettings.from_env(SECRET_ENV).auth, SECRET_ENV)
    assert "admin-pass" not in repr(admin)
