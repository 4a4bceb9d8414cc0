"""The user service's Cassandra adapters: accounts, address books, token families, throttling.

Tables are in `schema.cql`. Every state change that causes events is one LOGGED batch with its
outbox rows (kit.outbox), so an account never exists without its UserRegistered event and no
event is published for a change that was not stored. A one-time token is stored in the same
batch as the event that carries it, so no email ever holds a token that was not stored.

Email uniqueness is a claim row in `users_by_email` (LWT). The account row is the truth: a
claim whose account does not hold that address is an orphan, left by a writer that died
between the claim and the account write (registration, email change) or between the account
write and the release (email change, deletion). Orphans are harmless (login and `by_email`
check the account's own email) and the next claim of the address takes them over once they
are ORPHAN_CLAIM_AFTER old; the account that made the claim may reuse it at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message

from kit import errors
from kit.cassandra import CassandraSession, applied
from kit.events import Event
from kit.outbox import OUTBOX_LEASE_CQL, CassandraLease, CassandraOutbox, Relay
from services.user.domain import (
    Address,
    NotificationChannels,
    OneTimeToken,
    PostalAddress,
    Purpose,
    State,
    TokenFamily,
    User,
    UserSettings,
)

SOURCE = "user"
# An email claim whose account row never appeared (the writer died between the two writes) is
# taken over by the next registration after this long.
ORPHAN_CLAIM_AFTER = timedelta(seconds=30)

USER_COLUMNS = (
    "id, email, display_name, password_hash, roles, state, phone_number, email_verified, "
    "last_login_time, create_time, update_time, request_id"
)
SETTINGS_COLUMNS = (
    "user_id, locale, time_zone, currency_code, email_enabled, sms_enabled, push_enabled, "
    "in_app_enabled, marketing_consent, marketing_consent_update_time, update_time"
)
ADDRESS_COLUMNS = (
    "user_id, id, label, postal_address, phone_number, default_shipping, default_billing, "
    "request_id, create_time, update_time"
)
ONE_TIME_COLUMNS = "token_hash, purpose, user_id, email, expire_time, create_time"
FAMILY_COLUMNS = (
    "family_id, user_id, current_token_id, current_secret_hash, rotated, revoked, "
    "expire_time, create_time"
)


def _utc(value: datetime | None) -> datetime | None:
    # The driver returns naive datetimes in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def _events(messages: Sequence[Message], key: str, *, stable: bool = False) -> list[Event]:
    """The outbox envelopes of `messages`; `stable` derives ids from the aggregate, so that a
    retried write of the same change stores the same event ids (consumers deduplicate)."""
    return [
        Event.of(
            m,
            SOURCE,
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{m.DESCRIPTOR.full_name}"))
            if stable
            else None,
        )
        for m in messages
    ]


def _with_id(message: Message, old: str, new: str) -> Message:
    """A copy of `message` in which every singular string field holding the id `old` (a
    UUID, so nothing but an id can equal it), nested messages included, holds `new`."""
    copy = type(message)()
    copy.CopyFrom(message)

    def rewrite(m: Message) -> None:
        for field, value in m.ListFields():
            if field.is_repeated:
                continue
            if field.type == field.TYPE_STRING and value == old:
                setattr(m, field.name, new)
            elif field.type == field.TYPE_MESSAGE:
                rewrite(value)

    rewrite(copy)
    return copy


class Statements:
    """Every statement the adapters run, prepared once at start-up."""

    async def prepare(self, session: CassandraSession) -> Statements:
        p = session.prepare
        self.claim_email = await p(
            "INSERT INTO users_by_email (email, user_id, request_id, claim_time) "
            "VALUES (?, ?, ?, ?) IF NOT EXISTS"
        )
        self.take_over_email = await p(
            "UPDATE users_by_email SET user_id = ?, request_id = ?, claim_time = ? "
            "WHERE email = ? IF user_id = ?"
        )
        self.email_owner = await p("SELECT user_id FROM users_by_email WHERE email = ?")
        self.revoke_access = await p(
            "INSERT INTO access_revocations (user_id, valid_after) VALUES (?, ?) USING TTL ?"
        )
        self.access_mark = await p("SELECT valid_after FROM access_revocations WHERE user_id = ?")
        self.access_marks = await p("SELECT user_id, valid_after FROM access_revocations")
        self.release_email = await p("DELETE FROM users_by_email WHERE email = ? IF user_id = ?")
        self.insert_user = await p(
            f"INSERT INTO users ({USER_COLUMNS}) VALUES ({', '.join('?' * 12)})"
        )
        self.update_user = await p(
            "UPDATE users SET display_name = ?, password_hash = ?, roles = ?, state = ?, "
            "phone_number = ?, email_verified = ?, last_login_time = ?, update_time = ? "
            "WHERE id = ?"
        )
        self.set_email = await p("UPDATE users SET email = ? WHERE id = ?")
        self.anonymise_user = await p(
            "UPDATE users SET email = ?, display_name = ?, password_hash = ?, state = ?, "
            "phone_number = ?, update_time = ? WHERE id = ?"
        )
        self.select_user = await p(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?")
        self.all_users = await p(f"SELECT {USER_COLUMNS} FROM users")
        self.insert_settings = await p(
            f"INSERT INTO user_settings ({SETTINGS_COLUMNS}) VALUES ({', '.join('?' * 11)})"
        )
        self.select_settings = await p(
            f"SELECT {SETTINGS_COLUMNS} FROM user_settings WHERE user_id = ?"
        )
        self.delete_settings = await p("DELETE FROM user_settings WHERE user_id = ?")
        self.insert_address = await p(
            f"INSERT INTO addresses_by_user ({ADDRESS_COLUMNS}) VALUES ({', '.join('?' * 10)})"
        )
        self.select_addresses = await p(
            f"SELECT {ADDRESS_COLUMNS} FROM addresses_by_user WHERE user_id = ?"
        )
        self.select_address = await p(
            f"SELECT {ADDRESS_COLUMNS} FROM addresses_by_user WHERE user_id = ? AND id = ?"
        )
        self.delete_address = await p(
            "DELETE FROM addresses_by_user WHERE user_id = ? AND id = ? IF EXISTS"
        )
        self.delete_addresses = await p("DELETE FROM addresses_by_user WHERE user_id = ?")
        self.insert_family = await p(
            f"INSERT INTO refresh_families ({FAMILY_COLUMNS}) VALUES ({', '.join('?' * 8)}) "
            "USING TTL ?"
        )
        self.insert_family_by_user = await p(
            "INSERT INTO refresh_families_by_user (user_id, family_id) VALUES (?, ?) USING TTL ?"
        )
        self.select_family = await p(
            f"SELECT {FAMILY_COLUMNS} FROM refresh_families WHERE family_id = ?"
        )
        self.families_of_user = await p(
            "SELECT family_id FROM refresh_families_by_user WHERE user_id = ?"
        )
        self.rotate_family = await p(
            "UPDATE refresh_families USING TTL ? SET current_token_id = ?, "
            "current_secret_hash = ?, rotated = rotated + ?, expire_time = ? "
            "WHERE family_id = ? IF current_token_id = ? AND revoked = false"
        )
        self.revoke_family = await p(
            "UPDATE refresh_families USING TTL ? SET revoked = true WHERE family_id = ?"
        )
        self.count_failures = await p(
            "SELECT COUNT(*) AS n FROM login_failures WHERE key = ? AND at > minTimeuuid(?)"
        )
        self.insert_failure = await p("INSERT INTO login_failures (key, at) VALUES (?, now())")
        self.clear_failures = await p("DELETE FROM login_failures WHERE key = ?")
        self.insert_token = await p(
            f"INSERT INTO one_time_tokens ({ONE_TIME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "USING TTL ?"
        )
        self.insert_live_token = await p(
            "INSERT INTO one_time_tokens_by_user (user_id, purpose, token_hash) "
            "VALUES (?, ?, ?) USING TTL ?"
        )
        self.select_token = await p(
            f"SELECT {ONE_TIME_COLUMNS} FROM one_time_tokens WHERE token_hash = ?"
        )
        self.select_live_token = await p(
            "SELECT token_hash FROM one_time_tokens_by_user WHERE user_id = ? AND purpose = ?"
        )
        self.consume_token = await p("DELETE FROM one_time_tokens WHERE token_hash = ? IF EXISTS")
        return self


def _user(row: Any) -> User:
    return User(
        id=str(row.id),
        email=row.email,
        display_name=row.display_name or "",
        password_hash=row.password_hash or "",
        roles=frozenset(row.roles or ()),
        state=State(row.state),
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        phone_number=row.phone_number or "",
        email_verified=bool(row.email_verified),
        last_login_time=_utc(row.last_login_time),
        request_id=row.request_id or "",
    )


def _one_time(row: Any) -> OneTimeToken:
    return OneTimeToken(
        token_hash=row.token_hash,
        purpose=Purpose(row.purpose),
        user_id=str(row.user_id),
        email=row.email,
        expire_time=_utc(row.expire_time),
        create_time=_utc(row.create_time),
    )


def _settings(row: Any) -> UserSettings:
    return UserSettings(
        user_id=str(row.user_id),
        update_time=_utc(row.update_time),
        locale=row.locale,
        time_zone=row.time_zone,
        currency_code=row.currency_code,
        channels=NotificationChannels(
            email=bool(row.email_enabled),
            sms=bool(row.sms_enabled),
            push=bool(row.push_enabled),
            in_app=bool(row.in_app_enabled),
        ),
        marketing_consent=bool(row.marketing_consent),
        marketing_consent_update_time=_utc(row.marketing_consent_update_time),
    )


def _settings_params(s: UserSettings) -> tuple[Any, ...]:
    c = s.channels
    return (
        _uuid(s.user_id),
        s.locale,
        s.time_zone,
        s.currency_code,
        c.email,
        c.sms,
        c.push,
        c.in_app,
        s.marketing_consent,
        s.marketing_consent_update_time,
        s.update_time,
    )


class CassandraUserRepository:
    def __init__(self, session: CassandraSession, q: Statements, outbox: CassandraOutbox):
        self.session = session
        self.q = q
        self.outbox = outbox

    async def create(
        self,
        user: User,
        settings: UserSettings,
        events: Sequence[Message],
        token: OneTimeToken | None = None,
    ) -> User:
        rows = await self.session.execute(
            self.q.claim_email,
            (user.email, _uuid(user.id), user.request_id, user.create_time),
        )
        if not applied(rows):
            holder = rows[0]
            stored = await self.get(str(holder.user_id))
            same_request = bool(user.request_id) and holder.request_id == user.request_id
            if stored is not None and stored.email == user.email:
                if same_request:
                    return stored
                raise errors.AlreadyExists("an account with this email already exists")
            if same_request and stored is None:
                # The first attempt claimed the email and died before storing the account:
                # finish its work under the id it claimed (events and token included).
                claimed = str(holder.user_id)
                events = [_with_id(m, user.id, claimed) for m in events]
                user = replace(user, id=claimed)
                settings = replace(settings, user_id=claimed)
                if token is not None:
                    token = replace(token, user_id=claimed)
            elif not await self._take_over_orphan(
                holder, user.email, user.id, user.request_id, user.create_time
            ):
                # A registration in flight (or one that just won the take-over) holds it.
                raise errors.AlreadyExists("an account with this email already exists")
        batch = self.session.batch()
        batch.add(self.q.insert_user, self._user_params(user))
        batch.add(self.q.insert_settings, _settings_params(settings))
        self._add_token(batch, token)
        await self.outbox.write(batch, _events(events, user.id, stable=True), key=user.id)
        return user

    async def _take_over_orphan(
        self, holder: Any, email: str, user_id: str, request_id: str, at: datetime
    ) -> bool:
        """Takes over a claim whose account does not hold `email` once the claim is
        ORPHAN_CLAIM_AFTER old (younger, its writer may still be at work); whether it did."""
        if holder.claim_time is not None and _utc(holder.claim_time) > at - ORPHAN_CLAIM_AFTER:
            return False
        rows = await self.session.execute(
            self.q.take_over_email, (_uuid(user_id), request_id, at, email, holder.user_id)
        )
        return applied(rows)

    def _add_token(self, batch: Any, token: OneTimeToken | None) -> None:
        """Adds a one-time token and its live-token pointer (which retires the user's earlier
        tokens of the purpose) to `batch`; both expire with the token."""
        if token is None:
            return
        ttl = _ttl(token.expire_time)
        batch.add(
            self.q.insert_token,
            (
                token.token_hash,
                token.purpose.value,
                _uuid(token.user_id),
                token.email,
                token.expire_time,
                token.create_time,
                ttl,
            ),
        )
        batch.add(
            self.q.insert_live_token,
            (_uuid(token.user_id), token.purpose.value, token.token_hash, ttl),
        )

    @staticmethod
    def _user_params(u: User) -> tuple[Any, ...]:
        return (
            _uuid(u.id),
            u.email,
            u.display_name,
            u.password_hash,
            set(u.roles),
            u.state.value,
            u.phone_number,
            u.email_verified,
            u.last_login_time,
            u.create_time,
            u.update_time,
            u.request_id,
        )

    async def get(self, user_id: str) -> User | None:
        rows = await self.session.execute(self.q.select_user, (_uuid(user_id),))
        return _user(rows[0]) if rows else None

    async def by_email(self, email: str) -> User | None:
        rows = await self.session.execute(self.q.email_owner, (email,))
        if not rows:
            return None
        user = await self.get(str(rows[0].user_id))
        # An orphan claim, or an account that changed its email since: not this address.
        return user if user is not None and user.email == email else None

    async def save(
        self, user: User, events: Sequence[Message] = (), token: OneTimeToken | None = None
    ) -> None:
        params = self._update_params(user)
        if not events and token is None:
            await self.session.execute(self.q.update_user, params)
            return
        batch = self.session.batch()
        batch.add(self.q.update_user, params)
        self._add_token(batch, token)
        await self.outbox.write(batch, _events(events, user.id), key=user.id)

    @staticmethod
    def _update_params(user: User) -> tuple[Any, ...]:
        return (
            user.display_name,
            user.password_hash,
            set(user.roles),
            user.state.value,
            user.phone_number,
            user.email_verified,
            user.last_login_time,
            user.update_time,
            _uuid(user.id),
        )

    async def change_email(
        self,
        user: User,
        previous_email: str,
        events: Sequence[Message],
        token: OneTimeToken | None = None,
    ) -> None:
        """Claim the new address, then move the account, then free the old address.

        That order keeps the address unique at every step. A crash after the claim leaves a
        claim of the new address by an account that still has the old one; a crash after the
        account write leaves the old address claimed by an account that has moved on. Both
        are orphans (see the module docstring): nobody can sign in with them, a retry by the
        same account reuses its own claim, and anyone else's claim takes them over after
        ORPHAN_CLAIM_AFTER.
        """
        rows = await self.session.execute(
            self.q.claim_email, (user.email, _uuid(user.id), "", user.update_time)
        )
        if not applied(rows) and str(rows[0].user_id) != user.id:
            holder = rows[0]
            stored = await self.get(str(holder.user_id))
            if (stored is not None and stored.email == user.email) or not (
                await self._take_over_orphan(holder, user.email, user.id, "", user.update_time)
            ):
                raise errors.AlreadyExists("an account with this email already exists")
        batch = self.session.batch()
        batch.add(self.q.update_user, self._update_params(user))
        batch.add(self.q.set_email, (user.email, _uuid(user.id)))
        self._add_token(batch, token)
        await self.outbox.write(batch, _events(events, user.id), key=user.id)
        if previous_email != user.email:
            await self.session.execute(self.q.release_email, (previous_email, _uuid(user.id)))

    async def delete(self, user: User, events: Sequence[Message]) -> None:
        stored = await self.get(user.id)
        batch = self.session.batch()
        batch.add(
            self.q.anonymise_user,
            (
                user.email,
                user.display_name,
                user.password_hash,
                State.DELETED.value,
                user.phone_number,
                user.update_time,
                _uuid(user.id),
            ),
        )
        batch.add(self.q.delete_settings, (_uuid(user.id),))
        await self.outbox.write(batch, _events(events, user.id), key=user.id)
        if stored is not None:
            # After the account is anonymised, so a crash in between leaves an email claim
            # with no matching account, which registration takes over (see `create`).
            await self.session.execute(self.q.release_email, (stored.email, _uuid(user.id)))

    async def page(self, size: int, cursor: bytes | None) -> tuple[list[User], bytes | None]:
        rows, next_cursor = await self.session.execute_page(self.q.all_users, (), size, cursor)
        return [_user(r) for r in rows], next_cursor

    async def get_settings(self, user_id: str) -> UserSettings | None:
        rows = await self.session.execute(self.q.select_settings, (_uuid(user_id),))
        return _settings(rows[0]) if rows else None

    async def save_settings(self, settings: UserSettings, events: Sequence[Message]) -> None:
        batch = self.session.batch()
        batch.add(self.q.insert_settings, _settings_params(settings))
        await self.outbox.write(batch, _events(events, settings.user_id), key=settings.user_id)

    async def issue_token(self, token: OneTimeToken, events: Sequence[Message]) -> None:
        batch = self.session.batch()
        self._add_token(batch, token)
        await self.outbox.write(batch, _events(events, token.user_id), key=token.user_id)

    async def find_token(self, token_hash: str, purpose: Purpose) -> OneTimeToken | None:
        rows = await self.session.execute(self.q.select_token, (token_hash,))
        if not rows:
            return None
        token = _one_time(rows[0])
        # The TTL removes the row at expiry at the latest; this catches the last second.
        if token.purpose is not purpose or token.expire_time <= datetime.now(UTC):
            return None
        live = await self.session.execute(
            self.q.select_live_token, (_uuid(token.user_id), token.purpose.value)
        )
        if not live or live[0].token_hash != token_hash:
            return None  # a newer token of the same purpose replaced it
        return token

    async def consume_token(self, token: OneTimeToken) -> bool:
        rows = await self.session.execute(self.q.consume_token, (token.token_hash,))
        return applied(rows)


def _address(row: Any) -> Address:
    postal = json.loads(row.postal_address or "{}")
    postal["address_lines"] = tuple(postal.get("address_lines", ()))
    postal["recipients"] = tuple(postal.get("recipients", ()))
    return Address(
        id=str(row.id),
        user_id=str(row.user_id),
        postal_address=PostalAddress(**postal),
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        label=row.label or "",
        phone_number=row.phone_number or "",
        default_shipping=bool(row.default_shipping),
        default_billing=bool(row.default_billing),
        request_id=row.request_id or "",
    )


class CassandraAddressRepository:
    def __init__(self, session: CassandraSession, q: Statements) -> None:
        self.session = session
        self.q = q

    async def list(self, user_id: str) -> list[Address]:
        rows = await self.session.execute(self.q.select_addresses, (_uuid(user_id),))
        return sorted((_address(r) for r in rows), key=lambda a: (a.create_time, a.id))

    async def get(self, user_id: str, address_id: str) -> Address | None:
        rows = await self.session.execute(
            self.q.select_address, (_uuid(user_id), _uuid(address_id))
        )
        return _address(rows[0]) if rows else None

    async def put(self, a: Address) -> None:
        await self.session.execute(
            self.q.insert_address,
            (
                _uuid(a.user_id),
                _uuid(a.id),
                a.label,
                json.dumps(asdict(a.postal_address)),
                a.phone_number,
                a.default_shipping,
                a.default_billing,
                a.request_id,
                a.create_time,
                a.update_time,
            ),
        )

    async def delete(self, user_id: str, address_id: str) -> bool:
        rows = await self.session.execute(
            self.q.delete_address, (_uuid(user_id), _uuid(address_id))
        )
        return applied(rows)

    async def delete_all(self, user_id: str) -> None:
        await self.session.execute(self.q.delete_addresses, (_uuid(user_id),))


def _ttl(expire_time: datetime) -> int:
    """Seconds until `expire_time`, at least 1 (Cassandra refuses a TTL of 0 as 'forever')."""
    return max(1, int((expire_time - datetime.now(UTC)).total_seconds()))


class CassandraTokenRepository:
    def __init__(self, session: CassandraSession, q: Statements) -> None:
        self.session = session
        self.q = q

    async def add(self, f: TokenFamily) -> None:
        ttl = _ttl(f.expire_time)
        batch = self.session.batch()
        batch.add(
            self.q.insert_family,
            (
                _uuid(f.family_id),
                _uuid(f.user_id),
                _uuid(f.current_token_id),
                f.current_secret_hash,
                {_uuid(t) for t in f.rotated},
                f.revoked,
                f.expire_time,
                f.create_time,
                ttl,
            ),
        )
        batch.add(self.q.insert_family_by_user, (_uuid(f.user_id), _uuid(f.family_id), ttl))
        await self.session.execute(batch)

    async def get(self, family_id: str) -> TokenFamily | None:
        rows = await self.session.execute(self.q.select_family, (_uuid(family_id),))
        if not rows:
            return None
        row = rows[0]
        return TokenFamily(
            family_id=str(row.family_id),
            user_id=str(row.user_id),
            current_token_id=str(row.current_token_id),
            current_secret_hash=row.current_secret_hash,
            expire_time=_utc(row.expire_time),
            create_time=_utc(row.create_time),
            rotated=frozenset(str(t) for t in row.rotated or ()),
            revoked=bool(row.revoked),
        )

    async def rotate(
        self, family: TokenFamily, token_id: str, secret_hash: str, expire_time: datetime
    ) -> bool:
        rows = await self.session.execute(
            self.q.rotate_family,
            (
                _ttl(expire_time),
                _uuid(token_id),
                secret_hash,
                {_uuid(family.current_token_id)},
                expire_time,
                _uuid(family.family_id),
                _uuid(family.current_token_id),
            ),
        )
        return applied(rows)

    async def revoke(self, family_id: str) -> None:
        family = await self.get(family_id)
        if family is not None:
            await self.session.execute(
                self.q.revoke_family, (_ttl(family.expire_time), _uuid(family_id))
            )

    async def revoke_all(self, user_id: str) -> None:
        rows = await self.session.execute(self.q.families_of_user, (_uuid(user_id),))
        for row in rows:
            await self.revoke(str(row.family_id))

    async def revoke_access(self, user_id: str, valid_after: datetime, until: datetime) -> None:
        await self.session.execute(self.q.revoke_access, (_uuid(user_id), valid_after, _ttl(until)))

    async def access_valid_after(self, user_id: str) -> datetime | None:
        rows = await self.session.execute(self.q.access_mark, (_uuid(user_id),))
        return _utc(rows[0].valid_after) if rows else None

    async def access_revocations(self) -> dict[str, datetime]:
        rows = await self.session.execute(self.q.access_marks)
        return {str(row.user_id): _utc(row.valid_after) for row in rows}


class CassandraLoginThrottle:
    def __init__(self, session: CassandraSession, q: Statements) -> None:
        self.session = session
        self.q = q

    async def failures(self, key: str, since: datetime) -> int:
        rows = await self.session.execute(self.q.count_failures, (key, since))
        return int(rows[0].n) if rows else 0

    async def record_failure(self, keys: Sequence[str], at: datetime) -> None:
        for key in keys:
            await self.session.execute(self.q.insert_failure, (key,))

    async def clear(self, key: str) -> None:
        await self.session.execute(self.q.clear_failures, (key,))


@dataclass
class Stores:
    """The adapters over one session, and the outbox their writes fill."""

    users: CassandraUserRepository
    addresses: CassandraAddressRepository
    tokens: CassandraTokenRepository
    throttle: CassandraLoginThrottle
    outbox: CassandraOutbox
    # With several replicas, only the lease holder relays: no event goes out twice.
    lease: CassandraLease

    @property
    def ports(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "addresses": self.addresses,
            "tokens": self.tokens,
            "throttle": self.throttle,
        }

    def relay(self, bus: Any) -> Relay:
        return Relay(self.outbox, bus, lease=self.lease)


async def build(session: CassandraSession) -> Stores:
    outbox = await CassandraOutbox.open(session, create_table=True)
    await session.execute_ddl(OUTBOX_LEASE_CQL)
    lease = await CassandraLease.open(session)
    q = await Statements().prepare(session)
    return Stores(
        users=CassandraUserRepository(session, q, outbox),
        addresses=CassandraAddressRepository(session, q),
        tokens=CassandraTokenRepository(session, q),
        throttle=CassandraLoginThrottle(session, q),
        outbox=outbox,
        lease=lease,
    )
