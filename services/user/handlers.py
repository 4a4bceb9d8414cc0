"""The user service's use cases, over the ports; no gRPC and no storage details here.

Every method takes plain values and domain objects and returns domain objects; `grpc_api.py`
decodes and encodes. Events are built here (they are part of the use case) and handed to the
repositories, which store them with the state change in the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from emporium.user.v1 import user_events_pb2

from kit import errors
from kit.auth import Principal
from kit.errors import InvalidArgument, Violations
from services.user import domain, mapping
from services.user.domain import (
    Address,
    RefreshTokenParts,
    State,
    ThrottlePolicy,
    TokenFamily,
    User,
    UserSettings,
)
from services.user.ports import (
    AddressRepository,
    Clock,
    KeyStore,
    LoginThrottle,
    PasswordHasher,
    TokenRepository,
    UserRepository,
)

MAX_ADDRESSES = 50


@dataclass(frozen=True)
class Tokens:
    """What a login or a refresh hands the client."""

    access_token: str
    access_expire_time: datetime
    refresh_token: str
    refresh_expire_time: datetime
    user: User


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=30)


def _secret_hash(secret: str) -> str:
    # Refresh secrets are 256 random bits: a fast hash is enough to keep the database useless
    # to a thief; a slow password hash would only cost CPU.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class UserHandlers:
    users: UserRepository
    addresses: AddressRepository
    tokens: TokenRepository
    throttle: LoginThrottle
    hasher: PasswordHasher
    keys: KeyStore
    clock: Clock
    policy: TokenPolicy
    throttle_policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    # Verified against when an email is unknown, so both answers take as long.
    dummy_hash: str = ""

    # --- registration and sign-in -----------------------------------------------------------

    async def register(
        self,
        *,
        email: str,
        password: str,
        display_name: str,
        request_id: str = "",
        locale: str = "",
        time_zone: str = "",
        marketing_consent: bool = False,
        roles: Iterable[str] = (domain.ROLE_CUSTOMER,),
    ) -> User:
        violations = Violations()
        try:
            email = domain.normalise_email(email)
        except InvalidArgument as error:
            violations.items.extend(error.violations)
            email = ""
        if not password:
            violations.add("password", "is required")
        else:
            domain.check_password(violations, password, email, "password")
        name = domain.clean_display_name(violations, display_name, "display_name")
        domain.check_locale(violations, locale, "locale")
        domain.check_time_zone(violations, time_zone, "time_zone")
        if request_id:
            _check_uuid(violations, request_id, "request_id")
        violations.raise_if_any()

        now = self.clock.now()
        user = User(
            id=domain.new_id(),
            email=email,
            display_name=name,
            password_hash=await self.hasher.hash(password),
            roles=frozenset(roles),
            state=State.ACTIVE,
            create_time=now,
            update_time=now,
            request_id=request_id,
        )
        settings = UserSettings(
            user_id=user.id,
            update_time=now,
            locale=locale or "en",
            time_zone=time_zone or "UTC",
            marketing_consent=marketing_consent,
            marketing_consent_update_time=now if marketing_consent else None,
        )
        event = user_events_pb2.UserRegistered(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=settings.locale,
            settings=mapping.settings_to_proto(settings),
        )
        return await self.users.create(user, settings, [event])

    async def login(self, *, email: str, password: str, client_address: str) -> Tokens:
        violations = Violations()
        violations.check(bool(email.strip()), "email", "is required")
        violations.check(bool(password), "password", "is required")
        violations.raise_if_any()
        try:
            email = domain.normalise_email(email)
        except InvalidArgument:
            email = email.strip().lower()  # cannot exist; answered like any unknown account

        now = self.clock.now()
        account_key, address_key = domain.throttle_keys(email, client_address)
        since = now - self.throttle_policy.window
        if (
            await self.throttle.failures(account_key, since) >= self.throttle_policy.per_account
            or await self.throttle.failures(address_key, since) >= self.throttle_policy.per_address
        ):
            raise errors.ResourceExhausted(
                "too many failed sign-ins; try again later", reason="LOGIN_THROTTLED"
            )

        user = await self.users.by_email(email)
        stored_hash = user.password_hash if user and user.password_hash else self.dummy_hash
        valid = await self.hasher.verify(stored_hash, password)
        if user is None or not valid or user.state is State.DELETED:
            await self.throttle.record_failure([account_key, address_key], now)
            raise errors.Unauthenticated("the email or the password is wrong")
        if user.state is State.DISABLED:
            raise errors.PermissionDenied("this account is disabled", reason="ACCOUNT_DISABLED")

        await self.throttle.clear(account_key)
        changes: dict = {"last_login_time": now}
        if self.hasher.needs_rehash(user.password_hash):
            changes["password_hash"] = await self.hasher.hash(password)
        user = replace(user, **changes)
        await self.users.save(user)
        return await self._new_session(user, now)

    async def _new_session(self, user: User, now: datetime) -> Tokens:
        parts = RefreshTokenParts.new()
        family = TokenFamily(
            family_id=parts.family_id,
            user_id=user.id,
            current_token_id=parts.token_id,
            current_secret_hash=_secret_hash(parts.secret),
            expire_time=now + self.policy.refresh_ttl,
            create_time=now,
        )
        await self.tokens.add(family)
        return self._tokens(user, parts, family.expire_time, now)

    def _tokens(
        self, user: User, parts: RefreshTokenParts, refresh_expire: datetime, now: datetime
    ) -> Tokens:
        expire = now + self.policy.access_ttl
        claims = {
            "iss": self.policy.issuer,
            "aud": self.policy.audience,
            "sub": user.id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expire.timestamp()),
            "jti": str(uuid.uuid4()),
            "sid": parts.family_id,  # the session (refresh family) the token belongs to
            "roles": sorted(user.roles),
        }
        return Tokens(self.keys.sign(claims), expire, str(parts), refresh_expire, user)

    async def refresh(self, *, refresh_token: str) -> Tokens:
        parts = RefreshTokenParts.parse(refresh_token)
        now = self.clock.now()
        family = await self.tokens.get(parts.family_id)
        invalid = errors.Unauthenticated("the refresh token is invalid, expired or revoked")
        if family is None or family.revoked or family.expire_time <= now:
            raise invalid
        if parts.token_id in family.rotated:
            # A rotated-away token came back: it leaked. Nobody can tell the thief from the
            # user, so the whole family stops working and the user signs in again.
            await self.tokens.revoke(family.family_id)
            raise errors.Unauthenticated(
                "the refresh token was already used; the session is revoked",
                reason="REFRESH_TOKEN_REUSED",
            )
        if parts.token_id != family.current_token_id or not hmac.compare_digest(
            family.current_secret_hash, _secret_hash(parts.secret)
        ):
            raise invalid
        user = await self.users.get(family.user_id)
        if user is None or not user.active:
            await self.tokens.revoke(family.family_id)
            raise invalid
        new = RefreshTokenParts(family.family_id, domain.new_id(), secrets.token_urlsafe(32))
        # The family's lifetime is absolute from sign-in: refreshing never extends a session.
        expire = family.expire_time
        if not await self.tokens.rotate(family, new.token_id, _secret_hash(new.secret), expire):
            # Another refresh with this same token won the race: the token was used twice.
            await self.tokens.revoke(family.family_id)
            raise errors.Unauthenticated(
                "the refresh token was already used; the session is revoked",
                reason="REFRESH_TOKEN_REUSED",
            )
        return self._tokens(user, new, expire, now)

    async def logout(self, *, refresh_token: str, all_sessions: bool = False) -> None:
        parts = RefreshTokenParts.parse(refresh_token)
        family = await self.tokens.get(parts.family_id)
        # Logging out twice, or with an expired token, succeeds: the session is over either way.
        if family is None or not hmac.compare_digest(
            family.current_secret_hash, _secret_hash(parts.secret)
        ):
            if family is not None and parts.token_id in family.rotated:
                await self.tokens.revoke(family.family_id)
            return
        if all_sessions:
            await self.tokens.revoke_all(family.user_id)
        else:
            await self.tokens.revoke(family.family_id)

    def jwks(self) -> bytes:
        """The JWK Set that verifies access tokens (signing key, retired and next keys)."""
        return self.keys.jwks_json()

    # --- the caller's own account -----------------------------------------------------------

    async def me(self, caller: Principal) -> User:
        user = await self.users.get(caller.user_id)
        if user is None or user.state is State.DELETED:
            raise errors.NotFound("the account does not exist")
        return user

    async def update_me(
        self, caller: Principal, *, display_name: str, phone_number: str, mask: Iterable[str]
    ) -> User:
        fields = _mask(mask, {"display_name", "phone_number"})
        user = await self.me(caller)
        violations = Violations()
        changes: dict = {}
        if "display_name" in fields:
            changes["display_name"] = domain.clean_display_name(
                violations, display_name, "user.display_name"
            )
        if "phone_number" in fields:
            domain.check_phone(violations, phone_number, "user.phone_number")
            changes["phone_number"] = phone_number
        violations.raise_if_any()
        user = replace(user, **changes, update_time=self.clock.now())
        settings = await self._settings_of(user.id)
        event = user_events_pb2.UserUpdated(
            user_id=user.id,
            user=mapping.user_to_proto(user),
            update_mask=mapping.field_mask(sorted(fields)),
            locale=settings.locale,
        )
        await self.users.save(user, [event])
        return user

    async def delete_me(self, caller: Principal) -> None:
        user = await self.me(caller)
        settings = await self._settings_of(user.id)
        event = user_events_pb2.UserDeleted(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=settings.locale,
        )
        await self.tokens.revoke_all(user.id)
        await self.addresses.delete_all(user.id)
        await self.users.delete(user.deleted(self.clock.now()), [event])

    # --- settings ---------------------------------------------------------------------------

    async def _settings_of(self, user_id: str) -> UserSettings:
        settings = await self.users.get_settings(user_id)
        return settings or UserSettings(user_id=user_id, update_time=self.clock.now())

    async def get_settings(self, caller: Principal) -> UserSettings:
        await self.me(caller)
        return await self._settings_of(caller.user_id)

    async def update_settings(
        self, caller: Principal, wanted: UserSettings, mask: Iterable[str]
    ) -> UserSettings:
        channel_fields = {f"notification_channels.{c}" for c in mapping.CHANNEL_FIELDS}
        allowed = {
            "locale",
            "time_zone",
            "currency_code",
            "marketing_consent",
            "notification_channels",
            *channel_fields,
        }
        fields = _mask(mask, allowed)
        if "notification_channels" in fields:
            fields = (fields - {"notification_channels"}) | channel_fields
        await self.me(caller)
        current = await self._settings_of(caller.user_id)
        violations = Violations()
        if "locale" in fields:
            domain.check_locale(violations, wanted.locale, "settings.locale")
            violations.check(bool(wanted.locale), "settings.locale", "is required")
        if "time_zone" in fields:
            domain.check_time_zone(violations, wanted.time_zone, "settings.time_zone")
            violations.check(bool(wanted.time_zone), "settings.time_zone", "is required")
        if "currency_code" in fields and not domain.CURRENCY.match(wanted.currency_code):
            violations.add("settings.currency_code", "must be an ISO 4217 code such as EUR")
        violations.raise_if_any()

        now = self.clock.now()
        changes: dict = {
            name: getattr(wanted, name)
            for name in ("locale", "time_zone", "currency_code")
            if name in fields
        }
        channels = {
            c: getattr(wanted.channels, c)
            for c in mapping.CHANNEL_FIELDS
            if f"notification_channels.{c}" in fields
        }
        if channels:
            changes["channels"] = replace(current.channels, **channels)
        if "marketing_consent" in fields and wanted.marketing_consent != current.marketing_consent:
            changes["marketing_consent"] = wanted.marketing_consent
            changes["marketing_consent_update_time"] = now
        settings = replace(current, **changes, update_time=now)
        event = user_events_pb2.UserSettingsUpdated(
            user_id=settings.user_id,
            settings=mapping.settings_to_proto(settings),
            update_mask=mapping.field_mask(sorted(fields)),
        )
        await self.users.save_settings(settings, [event])
        return settings

    # --- addresses --------------------------------------------------------------------------

    async def list_addresses(self, caller: Principal) -> list[Address]:
        return await self.addresses.list(caller.user_id)

    async def create_address(self, caller: Principal, address: Address) -> Address:
        violations = Violations()
        domain.check_address(violations, address)
        if address.request_id:
            _check_uuid(violations, address.request_id, "request_id")
        violations.raise_if_any()
        await self.me(caller)
        existing = await self.addresses.list(caller.user_id)
        if address.request_id:
            for earlier in existing:
                if earlier.request_id == address.request_id:
                    return earlier
        if len(existing) >= MAX_ADDRESSES:
            raise errors.FailedPrecondition(
                f"an address book holds at most {MAX_ADDRESSES} addresses"
            )
        now = self.clock.now()
        # The id is derived from the request id when there is one, so a retry that races the
        # first call writes the same row instead of a second address.
        address_id = (
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{caller.user_id}/{address.request_id}"))
            if address.request_id
            else domain.new_id()
        )
        stored = replace(
            address, id=address_id, user_id=caller.user_id, create_time=now, update_time=now
        )
        await self._put_address(stored, existing)
        return stored

    async def get_address(self, caller: Principal, address_id: str) -> Address:
        _require_uuid(address_id, "id")
        address = await self.addresses.get(caller.user_id, address_id)
        if address is None:
            # Another user's address id gets the same answer as a missing one.
            raise errors.NotFound("the address does not exist")
        return address

    async def update_address(
        self, caller: Principal, address_id: str, wanted: Address, mask: Iterable[str]
    ) -> Address:
        allowed = {"label", "postal_address", "phone_number", "default_shipping", "default_billing"}
        fields = _mask(mask, allowed)
        current = await self.get_address(caller, address_id)
        changes = {name: getattr(wanted, name) for name in fields}
        updated = replace(current, **changes, update_time=self.clock.now())
        violations = Violations()
        domain.check_address(violations, updated)
        violations.raise_if_any()
        await self._put_address(updated, await self.addresses.list(caller.user_id))
        return updated

    async def _put_address(self, address: Address, book: list[Address]) -> None:
        # One default of each kind: a new default takes the flag from the previous one.
        for other in book:
            if other.id == address.id:
                continue
            clear = {}
            if address.default_shipping and other.default_shipping:
                clear["default_shipping"] = False
            if address.default_billing and other.default_billing:
                clear["default_billing"] = False
            if clear:
                await self.addresses.put(replace(other, **clear, update_time=address.update_time))
        await self.addresses.put(address)

    async def delete_address(self, caller: Principal, address_id: str) -> None:
        _require_uuid(address_id, "id")
        if not await self.addresses.delete(caller.user_id, address_id):
            raise errors.NotFound("the address does not exist")

    # --- administration ---------------------------------------------------------------------

    async def get_user(self, user_id: str) -> User:
        _require_uuid(user_id, "id")
        user = await self.users.get(user_id)
        if user is None:
            raise errors.NotFound("the user does not exist")
        return user

    async def list_users(
        self,
        *,
        size: int,
        cursor: bytes | None,
        email_prefix: str = "",
        role: str = "",
        state: State | None = None,
    ) -> tuple[list[User], bytes | None]:
        prefix = email_prefix.strip().lower()

        def wanted(user: User) -> bool:
            return (
                user.email.startswith(prefix)
                and (not role or role in user.roles)
                and (state is None or user.state is state)
            )

        users, next_cursor = await self.users.page(size, cursor)
        return [u for u in users if wanted(u)], next_cursor

    async def ensure_admin(self, *, email: str, password: str, display_name: str) -> User:
        """The configured first admin exists and holds the admin role (idempotent)."""
        email = domain.normalise_email(email)
        existing = await self.users.by_email(email)
        if existing is not None:
            if domain.ROLE_ADMIN not in existing.roles:
                existing = replace(
                    existing,
                    roles=existing.roles | {domain.ROLE_ADMIN},
                    update_time=self.clock.now(),
                )
                await self.users.save(existing)
            return existing
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"emporium-admin/{email}"))
        return await self.register(
            email=email,
            password=password,
            display_name=display_name,
            request_id=request_id,
            roles=(domain.ROLE_CUSTOMER, domain.ROLE_ADMIN),
        )


def _check_uuid(violations: Violations, value: str, field_name: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        violations.add(field_name, "must be a UUID")


def _require_uuid(value: str, field_name: str) -> None:
    violations = Violations()
    if not value:
        violations.add(field_name, "is required")
    else:
        _check_uuid(violations, value, field_name)
    violations.raise_if_any()


def _mask(paths: Iterable[str], allowed: set[str]) -> set[str]:
    fields = set(paths)
    if not fields:
        raise InvalidArgument("update_mask", "names no field; list the fields to change")
    unknown = sorted(fields - allowed)
    if unknown:
        raise InvalidArgument(
            "update_mask",
            f"cannot change {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
        )
    return fields
