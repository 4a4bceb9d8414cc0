"""The catalog service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kit.config import (
    AuthSettings,
    CassandraSettings,
    ConfigError,
    Env,
    RabbitSettings,
    RedisSettings,
    ServerSettings,
    TelemetrySettings,
    integer,
    number,
    refuse_development_defaults,
    shop_currency,
    string,
)

NAME = "catalog"


@dataclass(frozen=True)
class Settings:
    """Everything the catalog service reads from its environment.

    EMPORIUM_SHOP_CURRENCY                    the shop's currency, ISO 4217 (USD; kit.config)
    EMPORIUM_CATALOG_RESERVATION_TTL_SECONDS  how long a reservation holds when ReserveStock
                                              names no ttl (900); tests set a few seconds
    EMPORIUM_CATALOG_SWEEP_SECONDS            how often expired reservations are released (5)
    EMPORIUM_CATALOG_CACHE_TTL_SECONDS        how long a cached product lives in Redis (300)
    EMPORIUM_CATALOG_CACHE_PREFIX             prefix of the cache's Redis keys (catalog:)
    EMPORIUM_CATALOG_CACHE_LOG_SECONDS        how often cache hit/miss totals are logged (60)
    EMPORIUM_CATALOG_CACHE_LOCAL_SIZE         products each process keeps in memory, kept
                                              fresh by Redis's invalidation messages (4096;
                                              0: none, every read asks Redis)
    EMPORIUM_CATALOG_LOW_STOCK_THRESHOLD      available units at or below which a change is
                                              logged as low stock (5); consumers of
                                              StockLevelChanged apply their own
    EMPORIUM_CATALOG_QUEUE                    the RabbitMQ queue of its consumers ("catalog" plus
                                              EMPORIUM_KEYSPACE_SUFFIX: a catalog with a keyspace
                                              of its own, a test's, has a queue of its own too)
    EMPORIUM_USER_GRPC_HOST / _PORT           where the user service serves the JWK Set
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    cassandra: CassandraSettings
    rabbit: RabbitSettings
    redis: RedisSettings
    user_address: str
    currency: str = "USD"
    reservation_ttl_seconds: float = 900
    sweep_seconds: float = 5
    cache_ttl_seconds: float = 300
    cache_prefix: str = "catalog:"
    cache_log_seconds: float = 60
    cache_local_size: int = 4096
    low_stock_threshold: int = 5
    queue: str = NAME

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings, RabbitSettings, CassandraSettings)
        currency = shop_currency(env)
        ttl = number(env, "EMPORIUM_CATALOG_RESERVATION_TTL_SECONDS", 900)
        if ttl <= 0:
            raise ConfigError("EMPORIUM_CATALOG_RESERVATION_TTL_SECONDS must be positive")
        local_size = integer(env, "EMPORIUM_CATALOG_CACHE_LOCAL_SIZE", 4096)
        if local_size < 0:
            raise ConfigError("EMPORIUM_CATALOG_CACHE_LOCAL_SIZE must be 0 or more")
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=AuthSettings.from_env(env),
            cassandra=CassandraSettings.from_env("emporium_catalog", env),
            rabbit=RabbitSettings.from_env(env),
            redis=RedisSettings.from_env(env),
            user_address=ServerSettings.from_env("user", env).address,
            currency=currency,
            reservation_ttl_seconds=ttl,
            sweep_seconds=number(env, "EMPORIUM_CATALOG_SWEEP_SECONDS", 5),
            cache_ttl_seconds=number(env, "EMPORIUM_CATALOG_CACHE_TTL_SECONDS", 300),
            cache_prefix=string(env, "EMPORIUM_CATALOG_CACHE_PREFIX", "catalog:"),
            cache_log_seconds=integer(env, "EMPORIUM_CATALOG_CACHE_LOG_SECONDS", 60),
            cache_local_size=local_size,
            low_stock_threshold=integer(env, "EMPORIUM_CATALOG_LOW_STOCK_THRESHOLD", 5),
            queue=string(
                env, "EMPORIUM_CATALOG_QUEUE", NAME + string(env, "EMPORIUM_KEYSPACE_SUFFIX", "")
            ),
        )
