"""Fixtures of the tiers that need the real servers: each checks its server answers first.

The servers are those of the local stack (`make run`, `make stack-up`; `make test` starts them
itself). Addresses come from the same settings the services read (kit/config.py:
EMPORIUM_RABBITMQ_URL, EMPORIUM_CASSANDRA_HOSTS/_PORT, EMPORIUM_MONGO_URL, EMPORIUM_REDIS_URL,
EMPORIUM_OPENSEARCH_URL), which `infra/local/stack` derives from the infra ports; the defaults
are the default stack's.

A server that does not answer skips the tests that need it, on a laptop. In CI (CI=true)
nothing may skip: a missing server fails the test with the reason, and so does any other skip
(`pytest_runtest_makereport` below). tests/e2e/conftest.py uses the same fixtures and rule.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from kit.config import (
    CassandraSettings,
    MongoSettings,
    OpenSearchSettings,
    RabbitSettings,
    RedisSettings,
)

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
HOW_TO_START = (
    "start the servers with `make run` or `make stack-up` (or run the tests with "
    "`make test-integration` / `make test`, which start them)"
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """In CI a skip is a failure: a test that cannot run there proves nothing."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where a skip counts as a failure (CI=true): {reason}"
    return report


def unavailable(what: str, why: str) -> None:
    """Skips the test (fails it in CI): `what` is not there to test against."""
    message = f"{what} is not reachable: {why}; {HOW_TO_START}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _exchange(host: str, port: int, send: bytes, size: int) -> bytes:
    """Sends bytes on a new TCP connection and reads up to size bytes back (3 s budget)."""
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.sendall(send)
        received = b""
        while len(received) < size:
            chunk = sock.recv(size - len(received))
            if not chunk:
                break
            received += chunk
        return received


# Each check returns None when the server answered a real protocol request, else why not.


def check_rabbitmq(url: str) -> str | None:
    # AMQP 0-9-1: after the protocol header the broker sends a Connection.Start method frame
    # (frame type 1, channel 0, class 10 method 10).
    host, port = _host_port(url, 5672)
    try:
        reply = _exchange(host, port, b"AMQP\x00\x00\x09\x01", 11)
    except OSError as error:
        return f"{host}:{port}: {error}"
    if reply[:3] != b"\x01\x00\x00" or reply[7:11] != b"\x00\x0a\x00\x0a":
        return f"{host}:{port} did not answer as an AMQP 0-9-1 broker ({reply!r})"
    return None


def check_cassandra(hosts: tuple[str, ...], port: int) -> str | None:
    # The CQL native protocol v4: OPTIONS (opcode 5) must get SUPPORTED (opcode 6).
    host = hosts[0]
    try:
        reply = _exchange(host, port, b"\x04\x00\x00\x00\x05\x00\x00\x00\x00", 5)
    except OSError as error:
        return f"{host}:{port}: {error}"
    if reply != b"\x84\x00\x00\x00\x06":
        return f"{host}:{port} did not answer as a CQL server ({reply!r})"
    return None


def check_mongo(url: str) -> str | None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient = MongoClient(url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000)
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        return f"{url}: {error}"
    finally:
        client.close()
    return None


def check_redis(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"{url}: {error}"
    finally:
        client.close()
    return None


_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def check_http(url: str) -> str | None:
    try:
        with _no_proxy.open(url, timeout=3) as response:
            if response.status != 200:
                return f"{url} answered {response.status}"
    except (OSError, urllib.error.URLError) as error:
        return f"{url}: {error}"
    return None


def check_s3(endpoint: str) -> str | None:
    # An S3 endpoint answers an unsigned request with an S3 XML error (AccessDenied).
    try:
        with _no_proxy.open(endpoint + "/", timeout=3) as response:
            body = response.read(2048)
    except urllib.error.HTTPError as error:
        body = error.read(2048)
    except (OSError, urllib.error.URLError) as error:
        return f"{endpoint}: {error}"
    if b"<Error>" not in body and b"ListAllMyBucketsResult" not in body:
        return f"{endpoint} did not answer as an S3 endpoint ({body[:80]!r})"
    return None


@dataclass(frozen=True)
class Server:
    """One of the real servers: its name, address and how to check it answers."""

    name: str
    address: str
    check: Callable[[], str | None]

    def require(self) -> None:
        why = self.check()
        if why is not None:
            unavailable(self.name, why)


def servers() -> dict[str, Server]:
    """The servers, at the addresses the services would use."""
    rabbit = RabbitSettings.from_env()
    cassandra = CassandraSettings.from_env("tests")
    mongo = MongoSettings.from_env("tests")
    redis_url = RedisSettings.from_env().url
    opensearch = OpenSearchSettings.from_env().url.rstrip("/")
    s3_endpoint = os.environ.get("EMPORIUM_S3_ENDPOINT", "http://127.0.0.1:7070").rstrip("/")
    return {
        "rabbitmq": Server("RabbitMQ", rabbit.url, lambda: check_rabbitmq(rabbit.url)),
        "cassandra": Server(
            "Cassandra",
            f"{cassandra.hosts[0]}:{cassandra.port}",
            lambda: check_cassandra(cassandra.hosts, cassandra.port),
        ),
        "mongo": Server("The MongoDB-wire server", mongo.url, lambda: check_mongo(mongo.url)),
        "opensearch": Server(
            "OpenSearch", opensearch, lambda: check_http(f"{opensearch}/_cluster/health")
        ),
        "redis": Server("Redis", redis_url, lambda: check_redis(redis_url)),
        "versitygw": Server(
            "The S3 object store (versitygw)", s3_endpoint, lambda: check_s3(s3_endpoint)
        ),
    }


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The AMQP URL of a RabbitMQ broker that answers."""
    server = servers()["rabbitmq"]
    server.require()
    return server.address


@pytest.fixture(scope="session")
def cassandra_settings() -> CassandraSettings:
    """Contact points of a Cassandra node that answers CQL (keyspace: "tests")."""
    servers()["cassandra"].require()
    return CassandraSettings.from_env("tests")


@pytest.fixture(scope="session")
def mongo_url() -> str:
    """The URL of a MongoDB-wire server that answers `ping`."""
    server = servers()["mongo"]
    server.require()
    return server.address


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a Redis server that answers PING."""
    server = servers()["redis"]
    server.require()
    return server.address


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """The base URL of an OpenSearch (Elasticsearch-API) node whose cluster health answers."""
    server = servers()["opensearch"]
    server.require()
    return server.address


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """The address of an S3 endpoint (versitygw) that answers S3 requests."""
    server = servers()["versitygw"]
    server.require()
    return server.address


@pytest.fixture(scope="session")
def local_servers() -> dict[str, Server]:
    """All the servers, each checked to answer."""
    everything = servers()
    for server in everything.values():
        server.require()
    return everything
