"""Configuration pieces that every service's frozen Settings is built from.

Only this module reads the environment. Each piece has defaults that work against the local
stack (`make run`), so a service starts on a laptop with no variables set. Variables:

    EMPORIUM_<NAME>_GRPC_HOST / _PORT   where service <name> listens (default: services.yaml)
    EMPORIUM_GRPC_GRACE_SECONDS         how long in-flight calls may finish on SIGTERM (10)
    EMPORIUM_RABBITMQ_URL               amqp://guest:guest@127.0.0.1:5672/
    EMPORIUM_CASSANDRA_HOSTS / _PORT    127.0.0.1 (comma-separated) / 9042
    EMPORIUM_CASSANDRA_REPLICATION      SimpleStrategy:1 (NetworkTopologyStrategy:dc1=3 ...)
    EMPORIUM_CASSANDRA_CONSISTENCY      LOCAL_QUORUM
    EMPORIUM_MONGO_URL                  mongodb://127.0.0.1:27017/
    EMPORIUM_REDIS_URL                  redis://127.0.0.1:6379/0
    EMPORIUM_OPENSEARCH_URL             http://127.0.0.1:9200
    EMPORIUM_OTLP_ENDPOINT              OTLP/gRPC collector for traces, logs and metrics
                                        (unset: none, and tracing costs nothing)
    EMPORIUM_OTLP_TOKEN                 bearer token the collector asks for (unset: none)
    EMPORIUM_TRACE_SAMPLE_RATIO         share of new traces recorded, parent-based (1.0)
    EMPORIUM_METRICS_INTERVAL_SECONDS   how often metrics are exported (15)
    EMPORIUM_LOG_LEVEL                  INFO
    EMPORIUM_KEYSPACE_SUFFIX / EMPORIUM_MONGO_DATABASE_SUFFIX   isolate test runs ("")
    EMPORIUM_JWT_ISSUER / EMPORIUM_JWT_AUDIENCE   claims every access token must carry
    EMPORIUM_SHOP_CURRENCY              the shop's currency, ISO 4217 (USD): catalog prices,
                                        cart and order totals are all in it
    EMPORIUM_ENV                        "development" (default) or "production": production
                                        refuses development fallbacks such as generated keys

A service's own variables are read in its `config.py` with `string` / `integer` / `number`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVICES_YAML = ROOT / "gateway/services.yaml"

Env = Mapping[str, str]


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def string(env: Env, name: str, default: str) -> str:
    """The variable's value, or `default` when it is unset or blank."""
    value = env.get(name, "").strip()
    return value or default


def integer(env: Env, name: str, default: int) -> int:
    raw = string(env, name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def number(env: Env, name: str, default: float) -> float:
    raw = string(env, name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


@cache
def service_ports() -> dict[str, int]:
    """The default gRPC port of each service, from gateway/services.yaml (the one list)."""
    doc = yaml.safe_load(SERVICES_YAML.read_text())
    return {name: int(svc["port"]) for name, svc in doc["services"].items()}


@dataclass(frozen=True)
class ServerSettings:
    """Where a service's gRPC server listens and how it shuts down."""

    name: str
    host: str = "127.0.0.1"
    port: int = 0
    grace_seconds: float = 10.0
    # Catalog image uploads are up to 10 MiB; gRPC's default limit is 4 MiB.
    max_message_bytes: int = 12 * 1024 * 1024

    @classmethod
    def from_env(cls, name: str, env: Env = os.environ) -> ServerSettings:
        prefix = f"EMPORIUM_{name.upper()}_GRPC"
        return cls(
            name=name,
            host=string(env, f"{prefix}_HOST", "127.0.0.1"),
            port=integer(env, f"{prefix}_PORT", service_ports()[name]),
            grace_seconds=number(env, "EMPORIUM_GRPC_GRACE_SECONDS", 10.0),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RabbitSettings:
    """The RabbitMQ broker that carries domain events."""

    url: str = "amqp://guest:guest@127.0.0.1:5672/"

    @classmethod
    def from_env(cls, env: Env = os.environ) -> RabbitSettings:
        return cls(url=string(env, "EMPORIUM_RABBITMQ_URL", cls.url))


@dataclass(frozen=True)
class CassandraSettings:
    """A Cassandra cluster and the service's own keyspace."""

    keyspace: str
    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = 9042
    # How a new keyspace is replicated: "SimpleStrategy:1" for one local node,
    # "NetworkTopologyStrategy:dc1=3" in production.
    replication: str = "SimpleStrategy:1"
    # LOCAL_QUORUM reads and writes are consistent with each other on any replication factor.
    consistency: str = "LOCAL_QUORUM"

    @classmethod
    def from_env(cls, keyspace: str, env: Env = os.environ) -> CassandraSettings:
        hosts = tuple(
            h.strip() for h in string(env, "EMPORIUM_CASSANDRA_HOSTS", "127.0.0.1").split(",")
        )
        return cls(
            keyspace=keyspace + string(env, "EMPORIUM_KEYSPACE_SUFFIX", ""),
            hosts=tuple(h for h in hosts if h),
            port=integer(env, "EMPORIUM_CASSANDRA_PORT", 9042),
            replication=string(env, "EMPORIUM_CASSANDRA_REPLICATION", cls.replication),
            consistency=string(env, "EMPORIUM_CASSANDRA_CONSISTENCY", cls.consistency),
        )


@dataclass(frozen=True)
class MongoSettings:
    """A MongoDB-wire server and the service's own database."""

    database: str
    url: str = "mongodb://127.0.0.1:27017/"

    @classmethod
    def from_env(cls, database: str, env: Env = os.environ) -> MongoSettings:
        return cls(
            database=database + string(env, "EMPORIUM_MONGO_DATABASE_SUFFIX", ""),
            url=string(env, "EMPORIUM_MONGO_URL", cls.url),
        )


@dataclass(frozen=True)
class RedisSettings:
    """A Redis server (carts, read caches)."""

    url: str = "redis://127.0.0.1:6379/0"

    @classmethod
    def from_env(cls, env: Env = os.environ) -> RedisSettings:
        return cls(url=string(env, "EMPORIUM_REDIS_URL", cls.url))


@dataclass(frozen=True)
class OpenSearchSettings:
    """The Elasticsearch-API server that holds logs and traces."""

    url: str = "http://127.0.0.1:9200"

    @classmethod
    def from_env(cls, env: Env = os.environ) -> OpenSearchSettings:
        return cls(url=string(env, "EMPORIUM_OPENSEARCH_URL", cls.url))


@dataclass(frozen=True)
class TelemetrySettings:
    """Where traces and logs go, and how verbose logs are."""

    service_name: str
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    otlp_token: str | None = None
    sample_ratio: float = 1.0
    metrics_interval_seconds: float = 15.0

    @classmethod
    def from_env(cls, service_name: str, env: Env = os.environ) -> TelemetrySettings:
        ratio = number(env, "EMPORIUM_TRACE_SAMPLE_RATIO", 1.0)
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"EMPORIUM_TRACE_SAMPLE_RATIO must be in [0, 1], got {ratio}")
        return cls(
            service_name=service_name,
            otlp_endpoint=string(env, "EMPORIUM_OTLP_ENDPOINT", "") or None,
            log_level=string(env, "EMPORIUM_LOG_LEVEL", "INFO").upper(),
            otlp_token=string(env, "EMPORIUM_OTLP_TOKEN", "") or None,
            sample_ratio=ratio,
            metrics_interval_seconds=number(env, "EMPORIUM_METRICS_INTERVAL_SECONDS", 15.0),
        )


@dataclass(frozen=True)
class AuthSettings:
    """What every service checks in an access token besides its signature."""

    issuer: str = "emporium-user"
    audience: str = "emporium"
    production: bool = False

    @classmethod
    def from_env(cls, env: Env = os.environ) -> AuthSettings:
        stage = string(env, "EMPORIUM_ENV", "development").lower()
        if stage not in {"development", "production"}:
            raise ConfigError(f"EMPORIUM_ENV must be development or production, got {stage!r}")
        return cls(
            issuer=string(env, "EMPORIUM_JWT_ISSUER", cls.issuer),
            audience=string(env, "EMPORIUM_JWT_AUDIENCE", cls.audience),
            production=stage == "production",
        )


def shop_currency(env: Env = os.environ) -> str:
    """The one currency the shop sells in (EMPORIUM_SHOP_CURRENCY, ISO 4217, default USD)."""
    currency = string(env, "EMPORIUM_SHOP_CURRENCY", "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ConfigError(f"EMPORIUM_SHOP_CURRENCY must be an ISO 4217 code, got {currency!r}")
    return currency
