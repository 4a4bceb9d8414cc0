"""Each service's own Cassandra role on the real node (PasswordAuthenticator, CassandraAuthorizer):
it may use its own keyspace and nothing else, and a wrong password stops a service at once.

The roles and keyspaces are this run's own (a random EMPORIUM_KEYSPACE_SUFFIX, which names both),
created by `kit.accounts` as the administrator and dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from cassandra import Unauthorized
from pydantic import SecretStr

from kit import accounts, cassandra
from kit.config import ROOT, CassandraSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_r" + secrets.token_hex(4)
ENV = {**os.environ, "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX}
SERVICES = ("catalog", "user")
WAIT_SECONDS = 60


def _role_settings(service: str) -> CassandraSettings:
    """How `service` logs in on this stack: its own role, its development password."""
    env = {
        **ENV,
        "EMPORIUM_CASSANDRA_USERNAME": accounts.cassandra_role(service, ENV),
        "EMPORIUM_CASSANDRA_PASSWORD": accounts.cassandra_password(service, ENV),
    }
    return CassandraSettings.from_env(f"emporium_{service}", env)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def roles(cassandra_settings: CassandraSettings) -> AsyncIterator[list[str]]:
    created = await accounts.apply_cassandra(ENV, only=SERVICES, wait_seconds=WAIT_SECONDS)
    try:
        yield created
    finally:
        await accounts.drop_cassandra(SERVICES, ENV)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalog(roles: list[str]) -> AsyncIterator[cassandra.CassandraSession]:
    schema = ROOT / "services/catalog/schema.cql"
    session = await cassandra.connect(
        _role_settings("catalog"), schema=schema, wait_seconds=WAIT_SECONDS
    )
    try:
        yield session
    finally:
        await session.close()


async def test_the_accounts_tool_creates_a_role_per_service_named_after_its_keyspace(roles):
    assert roles == [f"emporium_catalog{SUFFIX}", f"emporium_user{SUFFIX}"]


async def test_a_services_role_creates_its_tables_and_reads_and_writes_its_own_keyspace(catalog):
    assert catalog.keyspace == f"emporium_catalog{SUFFIX}"
    product_id = uuid.uuid4()
    insert = await catalog.prepare("INSERT INTO products (id, title) VALUES (?, ?)")
    await catalog.execute(insert, (product_id, "tea pot"))
    select = await catalog.prepare("SELECT title FROM products WHERE id = ?")
    assert [r.title for r in await catalog.execute(select, (product_id,))] == ["tea pot"]


async def test_the_catalogs_role_cannot_read_or_write_the_user_keyspace(catalog):
    # The user service's keyspace with its tables, made by its own role.
    user = await cassandra.connect(
        _role_settings("user"), schema=ROOT / "services/user/schema.cql", wait_seconds=WAIT_SECONDS
    )
    await user.close()
    users = f"emporium_user{SUFFIX}.users"
    with pytest.raises(Unauthorized):
        await catalog.execute(f"SELECT * FROM {users} LIMIT 1")
    with pytest.raises(Unauthorized):
        await catalog.execute(f"TRUNCATE {users}")
    with pytest.raises(Unauthorized):
        await catalog.execute(f"DROP KEYSPACE emporium_user{SUFFIX}")


async def test_a_services_role_may_not_create_keyspaces_or_roles(catalog):
    with pytest.raises(Unauthorized):
        await catalog.execute(
            f"CREATE KEYSPACE emporium_mine{SUFFIX} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': '1'}"
        )
    with pytest.raises(Unauthorized):
        await catalog.execute(f"CREATE ROLE emporium_mine{SUFFIX} WITH LOGIN = true")
    with pytest.raises(Unauthorized):
        await catalog.execute("SELECT * FROM system_auth.roles")


async def test_a_role_whose_keyspace_is_missing_says_who_creates_it(roles):
    settings = replace(_role_settings("catalog"), keyspace=f"emporium_nowhere{SUFFIX}")
    with pytest.raises(cassandra.KeyspaceMissing, match=r"kit\.accounts cassandra"):
        await cassandra.connect(settings, wait_seconds=WAIT_SECONDS)


async def test_a_wrong_password_is_refused_at_once_naming_the_role_not_the_password(roles):
    wrong = replace(_role_settings("catalog"), password=SecretStr("not-the-password-31"))
    with pytest.raises(cassandra.LoginRefused) as refused:
        await cassandra.connect(wrong, wait_seconds=WAIT_SECONDS)
    assert f"emporium_catalog{SUFFIX}" in str(refused.value)
    assert "not-the-password-31" not in str(refused.value)


async def test_a_service_started_with_a_wrong_cassandra_password_exits_with_a_clear_error(roles):
    env = {
        **ENV,
        "EMPORIUM_CASSANDRA_USERNAME": accounts.cassandra_role("catalog", ENV),
        "EMPORIUM_CASSANDRA_PASSWORD": "not-the-password-31",
        # A port of its own: the test never collides with a running catalog.
        "EMPORIUM_CATALOG_GRPC_PORT": "0",
        "EMPORIUM_OTLP_ENDPOINT": "",
    }
    started = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.catalog"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0
    # The driver logs its failed connection (with its traceback); the service's last word is
    # one line that says what is wrong, and it came at once, not after the 60 s of waiting.
    last = started.stderr.strip().splitlines()[-1]
    assert last.startswith("catalog: cannot start: Cassandra at ")
    assert f"refused the login of role 'emporium_catalog{SUFFIX}'" in last
    assert "EMPORIUM_CASSANDRA_PASSWORD" in last
    assert "Retrying" not in started.stderr
    assert "not-the-password-31" not in started.stderr
