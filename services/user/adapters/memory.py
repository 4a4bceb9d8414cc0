"""In-memory adapters of the user service's ports, for unit tests.

They pass the same contract tests as the Cassandra adapters (one suite in
tests/integration/test_user_on_cassandra.py runs over both), so a handler test on them says
something about production.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from google.protobuf.message import Message

from kit import errors
from services.user.domain import (
    Address,
    OneTimeToken,
    Purpose,
    State,
    TokenFamily,
    User,
    UserSettings,
)


class InMemoryUserRepository:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.emails: dict[str, str] = {}
        self.settings: dict[str, UserSettings] = {}
        # One-time tokens by hash, and the hash of each user's live token per purpose.
        self.one_time: dict[str, OneTimeToken] = {}
        self.live_tokens: dict[tuple[str, Purpose], str] = {}
        # Every event a write stored, in order: what the outbox relay would publish.
        self.events: list[Message] = []
        self._lock = asyncio.Lock()

    def _store_token(self, token: OneTimeToken | None) -> None:
        if token is not None:
            self.one_time[token.token_hash] = token
            self.live_tokens[(token.user_id, token.purpose)] = token.token_hash

    async def create(
        self,
        user: User,
        settings: UserSettings,
        events: Sequence[Message],
        token: OneTimeToken | None = None,
    ) -> User:
        async with self._lock:
            holder = self.emails.get(user.email)
            if holder is not None:
                existing = self.users[holder]
                if user.request_id and existing.request_id == user.request_id:
                    return existing
                raise errors.AlreadyExists("an account with this email already exists")
            self.emails[user.email] = user.id
            self.users[user.id] = user
            self.settings[user.id] = settings
            self._store_token(token)
            self.events.extend(events)
            return user

    async def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    async def by_email(self, email: str) -> User | None:
        holder = self.emails.get(email)
        return self.users.get(holder) if holder else None

    async def save(
        self, user: User, events: Sequence[Message] = (), token: OneTimeToken | None = None
    ) -> None:
        stored = self.users[user.id]
        self.users[user.id] = replace(user, email=stored.email)
        self._store_token(token)
        self.events.extend(events)

    async def change_email(
        self,
        user: User,
        previous_email: str,
        events: Sequence[Message],
        token: OneTimeToken | None = None,
    ) -> None:
        async with self._lock:
            holder = self.emails.get(user.email)
            if holder is not None and holder != user.id:
                raise errors.AlreadyExists("an account with this email already exists")
            self.emails[user.email] = user.id
            self.users[user.id] = user
            self._store_token(token)
            self.events.extend(events)
            if self.emails.get(previous_email) == user.id:
                del self.emails[previous_email]

    async def delete(self, user: User, events: Sequence[Message]) -> None:
        stored = self.users[user.id]
        self.emails.pop(stored.email, None)
        self.users[user.id] = replace(user, state=State.DELETED)
        self.settings.pop(user.id, None)
        self.events.extend(events)

    async def page(self, size: int, cursor: bytes | None) -> tuple[list[User], bytes | None]:
        ids = sorted(self.users)
        start = int(cursor.decode()) if cursor else 0
        end = start + size
        return [self.users[i] for i in ids[start:end]], (
            str(end).encode() if end < len(ids) else None
        )

    async def get_settings(self, user_id: str) -> UserSettings | None:
        return self.settings.get(user_id)

    async def save_settings(self, settings: UserSettings, events: Sequence[Message]) -> None:
        self.settings[settings.user_id] = settings
        self.events.extend(events)

    async def issue_token(self, token: OneTimeToken, events: Sequence[Message]) -> None:
        self._store_token(token)
        self.events.extend(events)

    async def find_token(self, token_hash: str, purpose: Purpose) -> OneTimeToken | None:
        token = self.one_time.get(token_hash)
        if token is None or token.purpose is not purpose:
            return None
        # What Cassandra's TTL does to an expired row.
        if token.expire_time <= datetime.now(UTC):
            return None
        if self.live_tokens.get((token.user_id, token.purpose)) != token_hash:
            return None
        return token

    async def consume_token(self, token: OneTimeToken) -> bool:
        # No await between the check and the delete: atomic on the event loop.
        return self.one_time.pop(token.token_hash, None) is not None


class InMemoryAddressRepository:
    def __init__(self) -> None:
        self.books: dict[str, dict[str, Address]] = defaultdict(dict)

    async def list(self, user_id: str) -> list[Address]:
        return sorted(self.books[user_id].values(), key=lambda a: (a.create_time, a.id))

    async def get(self, user_id: str, address_id: str) -> Address | None:
        return self.books[user_id].get(address_id)

    async def put(self, address: Address) -> None:
        self.books[address.user_id][address.id] = address

    async def delete(self, user_id: str, address_id: str) -> bool:
        return self.books[user_id].pop(address_id, None) is not None

    async def delete_all(self, user_id: str) -> None:
        self.books.pop(user_id, None)


class InMemoryTokenRepository:
    def __init__(self) -> None:
        self.families: dict[str, TokenFamily] = {}
        self.marks: dict[str, tuple[datetime, datetime]] = {}  # user -> (valid_after, until)

    async def add(self, family: TokenFamily) -> None:
        self.families[family.family_id] = family

    async def get(self, family_id: str) -> TokenFamily | None:
        return self.families.get(family_id)

    async def rotate(
        self, family: TokenFamily, token_id: str, secret_hash: str, expire_time: datetime
    ) -> bool:
        current = self.families.get(family.family_id)
        if current is None or current.revoked:
            return False
        if current.current_token_id != family.current_token_id:
            return False
        self.families[family.family_id] = replace(
            current,
            current_token_id=token_id,
            current_secret_hash=secret_hash,
            rotated=current.rotated | {current.current_token_id},
            expire_time=expire_time,
        )
        return True

    async def revoke(self, family_id: str) -> None:
        if family_id in self.families:
            self.families[family_id] = replace(self.families[family_id], revoked=True)

    async def revoke_all(self, user_id: str) -> None:
        for family in list(self.families.values()):
            if family.user_id == user_id:
                await self.revoke(family.family_id)

    async def revoke_access(self, user_id: str, valid_after: datetime, until: datetime) -> None:
        self.marks[user_id] = (valid_after, until)

    async def access_valid_after(self, user_id: str) -> datetime | None:
        return (await self.access_revocations()).get(user_id)

    async def access_revocations(self) -> dict[str, datetime]:
        now = datetime.now(UTC)
        return {user: after for user, (after, until) in self.marks.items() if until > now}


class InMemoryLoginThrottle:
    def __init__(self) -> None:
        self.failed: dict[str, list[datetime]] = defaultdict(list)

    async def failures(self, key: str, since: datetime) -> int:
        return sum(1 for at in self.failed[key] if at >= since)

    async def record_failure(self, keys: Sequence[str], at: datetime) -> None:
        for key in keys:
            self.failed[key].append(at)

    async def clear(self, key: str) -> None:
        self.failed.pop(key, None)
