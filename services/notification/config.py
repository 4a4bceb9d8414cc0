"""The notification service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kit.config import (
    ROOT,
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
from kit.config import (
    secret as env_secret,
)
from kit.ssrf import parse_networks

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
class WebPushSettings:
    """Web Push (the push channel).

    EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY   the VAPID key (PEM, or the raw P-256 scalar in
                                         base64url). Required outside development; development
                                         generates one into $EMPORIUM_VAR/notification/
                                         vapid-private-key.pem and keeps it
    EMPORIUM_WEBPUSH_SUBJECT             the VAPID `sub` claim: a mailto: or https: contact for
                                         push services (the SMTP sender's address by default)
    EMPORIUM_WEBPUSH_ALLOWED_CIDRS       development only: networks the SSRF guard lets push
                                         endpoints reach although they are internal (the local
                                         stack: 127.0.0.0/8, for the tests' push endpoint)
    EMPORIUM_WEBPUSH_ALLOW_HTTP          development only: "true" accepts http:// endpoints
    """

    private_key: str = ""  # empty: the development key file
    development_key_path: Path = ROOT / "var/notification/vapid-private-key.pem"
    subject: str = "mailto:no-reply@emporium.local"
    allowed_cidrs: str = ""
    allow_http: bool = False
    timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls, auth: AuthSettings, sender: str, env: Env = os.environ) -> WebPushSettings:
        key = env_secret(env, "EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY")
        cidrs = string(env, "EMPORIUM_WEBPUSH_ALLOWED_CIDRS", "")
        allow_http = string(env, "EMPORIUM_WEBPUSH_ALLOW_HTTP", "false").lower() == "true"
        if auth.production:
            if key is None:
                raise ConfigError(
                    "EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY is required outside development"
                )
            if cidrs or allow_http:
                raise ConfigError(
                    "EMPORIUM_WEBPUSH_ALLOWED_CIDRS and EMPORIUM_WEBPUSH_ALLOW_HTTP are for "
                    "development only"
                )
        try:
            parse_networks(cidrs)
        except ValueError as exc:
            raise ConfigError(f"EMPORIUM_WEBPUSH_ALLOWED_CIDRS: {exc}") from None
        address = sender.rpartition("<")[2].rstrip(">").strip() or "no-reply@emporium.local"
        subject = string(env, "EMPORIUM_WEBPUSH_SUBJECT", f"mailto:{address}")
        if not subject.startswith(("mailto:", "https:")):
            raise ConfigError("EMPORIUM_WEBPUSH_SUBJECT must be a mailto: or https: URL")
        if key is not None:
            from services.notification.adapters.webpush import VapidKey

            try:
                VapidKey.parse(key.get_secret_value())
            except ValueError as exc:
                raise ConfigError(f"EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY {exc}") from None
        return cls(
            private_key=key.get_secret_value() if key is not None else "",
            development_key_path=Path(string(env, "EMPORIUM_VAR", str(ROOT / "var")))
            / "notification/vapid-private-key.pem",
            subject=subject,
            allowed_cidrs=cidrs,
            allow_http=allow_http,
        )

    def __repr__(self) -> str:
        return f"WebPushSettings(subject={self.subject!r}, allowed_cidrs={self.allowed_cidrs!r})"


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
    EMPORIUM_WEBPUSH_*                    Web Push: see WebPushSettings
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    mongo: MongoSettings
    rabbit: RabbitSettings
    user: ServerSettings
    smtp: SmtpSettings
    secret: str
    web_push: WebPushSettings = WebPushSettings()
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
        sender = string(env, "EMPORIUM_SMTP_SENDER", SmtpSettings.sender)
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
                sender=sender,
            ),
            secret=secret,
            web_push=WebPushSettings.from_env(auth, sender, env),
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
