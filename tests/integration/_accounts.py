"""Test helper: the per-service broker accounts (kit.accounts) on the test vhost.

Tests connect to the broker as the administrator (the stack's EMPORIUM_RABBITMQ_URL); these
helpers create the service accounts on that vhost and log in as one of them.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from kit import accounts
from kit.bus import Bus
from kit.config import RabbitSettings


def admin_url() -> str:
    return RabbitSettings.from_env().url


def vhost() -> str:
    return unquote(urlsplit(admin_url()).path.lstrip("/")) or "/"


async def create_accounts() -> None:
    """Creates or updates every service's broker user and permissions on the test vhost."""
    await accounts.apply_rabbitmq(accounts.management_url(os.environ), vhost())


def service_url(service: str) -> str:
    """The AMQP URL of `service`'s own account on the test vhost."""
    return accounts.service_url(admin_url(), service, accounts.rabbitmq_password(service))


async def service_bus(service: str) -> Bus:
    """A bus logged in as `service` (create_accounts first; the exchanges must exist)."""
    return await Bus.connect(RabbitSettings(url=service_url(service)), service, wait_seconds=5)
