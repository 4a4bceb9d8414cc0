"""The notification service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kit.config import (
    AuthSettings,
    ConfigError,
    Env,
    MongoSettings,
    RabbitSettings,
    ServerSettings,
    TelemetrySettings,
    integer,
    number,
    string,
)

NAME = "notification"
# Development only (EMPORIUM_ENV=development): a fixed secret, so sealed messages and
# unsubscribe links survive a restart of `make run`. Production refuses to start without one.
DEVELOPMENT_SECRET = "emporium-development-notification-secret"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 1025
    username: str = ""
    password: str = ""
    start_tls: bool = False
    sender: str = "Emporium <no-reply@emporium.local>"
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything the notification service reads from its environment.

    EMPORIUM_NOTIFICATION_QUEUE           the service's RabbitMQ queue ("notification")
    EMPORIUM_NOTIFICATION_SECRET          seals queued secret content and signs unsubscribe
                                          links (required in production)
    EMPORIUM_SMTP_HOST / _PORT            the SMTP server (127.0.0.1:1025, Mailpit locally)
    EMPORIUM_SMTP_USERNAME / _PASSWORD    SMTP login, if the server wants one
    EMPORIUM_SMTP_STARTTLS                "true" to upgrade the connection with STARTTLS
    EMPORIUM_SMTP_SENDER                  the From address
    EMPORIUM_SHOP_NAME / EMPORIUM_SHOP_URL  the shop's name and storefront URL in messages
    EMPORIUM_PUBLIC_API_URL               the gateway as users reach it (unsubscribe links)
    EMPORIUM_NOTIFICATION_BATCH_SIZE      subscribers per new-product batch event (200)
    EMPORIUM_NOTIFICATION_SENDERS         concurrent senders (2)
    EMPORIUM_NOTIFICATION_POLL_SECONDS    how often idle senders look for due messages (5); a
                                          message created by this replica wakes them at once
    EMPORIUM_NOTIFICATION_SMS_SANDBOX     "true" (default in development) for the sandbox SMS
                                          provider with magic numbers
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    mongo: MongoSettings
    rabbit: RabbitSettings
    user: ServerSettings
    smtp: SmtpSettings
    secret: str
    shop_name: str = "Emporium"
    shop_url: str = "http://127.0.0.1:8080"
    public_api_url: str = "http://127.0.0.1:8080"
    queue: str = NAME
    default_locale: str = "en"
    batch_size: int = 200
    senders: int = 2
    poll_seconds: float = 5.0
    sms_sandbox: bool = True
    watch_poll_seconds: float = 0.5

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        auth = AuthSettings.from_env(env)
        secret = string(env, "EMPORIUM_NOTIFICATION_SECRET", "")
        if not secret:
            if auth.production:
                raise ConfigError("EMPORIUM_NOTIFICATION_SECRET is required in production")
            secret = DEVELOPMENT_SECRET
        gateway = f"http://127.0.0.1:{string(env, 'EMPORIUM_GATEWAY_PORT', '8080')}"
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=auth,
            mongo=MongoSettings.from_env("emporium_notification", env),
            rabbit=RabbitSettings.from_env(env),
            user=ServerSettings.from_env("user", env),
            smtp=SmtpSettings(
                host=string(env, "EMPORIUM_SMTP_HOST", "127.0.0.1"),
                port=integer(env, "EMPORIUM_SMTP_PORT", 1025),
                username=string(env, "EMPORIUM_SMTP_USERNAME", ""),
                password=string(env, "EMPORIUM_SMTP_PASSWORD", ""),
                start_tls=string(env, "EMPORIUM_SMTP_STARTTLS", "false").lower() == "true",
                sender=string(env, "EMPORIUM_SMTP_SENDER", SmtpSettings.sender),
            ),
            secret=secret,
            shop_name=string(env, "EMPORIUM_SHOP_NAME", "Emporium"),
            shop_url=string(env, "EMPORIUM_SHOP_URL", gateway).rstrip("/"),
            public_api_url=string(env, "EMPORIUM_PUBLIC_API_URL", gateway).rstrip("/"),
            queue=string(env, "EMPORIUM_NOTIFICATION_QUEUE", NAME),
            batch_size=integer(env, "EMPORIUM_NOTIFICATION_BATCH_SIZE", 200),
            senders=integer(env, "EMPORIUM_NOTIFICATION_SENDERS", 2),
            poll_seconds=number(env, "EMPORIUM_NOTIFICATION_POLL_SECONDS", 5.0),
            sms_sandbox=string(
                env, "EMPORIUM_NOTIFICATION_SMS_SANDBOX", "false" if auth.production else "true"
            ).lower()
            == "true",
            watch_poll_seconds=number(env, "EMPORIUM_NOTIFICATION_WATCH_POLL_SECONDS", 0.5),
        )
