"""What the user service's handlers need from the outside world, as Protocols.

Each repository writes a state change and the events it causes together (the adapters put the
events in the transactional outbox of kit/outbox.py), so no handler publishes directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from google.protobuf.message import Message

from services.user.domain import (
    Address,
    OneTimeToken,
    Purpose,
    TokenFamily,
    User,
    UserSettings,
)

Events = Sequence[Message]


class UserRepository(Protocol):
    """Accounts, unique by normalised email, with their settings and one-time tokens.

    One-time tokens live here because they are written together with account changes and
    their events (Register stores the verification token with the account, ChangeEmail with
    the new address). Writes that take a `token` store it (its hash only, expiring at its
    `expire_time`) and make it the user's only live token of its purpose.
    """

    async def create(
        self,
        user: User,
        settings: UserSettings,
        events: Events,
        token: OneTimeToken | None = None,
    ) -> User:
        """Stores a new account unless its email is taken; returns the stored account.

        A retry of the same registration (same `request_id` and email) returns the account
        the first call created and stores nothing new. Raises AlreadyExists if another account
        holds the email; of racing registrations of one email exactly one succeeds.
        """
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def by_email(self, email: str) -> User | None: ...

    async def save(
        self, user: User, events: Events = (), token: OneTimeToken | None = None
    ) -> None:
        """Stores changed fields of an existing account (not its email)."""
        ...

    async def change_email(
        self,
        user: User,
        previous_email: str,
        events: Events,
        token: OneTimeToken | None = None,
    ) -> None:
        """Moves an account to `user.email` (and its other changed fields) from
        `previous_email`.

        The new address is claimed exactly as at registration (AlreadyExists if another
        account holds it; of racing claims one wins); the previous one is freed afterwards.
        """
        ...

    async def delete(self, user: User, events: Events) -> None:
        """Stores the anonymised account and frees its email for a new registration."""
        ...

    async def page(self, size: int, cursor: bytes | None) -> tuple[list[User], bytes | None]:
        """A page of every account in storage order, and the cursor of the next page."""
        ...

    async def get_settings(self, user_id: str) -> UserSettings | None: ...

    async def save_settings(self, settings: UserSettings, events: Events) -> None: ...

    async def issue_token(self, token: OneTimeToken, events: Events) -> None:
        """Stores a one-time token with the events that carry it (the raw token is only in
        them), invalidating the user's earlier tokens of the same purpose."""
        ...

    async def find_token(self, token_hash: str, purpose: Purpose) -> OneTimeToken | None:
        """The live token with this hash and purpose: stored, unexpired, unused and the
        newest of its user and purpose; None otherwise. Uses nothing up."""
        ...

    async def consume_token(self, token: OneTimeToken) -> bool:
        """Uses a found token up; whether this call did. Of concurrent calls with one token
        exactly one returns True (compare-and-set), so a token works once."""
        ...


class AddressRepository(Protocol):
    """Each user's address book; every call is scoped to one owner."""

    async def list(self, user_id: str) -> list[Address]:
        """The owner's addresses, oldest first."""
        ...

    async def get(self, user_id: str, address_id: str) -> Address | None: ...

    async def put(self, address: Address) -> None: ...

    async def delete(self, user_id: str, address_id: str) -> bool:
        """Whether an address of this owner was deleted."""
        ...

    async def delete_all(self, user_id: str) -> None: ...


class TokenRepository(Protocol):
    """Refresh-token families."""

    async def add(self, family: TokenFamily) -> None: ...

    async def get(self, family_id: str) -> TokenFamily | None: ...

    async def rotate(
        self, family: TokenFamily, token_id: str, secret_hash: str, expire_time: datetime
    ) -> bool:
        """Replaces the current token if it is still `family.current_token_id` and the family
        is not revoked (compare-and-set); whether it did."""
        ...

    async def revoke(self, family_id: str) -> None: ...

    async def revoke_all(self, user_id: str) -> None: ...

    async def revoke_access(self, user_id: str, valid_after: datetime, until: datetime) -> None:
        """Access tokens of the user issued before `valid_after` are refused from now on.

        The mark is kept until `until` (when every token it refuses has expired); a later mark
        replaces an earlier one.
        """
        ...

    async def access_valid_after(self, user_id: str) -> datetime | None:
        """The user's live revocation mark, if any."""
        ...

    async def access_revocations(self) -> dict[str, datetime]:
        """Every live revocation mark, by user id (a few: marks live one token lifetime)."""
        ...


class LoginThrottle(Protocol):
    """Counts failed logins per key (account, client address) over a sliding window."""

    async def failures(self, key: str, since: datetime) -> int: ...

    async def record_failure(self, keys: Sequence[str], at: datetime) -> None: ...

    async def clear(self, key: str) -> None: ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing (Argon2id); never blocks the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class KeyStore(Protocol):
    """Signs access tokens and publishes the keys that verify them."""

    kid: str

    def sign(self, claims: Mapping[str, Any]) -> str: ...

    def jwks_json(self) -> bytes: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
