"""The user service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from pydantic import SecretStr

from kit.config import (
    ROOT,
    AuthSettings,
    CassandraSettings,
    ConfigError,
    Env,
    RabbitSettings,
    ServerSettings,
    TelemetrySettings,
    gateway_source_address,
    integer,
    refuse_development_defaults,
    secret,
    string,
)

NAME = "user"


@dataclass(frozen=True)
class KeySettings:
    """Where the access-token signing keys come from.

    EMPORIUM_USER_JWT_PRIVATE_KEY            PEM of the current ES256 (P-256) signing key
    EMPORIUM_USER_JWT_EXTRA_PUBLIC_KEYS      PEMs of other keys the JWKS lists: retired keys
                                             until every token they signed has expired, and
                                             the next key, published at least one gateway
                                             JWKS cache period (5 min) before it signs
    Without a private key, development falls back to a key generated once into
    `$EMPORIUM_VAR/user/jwt-signing-key.pem` (EMPORIUM_VAR defaults to var/ in the repository);
    anywhere else (EMPORIUM_ENV not development) the service refuses to start.
    """

    private_key_pem: SecretStr | None = None
    extra_public_keys_pem: str = ""
    development_key_path: Path = ROOT / "var/user/jwt-signing-key.pem"

    @staticmethod
    def development_defaults(env: Env) -> list[str]:
        if secret(env, "EMPORIUM_USER_JWT_PRIVATE_KEY") is None:
            return ["EMPORIUM_USER_JWT_PRIVATE_KEY: PEM of the ES256 access-token signing key"]
        return []

    @classmethod
    def from_env(cls, auth: AuthSettings, env: Env = os.environ) -> KeySettings:
        pem = secret(env, "EMPORIUM_USER_JWT_PRIVATE_KEY")
        if pem is None and auth.production:
            raise ConfigError("EMPORIUM_USER_JWT_PRIVATE_KEY is required outside development")
        return cls(
            private_key_pem=pem,
            extra_public_keys_pem=string(env, "EMPORIUM_USER_JWT_EXTRA_PUBLIC_KEYS", ""),
            # Beside the local servers' data (EMPORIUM_VAR, as infra/local sets it).
            development_key_path=Path(string(env, "EMPORIUM_VAR", str(ROOT / "var")))
            / "user/jwt-signing-key.pem",
        )


@dataclass(frozen=True)
class AdminSettings:
    """The first admin account, created at start-up only if no admin exists and the email is
    unclaimed (handlers.bootstrap_admin: an existing account is never promoted).

    EMPORIUM_ADMIN_EMAIL / EMPORIUM_ADMIN_PASSWORD. Development (`make run`) defaults to
    admin@example.com / emporium-admin-dev; anywhere else no admin is created unless both are
    set, and the development password is refused.
    """

    email: str = ""
    password: SecretStr = field(default_factory=lambda: SecretStr(""))

    DEVELOPMENT_EMAIL = "admin@example.com"
    DEVELOPMENT_PASSWORD = "emporium-admin-dev"

    @staticmethod
    def development_defaults(env: Env) -> list[str]:
        password = secret(env, "EMPORIUM_ADMIN_PASSWORD")
        if password is not None and (
            password.get_secret_value() == AdminSettings.DEVELOPMENT_PASSWORD
        ):
            return ["EMPORIUM_ADMIN_PASSWORD: is the development password"]
        return []

    @classmethod
    def from_env(cls, auth: AuthSettings, env: Env = os.environ) -> AdminSettings:
        email = string(env, "EMPORIUM_ADMIN_EMAIL", "")
        password = string(env, "EMPORIUM_ADMIN_PASSWORD", "")
        if not auth.production and not email and not password:
            email, password = cls.DEVELOPMENT_EMAIL, cls.DEVELOPMENT_PASSWORD
        if bool(email) != bool(password):
            raise ConfigError(
                "set both EMPORIUM_ADMIN_EMAIL and EMPORIUM_ADMIN_PASSWORD, or neither"
            )
        return cls(email=email, password=SecretStr(password))


@dataclass(frozen=True)
class Settings:
    """Everything the user service reads from its environment."""

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    keys: KeySettings
    admin: AdminSettings
    cassandra: CassandraSettings
    rabbit: RabbitSettings
    # Access tokens are short-lived: a stolen one is useful for minutes, not days.
    access_token_seconds: int = 15 * 60
    refresh_token_seconds: int = 30 * 24 * 3600
    # One-time tokens: a reset link is a key to the account, so it lives an hour; a
    # verification link only proves the address, and people open their mail a day later.
    password_reset_token_seconds: int = 3600
    email_verification_token_seconds: int = 24 * 3600
    # Failed sign-ins allowed per 15 minutes, per account and per client address. Every
    # request through a local gateway comes from 127.0.0.1, so a test stack may want a higher
    # per-address limit than production.
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    # Peers whose x-forwarded-for names the client (EMPORIUM_USER_TRUSTED_PROXIES, addresses
    # or CIDRs, comma-separated): the gateway. The local gateway connects from its own loopback
    # address (services.yaml gateway.upstream_source_address); in Kubernetes, the gateway
    # pods' network. Nobody else can move a client's sign-in throttle with that header.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(
            env, ServerSettings, RabbitSettings, CassandraSettings, KeySettings, AdminSettings
        )
        auth = AuthSettings.from_env(env)
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=auth,
            keys=KeySettings.from_env(auth, env),
            admin=AdminSettings.from_env(auth, env),
            cassandra=CassandraSettings.from_env("emporium_user", env),
            rabbit=RabbitSettings.from_env(env),
            access_token_seconds=integer(env, "EMPORIUM_USER_ACCESS_TOKEN_SECONDS", 15 * 60),
            refresh_token_seconds=integer(
                env, "EMPORIUM_USER_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600
            ),
            password_reset_token_seconds=integer(
                env, "EMPORIUM_USER_PASSWORD_RESET_TOKEN_SECONDS", 3600
            ),
            email_verification_token_seconds=integer(
                env, "EMPORIUM_USER_EMAIL_VERIFICATION_TOKEN_SECONDS", 24 * 3600
            ),
            login_failures_per_account=integer(env, "EMPORIUM_USER_LOGIN_FAILURES_PER_ACCOUNT", 5),
            login_failures_per_address=integer(env, "EMPORIUM_USER_LOGIN_FAILURES_PER_ADDRESS", 20),
            trusted_proxies=_networks(
                env, "EMPORIUM_USER_TRUSTED_PROXIES", gateway_source_address()
            ),
        )


def _networks(env: Env, name: str, default: str) -> tuple[IPv4Network | IPv6Network, ...]:
    raw = string(env, name, default)
    try:
        return tuple(ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name} must list IP addresses or networks, got {raw!r}") from None
