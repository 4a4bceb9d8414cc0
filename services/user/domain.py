"""The user domain: accounts, their rules, refresh-token families, one-time tokens and
throttling. No I/O."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

import email_validator

from kit.errors import InvalidArgument, Violations

ROLE_CUSTOMER = "customer"
ROLE_ADMIN = "admin"
ROLES = frozenset({ROLE_CUSTOMER, ROLE_ADMIN})

PASSWORD_MIN = 10
# Argon2 hashes any length, but a megabyte password is a cheap way to burn the server's CPU.
PASSWORD_MAX = 256
DISPLAY_NAME_MAX = 100
LABEL_MAX = 50
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164
LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")  # BCP 47 language[-REGION]
CURRENCY = re.compile(r"^[A-Z]{3}$")
REGION = re.compile(r"^[A-Z]{2}$")  # CLDR region codes as in google.type.PostalAddress
# A few of the passwords that credential-stuffing lists start with; long enough to pass the
# length rule, so they need a rule of their own.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "password123",
        "password1234",
        "iloveyou123",
        "qwerty12345",
        "1q2w3e4r5t",
        "abcdefghij",
        "0987654321",
        "passwordpassword",
    }
)


class State(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


def new_id() -> str:
    return str(uuid.uuid4())


# --- validation -----------------------------------------------------------------------------


def normalise_email(raw: str, field_name: str = "email") -> str:
    """The canonical form of an address: uniqueness and login compare this form.

    Syntax per RFC 5322 / 6531 (email-validator, no DNS lookups), the domain IDNA-normalised and
    the whole address lower-cased: mailbox names are case-insensitive at every provider shops
    deal with, and `Ann@x.com` and `ann@x.com` must not become two accounts.
    """
    value = (raw or "").strip()
    if not value:
        raise InvalidArgument(field_name, "is required")
    try:
        checked = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        raise InvalidArgument(field_name, f"is not a valid email address: {error}") from None
    return checked.normalized.lower()


def check_password(violations: Violations, password: str, email: str, field_name: str) -> None:
    """NIST SP 800-63B style: length, no well-known or account-derived passwords."""
    if len(password) < PASSWORD_MIN:
        violations.add(field_name, f"must be at least {PASSWORD_MIN} characters")
        return
    if len(password) > PASSWORD_MAX:
        violations.add(field_name, f"must be at most {PASSWORD_MAX} characters")
        return
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        violations.add(field_name, "is too easy to guess")
    elif email and (lowered == email or lowered == email.split("@")[0]):
        violations.add(field_name, "must not be the email address")


def clean_display_name(violations: Violations, raw: str, field_name: str) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        violations.add(field_name, "is required")
    elif len(name) > DISPLAY_NAME_MAX:
        violations.add(field_name, f"must be at most {DISPLAY_NAME_MAX} characters")
    elif any(unicodedata.category(ch).startswith("C") for ch in name):
        violations.add(field_name, "must not contain control characters")
    return name


def check_phone(violations: Violations, phone: str, field_name: str) -> None:
    if phone and not PHONE.match(phone):
        violations.add(field_name, "must be in E.164 form, such as +14155550100")


def check_locale(violations: Violations, locale: str, field_name: str) -> None:
    if locale and not LOCALE.match(locale):
        violations.add(field_name, "must be a BCP 47 tag such as en or en-GB")


def check_time_zone(violations: Violations, time_zone: str, field_name: str) -> None:
    if not time_zone:
        return
    from zoneinfo import available_timezones

    if time_zone not in available_timezones():
        violations.add(field_name, "must be an IANA time zone such as Europe/Paris")


# --- accounts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """An account. `password_hash` is an Argon2id PHC string, never the password."""

    id: str
    email: str
    display_name: str
    password_hash: str
    roles: frozenset[str]
    state: State
    create_time: datetime
    update_time: datetime
    phone_number: str = ""
    email_verified: bool = False
    last_login_time: datetime | None = None
    # The idempotency key of the Register call that created the account.
    request_id: str = ""

    @property
    def active(self) -> bool:
        return self.state is State.ACTIVE

    def deleted(self, now: datetime) -> User:
        """The account anonymised: no personal data is kept, the id stays for references."""
        return replace(
            self,
            email=f"deleted+{self.id}@invalid",
            display_name="",
            phone_number="",
            password_hash="",
            state=State.DELETED,
            update_time=now,
        )


@dataclass(frozen=True)
class NotificationChannels:
    email: bool = True
    sms: bool = False
    push: bool = False
    in_app: bool = True


@dataclass(frozen=True)
class UserSettings:
    user_id: str
    update_time: datetime
    locale: str = "en"
    time_zone: str = "UTC"
    currency_code: str = "USD"
    channels: NotificationChannels = field(default_factory=NotificationChannels)
    marketing_consent: bool = False
    marketing_consent_update_time: datetime | None = None


@dataclass(frozen=True)
class PostalAddress:
    """google.type.PostalAddress, the fields Emporium uses."""

    region_code: str
    address_lines: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    postal_code: str = ""
    administrative_area: str = ""
    locality: str = ""
    sublocality: str = ""
    organization: str = ""
    language_code: str = ""


@dataclass(frozen=True)
class Address:
    id: str
    user_id: str
    postal_address: PostalAddress
    create_time: datetime
    update_time: datetime
    label: str = ""
    phone_number: str = ""
    default_shipping: bool = False
    default_billing: bool = False
    request_id: str = ""


def check_address(violations: Violations, address: Address, prefix: str = "address") -> None:
    postal = address.postal_address
    where = f"{prefix}.postal_address"
    if not REGION.match(postal.region_code):
        violations.add(f"{where}.region_code", "must be a two-letter CLDR region such as US")
    lines = [line for line in postal.address_lines if line.strip()]
    if not lines:
        violations.add(f"{where}.address_lines", "needs at least one line")
    if any(len(line) > 200 for line in postal.address_lines):
        violations.add(f"{where}.address_lines", "lines must be at most 200 characters")
    if not any(r.strip() for r in postal.recipients):
        violations.add(f"{where}.recipients", "needs the name of who receives the parcel")
    if len(address.label) > LABEL_MAX:
        violations.add(f"{prefix}.label", f"must be at most {LABEL_MAX} characters")
    check_phone(violations, address.phone_number, f"{prefix}.phone_number")


# --- refresh tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshTokenParts:
    """A refresh token as the client holds it: `<family>.<token id>.<secret>`, all opaque."""

    family_id: str
    token_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.family_id}.{self.token_id}.{self.secret}"

    @classmethod
    def new(cls, family_id: str | None = None) -> RefreshTokenParts:
        return cls(family_id or new_id(), new_id(), secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, raw: str, field_name: str = "refresh_token") -> RefreshTokenParts:
        parts = (raw or "").strip().split(".")
        if len(parts) != 3 or not all(parts):
            raise InvalidArgument(field_name, "is not a refresh token issued by Emporium")
        try:
            uuid.UUID(parts[0])
            uuid.UUID(parts[1])
        except ValueError:
            raise InvalidArgument(field_name, "is not a refresh token issued by Emporium") from None
        return cls(*parts)


@dataclass(frozen=True)
class TokenFamily:
    """One sign-in's chain of refresh tokens; only `current_token_id` may be used.

    Rotation replaces the current token on every refresh. A token of the family that was
    already rotated away is proof that it leaked (the thief or the user used it after the
    other did), so presenting one revokes the whole family, its newest token included.
    """

    family_id: str
    user_id: str
    current_token_id: str
    current_secret_hash: str
    expire_time: datetime
    create_time: datetime
    rotated: frozenset[str] = frozenset()
    revoked: bool = False


# --- one-time tokens ------------------------------------------------------------------------


class Purpose(StrEnum):
    """What a one-time token may be used for; a token of one purpose never works for another."""

    PASSWORD_RESET = "password_reset"
    EMAIL_VERIFICATION = "email_verification"


# A raw one-time token is 256 random bits in URL-safe base64 (43 characters); anything much
# longer is not one of ours and is refused before it is hashed.
ONE_TIME_TOKEN_MAX = 100


def new_one_time_secret() -> str:
    """A fresh raw one-time token: it travels only in the internal event, never stored."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class OneTimeToken:
    """A stored one-time token: the SHA-256 of the raw token, never the token itself.

    `email` is the address the token was sent to: a token for an address the account no
    longer has is refused. A user has at most one live token per purpose: issuing a new one
    invalidates the earlier ones (the last email sent is the one that works).
    """

    token_hash: str
    purpose: Purpose
    user_id: str
    email: str
    expire_time: datetime
    create_time: datetime


# --- throttling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many attempts a window allows.

    Failed logins and wrong current passwords (ChangePassword, ChangeEmail) count together per
    account; failed logins per client address. Password-reset requests count per email and per
    client address, verification emails per account, and failed one-time tokens (ResetPassword,
    VerifyEmail) per client address. The window must stay shorter than the throttle table's
    one-hour TTL.
    """

    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    # Higher: many customers can share one address (offices, carrier NAT).
    per_address: int = 20
    # Emails a user can make us send in a window: reset links per address, verification links.
    emails_per_account: int = 5
    reset_requests_per_address: int = 20
    token_failures_per_address: int = 20


def throttle_keys(email: str, client_address: str) -> tuple[str, str]:
    return f"account:{email}", f"address:{client_address or 'unknown'}"


def reset_request_keys(email: str, client_address: str) -> tuple[str, str]:
    return f"reset:{email}", f"reset-address:{client_address or 'unknown'}"


def token_failure_key(client_address: str) -> str:
    return f"token-address:{client_address or 'unknown'}"


def verification_request_key(user_id: str) -> str:
    return f"verification:{user_id}"
