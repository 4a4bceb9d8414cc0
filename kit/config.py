"""Configuration pieces that every service's frozen Settings is built from.

Only this module reads the environment. Each piece has defaults that work against the local
stack (`make run`), so a service starts on a laptop with no variables set. Variables:

    EMPORIUM_<NAME>_GRPC_HOST / _PORT   where service <name> listens (default: services.yaml)
    EMPORIUM_GRPC_GRACE_SECONDS         how long in-flight calls may finish on SIGTERM (10)
    EMPORIUM_RABBITMQ_URL               amqp://guest:guest@127.0.0.1:5672/
    EMPORIUM_RABBITMQ_USERNAME          with EMPORIUM_RABBITMQ_PASSWORD: the service's own broker
                                        login (kit.accounts), replacing the URL's
    EMPORIUM_CASSANDRA_HOSTS / _PORT    127.0.0.1 (comma-separated) / 9042
    EMPORIUM_CASSANDRA_REPLICATION      SimpleStrategy:1 (NetworkTopologyStrategy:dc1=3 ...)
    EMPORIUM_CASSANDRA_CONSISTENCY      LOCAL_QUORUM
    EMPORIUM_CASSANDRA_USERNAME / _PASSWORD   the service's own Cassandra role (kit.accounts;
                                        development: `emporium_<service>` / `dev-<service>`)
    EMPORIUM_CASSANDRA_TLS_CA           PEM file of the CA that signed the nodes' certificates:
                                        set, the client speaks TLS and verifies them (unset: none)
    EMPORIUM_MONGO_URL                  mongodb://127.0.0.1:27017/
    EMPORIUM_REDIS_URL                  redis://127.0.0.1:6379/0
    EMPORIUM_OPENSEARCH_URL             http://127.0.0.1:9200
    EMPORIUM_OTLP_ENDPOINT              OTLP/gRPC collector for traces, logs and metrics
                                        (unset: none, and tracing costs nothing)
    EMPORIUM_OTLP_TOKEN                 bearer token the collector asks for (unset: none)
    EMPORIUM_TRACE_SAMPLE_RATIO         share of new traces recorded, parent-based (0.1; the
                                        local stack 1.0)
    EMPORIUM_ACCESS_LOG_SAMPLE          share of successful calls in the access log (0.1; the
                                        local stack 1.0); failed and slow calls always logged
    EMPORIUM_SLOW_CALL_MS               a call this slow is always logged (500)
    EMPORIUM_WORKERS                    worker processes per service on its port (1; "auto":
                                        the cores)
    EMPORIUM_METRICS_INTERVAL_SECONDS   how often metrics are exported (15)
    EMPORIUM_LOG_LEVEL                  INFO
    EMPORIUM_KEYSPACE_SUFFIX / EMPORIUM_MONGO_DATABASE_SUFFIX   isolate test runs ("")
    EMPORIUM_JWT_ISSUER / EMPORIUM_JWT_AUDIENCE   claims every access token must carry
    EMPORIUM_SHOP_CURRENCY              the shop's currency, ISO 4217 (USD): catalog prices,
                                        cart and order totals are all in it
    EMPORIUM_ENV                        "development" or "production", and nothing else is
                                        assumed: only an explicit "development" (`make run`
                                        and the test stacks set it) allows development
                                        fallbacks (generated keys, the default admin, the
                                        broker's guest login, the development page-token key);
                                        otherwise `refuse_development_defaults` stops the
                                        service naming every setting it needs
    EMPORIUM_PAGE_TOKEN_KEY             HMAC key of page tokens, one per deployment (secret)
    EMPORIUM_PAGE_TOKEN_PREVIOUS_KEYS   comma-separated keys still accepted when reading page
                                        tokens, during a rotation (secret)

Settings that hold secrets (keys, passwords, URLs with credentials) are `SecretStr` or are left
out of the settings' repr, so printing or logging settings never shows them.

A service's own variables are read in its `config.py` with `string` / `integer` / `number`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import quote, urlsplit

import yaml
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
SERVICES_YAML = ROOT / "gateway/services.yaml"

Env = Mapping[str, str]


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


class StartRefused(RuntimeError):
    """A server refused the service for a reason that waiting will not fix (a wrong login, a
    missing grant): `kit.server.run` stops with the message, no traceback."""


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


def development(env: Env = os.environ) -> bool:
    """True only when EMPORIUM_ENV says "development"; unset counts as production."""
    stage = env.get("EMPORIUM_ENV", "").strip().lower()
    if stage and stage not in {"development", "production"}:
        raise ConfigError(f"EMPORIUM_ENV must be development or production, got {stage!r}")
    return stage == "development"


def secret(env: Env, name: str) -> SecretStr | None:
    """A secret variable's value, wrapped so that repr, logs and errors never show it."""
    value = env.get(name, "").strip()
    return SecretStr(value) if value else None


class DevelopmentDefaults(Protocol):
    """A settings piece that can fall back to a development default (a key, a login)."""

    @staticmethod
    def development_defaults(env: Env) -> list[str]:
        """What in `env` is missing or still a development default, one line per setting."""
        ...


def refuse_development_defaults(env: Env, *pieces: DevelopmentDefaults) -> None:
    """Outside EMPORIUM_ENV=development, raises ConfigError naming every setting of `pieces`
    that is unset or holds a development default, so one failed start lists them all."""
    if development(env):
        return
    problems = [problem for piece in pieces for problem in piece.development_defaults(env)]
    if problems:
        stage = env.get("EMPORIUM_ENV", "").strip() or "unset"
        raise ConfigError(
            f"EMPORIUM_ENV is {stage} (not development), so these settings must be given "
            "real values:\n" + "\n".join(f"  - {p}" for p in problems)
        )


T = TypeVar("T")


def load(from_env: Callable[[], T], service: str) -> T:
    """A service's settings, or exit with the configuration error (no traceback) if unusable."""
    try:
        return from_env()
    except ConfigError as error:
        raise SystemExit(f"{service}: cannot start: {error}") from None


DEVELOPMENT_PAGE_TOKEN_KEY = "emporium page token key (development only)"


@dataclass(frozen=True)
class PageTokenSettings:
    """The HMAC keys of page tokens (kit/paging.py): one per deployment, never in the repo.

    `key` signs and verifies; `previous_keys` only verify, so tokens handed out before a
    rotation keep working until clients have moved on (put the old key there, then drop it).
    """

    key: SecretStr = field(default_factory=lambda: SecretStr(DEVELOPMENT_PAGE_TOKEN_KEY))
    previous_keys: tuple[SecretStr, ...] = ()

    @staticmethod
    def development_defaults(env: Env) -> list[str]:
        if secret(env, "EMPORIUM_PAGE_TOKEN_KEY") is None:
            return ["EMPORIUM_PAGE_TOKEN_KEY: the HMAC key of page tokens (32+ random bytes)"]
        return []

    @classmethod
    def from_env(cls, env: Env = os.environ) -> PageTokenSettings:
        key = secret(env, "EMPORIUM_PAGE_TOKEN_KEY")
        if key is None and not development(env):
            raise ConfigError("EMPORIUM_PAGE_TOKEN_KEY is required outside development")
        previous = env.get("EMPORIUM_PAGE_TOKEN_PREVIOUS_KEYS", "")
        return cls(
            key=key or SecretStr(DEVELOPMENT_PAGE_TOKEN_KEY),
            previous_keys=tuple(SecretStr(k.strip()) for k in previous.split(",") if k.strip()),
        )


@cache
def gateway_source_address() -> str:
    """The address the local gateway connects to services from (services.yaml), "" if none."""
    doc = yaml.safe_load(SERVICES_YAML.read_text())
    return str(doc["gateway"].get("upstream_source_address") or "")


@cache
def service_ports() -> dict[str, int]:
    """The default gRPC port of each service, from gateway/services.yaml (the one list)."""
    doc = yaml.safe_load(SERVICES_YAML.read_text())
    return {name: int(svc["port"]) for name, svc in doc["services"].items()}


def _workers(env: Env) -> int:
    raw = string(env, "EMPORIUM_WORKERS", "1").strip().lower()
    if raw == "auto":
        return len(os.sched_getaffinity(0))
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"EMPORIUM_WORKERS must be a number >= 1 or 'auto', got {raw!r}")
    return int(raw)


def _worker_index(env: Env) -> int | None:
    if not env.get("EMPORIUM_WORKER_INDEX"):
        return None
    return integer(env, "EMPORIUM_WORKER_INDEX", 0)


def ratio(env: Env, name: str, default: float) -> float:
    """A share in [0, 1] (a sampling ratio): the services' settings and the gateway's."""
    ratio = number(env, name, default)
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1], got {ratio}")
    return ratio


@dataclass(frozen=True)
class ServerSettings:
    """Where a service's gRPC server listens and how it shuts down."""

    name: str
    host: str = "127.0.0.1"
    port: int = 0
    grace_seconds: float = 10.0
    # Catalog image uploads are up to 10 MiB; gRPC's default limit is 4 MiB.
    max_message_bytes: int = 12 * 1024 * 1024
    page_tokens: PageTokenSettings = field(default_factory=PageTokenSettings)
    # The share of successful calls written to the access log (EMPORIUM_ACCESS_LOG_SAMPLE,
    # 0.1 by default: a line per call cost 11 % of a cached read's CPU); failed calls and calls
    # of EMPORIUM_SLOW_CALL_MS or more are always logged. The local stack logs every call.
    access_log_sample: float = 1.0
    slow_call_ms: float = 500.0
    # Worker processes on the one port (EMPORIUM_WORKERS: a number, or "auto" for the cores).
    # 1 by default until the e2e tests pass with several (README, Performance).
    workers: int = 1
    # Which worker this process is (set by the supervising process; None: not a worker).
    worker_index: int | None = None

    @staticmethod
    def development_defaults(env: Env) -> list[str]:
        return PageTokenSettings.development_defaults(env)

    @classmethod
    def from_env(cls, name: str, env: Env = os.environ) -> ServerSettings:
        prefix = f"EMPORIUM_{name.upper()}_GRPC"
        return cls(
            name=name,
            host=string(env, f"{prefix}_HOST", "127.0.0.1"),
            port=integer(env, f"{prefix}_PORT", service_ports()[name]),
            grace_seconds=number(env, "EMPORIUM_GRPC_GRACE_SECONDS", 10.0),
            page_tokens=PageTokenSettings.from_env(env),
            access_log_sample=ratio(env, "EMPORIUM_ACCESS_LOG_SAMPLE", 0.1),
            slow_call_ms=number(env, "EMPORIUM_SLOW_CALL_MS", 500.0),
            workers=_workers(env),
            worker_index=(
                integer(env, "EMPORIUM_WORKER_INDEX", 0)
                if env.get("EMPORIUM_WORKER_INDEX")
                else None
            ),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RabbitSettings:
    """The RabbitMQ broker that carries domain events.

    The URL carries the service's broker password, so it stays out of repr (`safe_url` shows
    it without the password).
    """

    url: str = field(default="amqp://guest:guest@127.0.0.1:5672/", repr=False)

    @property
    def safe_url(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        return parts._replace(netloc=netloc).geturl()

    def __repr__(self) -> str:
        return f"RabbitSettings(url={self.safe_url!r})"

    @staticmethod
    def development_defaults(env: Env) -> list[str]:
        url = _rabbit_url(env, string(env, "EMPORIUM_RABBITMQ_URL", ""))
        if not url:
            return ["EMPORIUM_RABBITMQ_URL: the broker URL with this service's own user"]
        if urlsplit(url).username in (None, "", "guest"):
            return ["EMPORIUM_RABBITMQ_URL: logs in as guest; give this service's own user"]
        return []

    @classmethod
    def from_env(cls, env: Env = os.environ) -> RabbitSettings:
        url = string(env, "EMPORIUM_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
        return cls(url=_rabbit_url(env, url))


def _rabbit_url(env: Env, url: str) -> str:
    """`url` with the login EMPORIUM_RABBITMQ_USERNAME / EMPORIUM_RABBITMQ_PASSWORD when both are
    set: a deployment shares one broker URL (host, vhost) and gives each service its own
    account (kit.accounts) apart."""
    user = string(env, "EMPORIUM_RABBITMQ_USERNAME", "")
    password = string(env, "EMPORIUM_RABBITMQ_PASSWORD", "")
    if not (url and user and password):
        return url
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


CASSANDRA_KEYSPACE_PREFIX = "emporium_"


def cassandra_development_password(keyspace: str) -> str:
    """The development password of the role that owns `keyspace` (kit.accounts creates it):
    `dev-<service>` for `emporium_<service>[suffix]`, as the broker's `dev-<service>`."""
    service = keyspace.removeprefix(CASSANDRA_KEYSPACE_PREFIX)
    return f"dev-{service}"


@dataclass(frozen=True)
class CassandraSettings:
    """A Cassandra cluster, the service's own keyspace and the role it logs in as.

    Each service logs in as its own role, named after its keyspace (`emporium_<service>` plus
    EMPORIUM_KEYSPACE_SUFFIX), which may use that keyspace and nothing else (kit.accounts
    creates both). The password is a `SecretStr`: repr, logs and errors never show it.
    """

    keyspace: str
    hosts: tuple[str, ...] = ("127.0.0.1",)
    port: int = 9042
    # How a new keyspace is replicated: "SimpleStrategy:1" for one local node,
    # "NetworkTopologyStrategy:dc1=3" in production.
    replication: str = "SimpleStrategy:1"
    # LOCAL_QUORUM reads and writes are consistent with each other on any replication factor.
    consistency: str = "LOCAL_QUORUM"
    # The login (PasswordAuthenticator); None: none is offered (a node without authentication).
    username: str | None = None
    password: SecretStr | None = None
    # A PEM file with the CA of the nodes' certificates: TLS, with the certificate and host
    # name checked. None: plain TCP (the local stack, on loopback).
    tls_ca: str | None = None

    @staticmethod
    def development_defaults(env: Env) -> list[str]:
        problems = []
        if not string(env, "EMPORIUM_CASSANDRA_USERNAME", ""):
            problems.append("EMPORIUM_CASSANDRA_USERNAME: this service's own Cassandra role")
        if secret(env, "EMPORIUM_CASSANDRA_PASSWORD") is None:
            problems.append("EMPORIUM_CASSANDRA_PASSWORD: the password of that role")
        return problems

    @classmethod
    def from_env(cls, keyspace: str, env: Env = os.environ) -> CassandraSettings:
        hosts = tuple(
            h.strip() for h in string(env, "EMPORIUM_CASSANDRA_HOSTS", "127.0.0.1").split(",")
        )
        keyspace = keyspace + string(env, "EMPORIUM_KEYSPACE_SUFFIX", "")
        username = string(env, "EMPORIUM_CASSANDRA_USERNAME", "")
        password = secret(env, "EMPORIUM_CASSANDRA_PASSWORD")
        if not (username and password):
            if not development(env):
                missing = CassandraSettings.development_defaults(env)
                raise ConfigError(
                    "outside EMPORIUM_ENV=development these must be set: " + "; ".join(missing)
                )
            # Development: the role kit.accounts creates for this keyspace, its known password.
            username = username or keyspace
            password = password or SecretStr(cassandra_development_password(keyspace))
        tls_ca = string(env, "EMPORIUM_CASSANDRA_TLS_CA", "") or None
        if tls_ca is not None and not Path(tls_ca).is_file():
            raise ConfigError(f"EMPORIUM_CASSANDRA_TLS_CA: no such file {tls_ca!r}")
        return cls(
            keyspace=keyspace,
            hosts=tuple(h for h in hosts if h),
            port=integer(env, "EMPORIUM_CASSANDRA_PORT", 9042),
            replication=string(env, "EMPORIUM_CASSANDRA_REPLICATION", cls.replication),
            consistency=string(env, "EMPORIUM_CASSANDRA_CONSISTENCY", cls.consistency),
            username=username,
            password=password,
            tls_ca=tls_ca,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context when EMPORIUM_CASSANDRA_TLS_CA is set: the nodes' certificates
        must chain to that CA and name the host connected to. None: no TLS."""
        if self.tls_ca is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


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
        sample = ratio(env, "EMPORIUM_TRACE_SAMPLE_RATIO", 0.1)
        return cls(
            service_name=service_name,
            otlp_endpoint=string(env, "EMPORIUM_OTLP_ENDPOINT", "") or None,
            log_level=string(env, "EMPORIUM_LOG_LEVEL", "INFO").upper(),
            otlp_token=string(env, "EMPORIUM_OTLP_TOKEN", "") or None,
            sample_ratio=sample,
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
        return cls(
            issuer=string(env, "EMPORIUM_JWT_ISSUER", cls.issuer),
            audience=string(env, "EMPORIUM_JWT_AUDIENCE", cls.audience),
            production=not development(env),
        )


def shop_currency(env: Env = os.environ) -> str:
    """The one currency the shop sells in (EMPORIUM_SHOP_CURRENCY, ISO 4217, default USD)."""
    currency = string(env, "EMPORIUM_SHOP_CURRENCY", "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ConfigError(f"EMPORIUM_SHOP_CURRENCY must be an ISO 4217 code, got {currency!r}")
    return currency
