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
from datetime import UTC, datetime, timedelta

from emporium.user.v1 import user_events_pb2

from kit import errors
from kit.auth import Principal
from kit.errors import InvalidArgument, Violations
from kit.mapping import field_mask, timestamp
from services.user import domain, mapping
from services.user.domain import (
    Address,
    OneTimeToken,
    Purpose,
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
# Revocation marks outlive the tokens they refuse by this much (clock skew, leeway).
REVOCATION_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Tokens:
    """What a login or a refresh hands the client."""

    access_token: str
    access_expire_time: datetime
    refresh_token: str
    refresh_expire_time: datetime
    user: User


@dataclass(frozen=True)
class AdminBootstrap:
    """What the first-admin bootstrap did at start, and why (logged by bootstrap.py)."""

    CREATED = "created"
    EXISTS = "exists"  # the configured email already holds the admin role: nothing to do
    SKIPPED = "skipped"  # another admin exists: a new first admin is not needed
    REFUSED = "refused"  # the email belongs to a non-admin account: it is not promoted

    outcome: str
    user_id: str
    reason: str


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=30)
    # One-time tokens (config.py: password_reset_token_seconds, ...).
    reset_ttl: timedelta = timedelta(hours=1)
    verification_ttl: timedelta = timedelta(hours=24)


def _secret_hash(secret: str) -> str:
    # Refresh secrets and one-time tokens are 256 random bits: a fast hash is enough to keep
    # the database useless to a thief; a slow password hash would only cost CPU.
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

    async def token_revocations(self) -> dict[str, datetime]:
        """The live access-token revocation marks, by user id (ListTokenRevocations)."""
        return await self.tokens.access_revocations()

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
        registered = user_events_pb2.UserRegistered(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=settings.locale,
            settings=mapping.settings_to_proto(settings),
        )
        raw, token = self._one_time_token(user, Purpose.EMAIL_VERIFICATION, now)
        verification = self._verification_requested(user, settings, raw, token)
        return await self.users.create(user, settings, [registered, verification], token)

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

    async def _check_rate(
        self, limits: Iterable[tuple[str, int]], now: datetime, message: str, reason: str
    ) -> None:
        since = now - self.throttle_policy.window
        for key, limit in limits:
            if await self.throttle.failures(key, since) >= limit:
                raise errors.ResourceExhausted(message, reason=reason)

    async def _check_current_password(self, user: User, password: str, now: datetime) -> None:
        """The caller proves a stolen access token is not enough. Wrong guesses count with the
        account's failed logins, so both paths together allow `per_account` a window."""
        account_key, _ = domain.throttle_keys(user.email, "")
        await self._check_rate(
            [(account_key, self.throttle_policy.per_account)],
            now,
            "too many wrong passwords; try again later",
            "PASSWORD_THROTTLED",
        )
        if not await self.hasher.verify(user.password_hash, password):
            await self.throttle.record_failure([account_key], now)
            raise InvalidArgument("current_password", "is wrong")

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
        return await self._tokens(user, parts, family.expire_time, now)

    async def _revoke_access(self, user_id: str) -> None:
        """Every access token of the user issued until now stops working within seconds.

        Tokens carry whole seconds (`iat`), so the mark is the next whole second: every token
        issued so far is before it, and `_tokens` dates a token issued later in this second at
        the mark, so a new sign-in (after an enable, a role change) is not refused.
        """
        now = self.clock.now()
        valid_after = datetime.fromtimestamp(int(now.timestamp()) + 1, UTC)
        until = valid_after + self.policy.access_ttl + REVOCATION_MARGIN
        await self.tokens.revoke_access(user_id, valid_after, until)

    async def _tokens(
        self, user: User, parts: RefreshTokenParts, refresh_expire: datetime, now: datetime
    ) -> Tokens:
        expire = now + self.policy.access_ttl
        issued = int(now.timestamp())
        mark = await self.tokens.access_valid_after(user.id)
        if mark is not None:
            # At most a second ahead of the clock; verifiers allow 5 s of skew on `iat`.
            issued = max(issued, int(mark.timestamp()))
        claims = {
            "iss": self.policy.issuer,
            "aud": self.policy.audience,
            "sub": user.id,
            "iat": issued,
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
        return await self._tokens(user, new, expire, now)

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

    # --- one-time tokens: password reset and email verification -----------------------------

    def _one_time_token(
        self, user: User, purpose: Purpose, now: datetime
    ) -> tuple[str, OneTimeToken]:
        """A new raw token (for the event only) and what is stored of it (the hash)."""
        raw = domain.new_one_time_secret()
        ttl = (
            self.policy.reset_ttl
            if purpose is Purpose.PASSWORD_RESET
            else self.policy.verification_ttl
        )
        token = OneTimeToken(
            token_hash=_secret_hash(raw),
            purpose=purpose,
            user_id=user.id,
            email=user.email,
            expire_time=now + ttl,
            create_time=now,
        )
        return raw, token

    @staticmethod
    def _verification_requested(
        user: User, settings: UserSettings, raw: str, token: OneTimeToken
    ) -> user_events_pb2.EmailVerificationRequested:
        return user_events_pb2.EmailVerificationRequested(
            user_id=user.id,
            email=token.email,
            display_name=user.display_name,
            locale=settings.locale,
            token=raw,
            expire_time=timestamp(token.expire_time),
        )

    async def request_password_reset(self, *, email: str, client_address: str) -> None:
        """Issues a reset token if an active account uses `email`; the same answer, and the
        same throttle count, whether or not one does. Nothing else is written for an unknown
        address."""
        email = domain.normalise_email(email)
        now = self.clock.now()
        keys = domain.reset_request_keys(email, client_address)
        policy = self.throttle_policy
        await self._check_rate(
            zip(keys, (policy.emails_per_account, policy.reset_requests_per_address), strict=True),
            now,
            "too many password reset requests; try again later",
            "PASSWORD_RESET_THROTTLED",
        )
        await self.throttle.record_failure(keys, now)
        user = await self.users.by_email(email)
        if user is None or not user.active:
            return
        settings = await self._settings_of(user.id)
        raw, token = self._one_time_token(user, Purpose.PASSWORD_RESET, now)
        event = user_events_pb2.PasswordResetRequested(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=settings.locale,
            token=raw,
            expire_time=timestamp(token.expire_time),
        )
        await self.users.issue_token(token, [event])

    async def _find_token(
        self, raw: str, purpose: Purpose, client_address: str, now: datetime
    ) -> OneTimeToken:
        """The live token `raw` names, or INVALID_ARGUMENT naming `token`; failures count per
        client address, so tokens cannot be guessed at speed (not that 256 bits could be)."""
        raw = raw.strip()
        key = domain.token_failure_key(client_address)
        await self._check_rate(
            [(key, self.throttle_policy.token_failures_per_address)],
            now,
            "too many invalid tokens; try again later",
            "TOKEN_THROTTLED",
        )
        found = None
        if len(raw) <= domain.ONE_TIME_TOKEN_MAX:
            found = await self.users.find_token(_secret_hash(raw), purpose)
        if found is None or found.expire_time <= now:
            await self.throttle.record_failure([key], now)
            raise InvalidArgument("token", "is unknown, expired or already used")
        return found

    async def reset_password(self, *, token: str, new_password: str, client_address: str) -> None:
        violations = Violations()
        violations.check(bool(token.strip()), "token", "is required")
        if not new_password:
            violations.add("new_password", "is required")
        else:
            domain.check_password(violations, new_password, "", "new_password")
        violations.raise_if_any()
        now = self.clock.now()
        found = await self._find_token(token, Purpose.PASSWORD_RESET, client_address, now)
        # The rule against the account's own address needs the address; the token stays
        # unused, so the user can try a better password with the same link.
        violations = Violations()
        domain.check_password(violations, new_password, found.email, "new_password")
        violations.raise_if_any()
        user = await self.users.get(found.user_id)
        if user is None or not user.active:
            raise errors.FailedPrecondition(
                "the account is disabled or deleted", reason="ACCOUNT_NOT_ACTIVE"
            )
        if user.email != found.email:
            raise InvalidArgument("token", "was sent to an address the account no longer has")
        password_hash = await self.hasher.hash(new_password)
        if not await self.users.consume_token(found):
            raise InvalidArgument("token", "is unknown, expired or already used")
        # Sessions go first: a crash in between leaves the old password and no sessions (the
        # user asks for another link), never the new password with a thief's session alive.
        await self.tokens.revoke_all(user.id)
        # The link arrived at the address, which proves the user controls it.
        user = replace(user, password_hash=password_hash, email_verified=True, update_time=now)
        await self.users.save(user, [await self._password_changed(user)])
        account_key, _ = domain.throttle_keys(user.email, client_address)
        await self.throttle.clear(account_key)

    async def _password_changed(self, user: User) -> user_events_pb2.PasswordChanged:
        settings = await self._settings_of(user.id)
        return user_events_pb2.PasswordChanged(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=settings.locale,
        )

    async def verify_email(self, *, token: str, client_address: str) -> str:
        """Marks the token's address verified; returns the address."""
        if not token.strip():
            raise InvalidArgument("token", "is required")
        now = self.clock.now()
        found = await self._find_token(token, Purpose.EMAIL_VERIFICATION, client_address, now)
        user = await self.users.get(found.user_id)
        # A deleted account's address is anonymised, so this also refuses deleted accounts.
        if user is None or user.email != found.email:
            raise InvalidArgument("token", "was issued for an email the account no longer has")
        if not await self.users.consume_token(found):
            raise InvalidArgument("token", "is unknown, expired or already used")
        if not user.email_verified:
            user = replace(user, email_verified=True, update_time=now)
            event = user_events_pb2.EmailVerified(user_id=user.id, email=user.email)
            await self.users.save(user, [event])
        return user.email

    async def send_verification_email(self, caller: Principal) -> OneTimeToken:
        """A new verification token for the caller's address (earlier ones stop working)."""
        user = await self.me(caller)
        _require_enabled(user)
        if user.email_verified:
            raise errors.FailedPrecondition(
                "the email is already verified", reason="EMAIL_ALREADY_VERIFIED"
            )
        now = self.clock.now()
        key = domain.verification_request_key(user.id)
        await self._check_rate(
            [(key, self.throttle_policy.emails_per_account)],
            now,
            "too many verification emails; try again later",
            "VERIFICATION_THROTTLED",
        )
        await self.throttle.record_failure([key], now)
        settings = await self._settings_of(user.id)
        raw, token = self._one_time_token(user, Purpose.EMAIL_VERIFICATION, now)
        await self.users.issue_token(
            token, [self._verification_requested(user, settings, raw, token)]
        )
        return token

    # --- the caller's credentials -----------------------------------------------------------

    async def change_password(
        self, caller: Principal, *, current_password: str, new_password: str
    ) -> Tokens:
        """A new password; every session ends and the caller gets a fresh one."""
        user = await self.me(caller)
        violations = Violations()
        violations.check(bool(current_password), "current_password", "is required")
        if not new_password:
            violations.add("new_password", "is required")
        else:
            domain.check_password(violations, new_password, user.email, "new_password")
            violations.check(
                new_password != current_password,
                "new_password",
                "must differ from the current password",
            )
        violations.raise_if_any()
        _require_enabled(user)
        now = self.clock.now()
        await self._check_current_password(user, current_password, now)
        password_hash = await self.hasher.hash(new_password)
        # As in reset_password: sessions first, so a crash never keeps a stolen one alive.
        await self.tokens.revoke_all(user.id)
        user = replace(user, password_hash=password_hash, update_time=now)
        await self.users.save(user, [await self._password_changed(user)])
        return await self._new_session(user, now)

    async def change_email(
        self, caller: Principal, *, new_email: str, current_password: str
    ) -> User:
        """Moves the account to a new, unverified address and sends it a verification link;
        UserUpdated (with previous_email) lets the old address be told."""
        user = await self.me(caller)
        violations = Violations()
        try:
            email = domain.normalise_email(new_email, "new_email")
        except InvalidArgument as error:
            violations.items.extend(error.violations)
            email = ""
        if email and email == user.email:
            violations.add("new_email", "is the current email")
        violations.check(bool(current_password), "current_password", "is required")
        violations.raise_if_any()
        _require_enabled(user)
        now = self.clock.now()
        await self._check_current_password(user, current_password, now)
        previous_email = user.email
        user = replace(user, email=email, email_verified=False, update_time=now)
        settings = await self._settings_of(user.id)
        raw, token = self._one_time_token(user, Purpose.EMAIL_VERIFICATION, now)
        updated = user_events_pb2.UserUpdated(
            user_id=user.id,
            user=mapping.user_to_proto(user),
            update_mask=field_mask(["email", "email_verified"]),
            previous_email=previous_email,
            locale=settings.locale,
        )
        verification = self._verification_requested(user, settings, raw, token)
        await self.users.change_email(user, previous_email, [updated, verification], token)
        return user

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
            update_mask=field_mask(sorted(fields)),
            locale=settings.locale,
        )
        await self.users.save(user, [event])
        return user

    async def delete_me(self, caller: Principal) -> None:
        user = await self.me(caller)
        if (
            user.active
            and domain.ROLE_ADMIN in user.roles
            and not await self._another_active_admin(user.id)
        ):
            raise errors.FailedPrecondition(
                "the last active admin cannot delete their account; make another admin first",
                reason="LAST_ADMIN",
            )
        settings = await self._settings_of(user.id)
        event = user_events_pb2.UserDeleted(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=settings.locale,
        )
        await self._revoke_access(user.id)
        await self.tokens.revoke_all(user.id)
        await self.addresses.delete_all(user.id)
        await self.users.delete(user.deleted(self.clock.now()), [event])

    async def _another_active_admin(self, user_id: str) -> bool:
        """Whether an active admin other than `user_id` exists. A scan of the accounts, but
        it runs only when an admin deletes their own account and stops at the first match."""
        cursor = None
        while True:
            users, cursor = await self.users.page(500, cursor)
            if any(u.id != user_id and u.active and domain.ROLE_ADMIN in u.roles for u in users):
                return True
            if cursor is None:
                return False

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
            update_mask=field_mask(sorted(fields)),
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

    async def _administered(self, user_id: str) -> User:
        """The account an admin acts on: it exists and is not deleted."""
        user = await self.get_user(user_id)
        if user.state is State.DELETED:
            raise errors.FailedPrecondition("the account is deleted", reason="ACCOUNT_DELETED")
        return user

    async def disable_user(self, admin: Principal, user_id: str, *, reason: str = "") -> User:
        violations = Violations()
        if not user_id:
            violations.add("id", "is required")
        else:
            _check_uuid(violations, user_id, "id")
        violations.check(len(reason) <= 500, "reason", "must be at most 500 characters")
        violations.raise_if_any()
        user = await self._administered(user_id)
        if user.id == admin.user_id:
            # Also keeps the platform from losing its last admin by a slip.
            raise errors.FailedPrecondition(
                "admins cannot disable their own account", reason="SELF_DISABLE"
            )
        # Before the state is saved: a crash in between leaves only a harmless extra mark.
        await self._revoke_access(user.id)
        if user.state is State.ACTIVE:
            user = replace(user, state=State.DISABLED, update_time=self.clock.now())
            settings = await self._settings_of(user.id)
            event = user_events_pb2.UserDisabled(
                user_id=user.id,
                email=user.email,
                display_name=user.display_name,
                locale=settings.locale,
                reason=reason,
                admin_user_id=admin.user_id,
            )
            await self.users.save(user, [event])
        # Also for an account already disabled: finishes the revocation of a call that died
        # after saving. Until it runs, refresh refuses the disabled account anyway.
        await self.tokens.revoke_all(user.id)
        return user

    async def enable_user(self, admin: Principal, user_id: str) -> User:
        _require_uuid(user_id, "id")
        user = await self._administered(user_id)
        if user.state is State.ACTIVE:
            return user
        user = replace(user, state=State.ACTIVE, update_time=self.clock.now())
        settings = await self._settings_of(user.id)
        event = user_events_pb2.UserEnabled(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=settings.locale,
            admin_user_id=admin.user_id,
        )
        await self.users.save(user, [event])
        return user

    async def set_user_roles(self, admin: Principal, user_id: str, roles: Iterable[str]) -> User:
        """Replaces the account's roles; customer is always kept. Unchanged roles are a no-op."""
        _require_uuid(user_id, "id")
        wanted = frozenset(roles) | {domain.ROLE_CUSTOMER}
        unknown = sorted(wanted - domain.ROLES)
        if unknown:
            raise InvalidArgument("roles", f"holds unknown roles: {', '.join(unknown)}")
        user = await self._administered(user_id)
        if user.id == admin.user_id and domain.ROLE_ADMIN not in wanted:
            raise errors.FailedPrecondition(
                "admins cannot remove their own admin role", reason="SELF_DEMOTION"
            )
        if wanted == user.roles:
            return user
        # Tokens carry the roles: every token with the old ones stops working (a demotion bites).
        await self._revoke_access(user.id)
        previous = user.roles
        user = replace(user, roles=wanted, update_time=self.clock.now())
        event = user_events_pb2.UserRolesChanged(
            user_id=user.id,
            roles=mapping.roles_to_proto(wanted),
            previous_roles=mapping.roles_to_proto(previous),
            admin_user_id=admin.user_id,
        )
        await self.users.save(user, [event])
        return user

    async def bootstrap_admin(
        self, *, email: str, password: str, display_name: str
    ) -> AdminBootstrap:
        """Creates the configured first admin, if and only if that cannot hand an account over.

        An existing account is never promoted: whoever registered the configured email first
        (before the first start, say) chose its password, so promoting it would give them the
        shop. The admin is created only while the email is unclaimed and no admin exists;
        otherwise nothing changes and the report says why. Idempotent: a restart finds the
        admin it created under the email.
        """
        email = domain.normalise_email(email)
        existing = await self.users.by_email(email)
        if existing is not None:
            if domain.ROLE_ADMIN in existing.roles:
                return AdminBootstrap(
                    AdminBootstrap.EXISTS, existing.id, f"{email} is already an admin"
                )
            return AdminBootstrap(
                AdminBootstrap.REFUSED,
                existing.id,
                f"{email} is already registered by account {existing.id}, which is not an "
                "admin, and an existing account is never promoted at start; choose another "
                "EMPORIUM_ADMIN_EMAIL, or have an admin grant the role (SetUserRoles)",
            )
        # Only reached while the email is unclaimed (first start, or a new address), so the
        # scan does not run on every start of a large shop.
        cursor: bytes | None = None
        while True:
            users, cursor = await self.users.page(500, cursor)
            for user in users:
                if domain.ROLE_ADMIN in user.roles and user.state is not State.DELETED:
                    return AdminBootstrap(
                        AdminBootstrap.SKIPPED,
                        user.id,
                        f"an admin already exists (account {user.id}); {email} is not created",
                    )
            if cursor is None:
                break
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"emporium-admin/{email}"))
        admin = await self.register(
            email=email,
            password=password,
            display_name=display_name,
            request_id=request_id,
            roles=(domain.ROLE_CUSTOMER, domain.ROLE_ADMIN),
        )
        return AdminBootstrap(AdminBootstrap.CREATED, admin.id, f"created admin {email}")


def _require_enabled(user: User) -> None:
    """A disabled account keeps its access tokens for minutes; it must not turn them into
    new credentials (ChangePassword returns a fresh session) or new emails."""
    if user.state is State.DISABLED:
        raise errors.PermissionDenied("this account is disabled", reason="ACCOUNT_DISABLED")


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
