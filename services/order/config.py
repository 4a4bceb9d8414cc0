"""The order service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kit.config import (
    AuthSettings,
    CassandraSettings,
    Env,
    RabbitSettings,
    ServerSettings,
    TelemetrySettings,
    number,
    refuse_development_defaults,
    shop_currency,
    string,
)

NAME = "order"


@dataclass(frozen=True)
class Settings:
    """Everything the order service reads from its environment.

    EMPORIUM_ORDER_QUEUE                 the service's RabbitMQ queue ("order")
    EMPORIUM_ORDER_WATCH_POLL_SECONDS    how often WatchOrder re-reads the order (5): its own
                                         changes reach a watch in memory; this fallback finds
                                         those stored by other replicas
    EMPORIUM_ORDER_SWEEP_SECONDS         how often events a crash left unannounced are handed
                                         to the outbox (5)
    EMPORIUM_ORDER_CHECKOUT_DEADLINE_SECONDS  how long an order may wait for its stock and
                                         payment (PENDING, CONFIRMED) before it is cancelled
                                         with its compensations (900)
    EMPORIUM_ORDER_DEADLINE_SWEEP_SECONDS  how often passed deadlines are looked for (5)
    EMPORIUM_ORDER_CALL_TIMEOUT_SECONDS  deadline of each call to catalog, cart, shipping and
                                         payment (5)
    EMPORIUM_SHOP_CURRENCY               the shop's currency (kit.config, "USD")
    The other services are found where they listen (EMPORIUM_<NAME>_GRPC_HOST / _PORT).
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    cassandra: CassandraSettings
    rabbit: RabbitSettings
    user: ServerSettings
    catalog: ServerSettings
    cart: ServerSettings
    shipping: ServerSettings
    payment: ServerSettings
    queue: str = NAME
    shop_currency: str = "USD"
    watch_poll_seconds: float = 5.0
    sweep_seconds: float = 5.0
    call_timeout_seconds: float = 5.0
    checkout_deadline_seconds: float = 900.0
    deadline_sweep_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings, RabbitSettings, CassandraSettings)
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=AuthSettings.from_env(env),
            cassandra=CassandraSettings.from_env("emporium_order", env),
            rabbit=RabbitSettings.from_env(env),
            user=ServerSettings.from_env("user", env),
            catalog=ServerSettings.from_env("catalog", env),
            cart=ServerSettings.from_env("cart", env),
            shipping=ServerSettings.from_env("shipping", env),
            payment=ServerSettings.from_env("payment", env),
            queue=string(env, "EMPORIUM_ORDER_QUEUE", NAME),
            shop_currency=shop_currency(env),
            watch_poll_seconds=number(env, "EMPORIUM_ORDER_WATCH_POLL_SECONDS", 5.0),
            sweep_seconds=number(env, "EMPORIUM_ORDER_SWEEP_SECONDS", 5.0),
            call_timeout_seconds=number(env, "EMPORIUM_ORDER_CALL_TIMEOUT_SECONDS", 5.0),
            checkout_deadline_seconds=number(
                env, "EMPORIUM_ORDER_CHECKOUT_DEADLINE_SECONDS", 900.0
            ),
            deadline_sweep_seconds=number(env, "EMPORIUM_ORDER_DEADLINE_SWEEP_SECONDS", 5.0),
        )
