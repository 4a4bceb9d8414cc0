"""The order repository on Cassandra (tables in ../schema.cql).

A conditional write (LWT) cannot share a batch with the kit outbox (a conditional batch stays
in one partition of one table), so each write goes in three steps, every crash point safe:

1. a LOGGED batch: an `order_announcements` marker (and, for a new order, its listing rows);
2. the conditional batch on the order's partition: the order, its status-change row and its
   events in the `pending` map (IF version = ? / IF NOT EXISTS);
3. one LOGGED batch: the events into the outbox (kit.outbox), `pending` and the marker
   cleared.

A crash after 2 leaves the events in `pending` and the marker in place: `sweep()` (a
background task) hands them to the outbox. An event may so reach the outbox twice, with the
same id: consumers deduplicate (kit.inbox). Listing rows pointing at an order that was never
written (a crash between 1 and 2) are skipped by `list`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cassandra.query import BatchStatement, BatchType
from cassandra.util import unix_time_from_uuid1
from emporium.order.v1 import order_pb2

from kit.cassandra import CassandraSession, applied
from kit.events import Event
from kit.outbox import CassandraOutbox
from services.order import mapping
from services.order.domain import WAITING, Order, StatusChange, Transition
from services.order.ports import Cursor, Deadline

MARKER_SHARDS = 4
# Width of an `order_deadlines` partition, in seconds of deadline time.
DEADLINE_BUCKET_SECONDS = 5
# Buckets the deadline sweeper reads at most per call (a long outage is caught up gradually).
MAX_BUCKETS_PER_SWEEP = 200
# The sweeper moves past an empty bucket only this long after its end: a deadline written by a
# replica whose clock is behind (or by a slow write) still lands before the sweeper's position.
DEADLINE_SETTLE_SECONDS = 30
# How far back admin listings of every order look.
LIST_ALL_MONTHS = 36


def _month(when: datetime) -> str:
    return f"{when.year:04d}-{when.month:02d}"


def _months_back(start: str):
    year, month = int(start[:4]), int(start[5:])
    for _ in range(LIST_ALL_MONTHS):
        yield f"{year:04d}-{month:02d}"
        month -= 1
        if month == 0:
            year, month = year - 1, 12


def _encode_event(event: Event) -> bytes:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "time": event.time.isoformat(),
            "data": base64.b64encode(event.data).decode(),
            "headers": dict(event.headers),
        }
    ).encode()


def _decode_event(raw: bytes) -> Event:
    doc = json.loads(raw)
    return Event(
        id=doc["id"],
        type=doc["type"],
        source=doc["source"],
        time=datetime.fromisoformat(doc["time"]),
        data=base64.b64decode(doc["data"]),
        headers=doc.get("headers") or {},
    )


def _pending(transition: Transition, events: Sequence[Event]) -> dict[str, bytes]:
    # Keys sort in write order: version, then position in the write.
    version = transition.order.version
    return {f"{version:08d}-{i:03d}-{e.id}": _encode_event(e) for i, e in enumerate(events)}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _bucket(when: datetime) -> int:
    seconds = int(when.timestamp())
    return seconds - seconds % DEADLINE_BUCKET_SECONDS


def _left_waiting(transition: Transition) -> bool:
    change = transition.change
    return (
        transition.order.deadline is not None
        and change is not None
        and change.previous in WAITING
        and transition.order.state not in WAITING
    )


class CassandraOrderRepository:
    def __init__(self, session: CassandraSession, outbox: CassandraOutbox) -> None:
        self.session = session
        self.outbox = outbox
        self._next_bucket: int | None = None  # where the deadline sweeper goes on from

    @classmethod
    async def open(cls, session: CassandraSession) -> CassandraOrderRepository:
        repo = cls(session, await CassandraOutbox.open(session))
        p = session.prepare
        repo._claim = await p(
            "INSERT INTO order_requests (user_id, request_id, order_id, fingerprint) "
            "VALUES (?, ?, ?, ?) IF NOT EXISTS"
        )
        repo._request = await p(
            "SELECT order_id, fingerprint FROM order_requests WHERE user_id = ? AND request_id = ?"
        )
        repo._marker = await p(
            "INSERT INTO order_announcements (shard, id, order_id) VALUES (?, ?, ?)"
        )
        repo._unmark = await p("DELETE FROM order_announcements WHERE shard = ? AND id = ?")
        repo._markers = await p("SELECT id, order_id FROM order_announcements WHERE shard = ?")
        repo._by_user = await p(
            "INSERT INTO orders_by_user (user_id, create_time, id) VALUES (?, ?, ?)"
        )
        repo._by_month = await p(
            "INSERT INTO orders_by_month (month, create_time, id, user_id) VALUES (?, ?, ?, ?)"
        )
        repo._create = await p(
            "INSERT INTO orders (id, user_id, version, state, from_cart, doc, pending) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        repo._update = await p(
            "UPDATE orders SET version = ?, state = ?, doc = ?, pending = pending + ? "
            "WHERE id = ? IF version = ?"
        )
        repo._change = await p("INSERT INTO orders (id, seq, change) VALUES (?, ?, ?)")
        repo._get = await p(
            "SELECT version, from_cart, doc, pending FROM orders WHERE id = ? LIMIT 1"
        )
        repo._history = await p("SELECT seq, change FROM orders WHERE id = ?")
        repo._clear = await p("UPDATE orders SET pending = pending - ? WHERE id = ?")
        repo._deadline = await p(
            "INSERT INTO order_deadlines (bucket, order_id, deadline) VALUES (?, ?, ?)"
        )
        repo._forget_deadline = await p(
            "DELETE FROM order_deadlines WHERE bucket = ? AND order_id = ?"
        )
        repo._deadlines = await p("SELECT order_id, deadline FROM order_deadlines WHERE bucket = ?")
        repo._sweep_position = await p(
            "SELECT next_bucket FROM order_deadline_sweep WHERE name = 'deadlines'"
        )
        repo._sweep_moved = await p(
            "UPDATE order_deadline_sweep SET next_bucket = ? WHERE name = 'deadlines'"
        )
        repo._list_user = await p(
            "SELECT create_time, id FROM orders_by_user WHERE user_id = ? LIMIT ?"
        )
        repo._list_user_after = await p(
            "SELECT create_time, id FROM orders_by_user WHERE user_id = ? "
            "AND (create_time, id) < (?, ?) LIMIT ?"
        )
        repo._list_month = await p(
            "SELECT create_time, id FROM orders_by_month WHERE month = ? LIMIT ?"
        )
        repo._list_month_after = await p(
            "SELECT create_time, id FROM orders_by_month WHERE month = ? "
            "AND (create_time, id) < (?, ?) LIMIT ?"
        )
        return repo

    # --- idempotency ------------------------------------------------------------------------

    async def claim(self, user_id, request_id, order_id, fingerprint):
        rows = await self.session.execute(
            self._claim, (user_id, request_id, uuid.UUID(order_id), fingerprint)
        )
        if applied(rows):
            return order_id, fingerprint
        return str(rows[0].order_id), rows[0].fingerprint

    async def request(self, user_id, request_id):
        rows = await self.session.execute(self._request, (user_id, request_id))
        return (str(rows[0].order_id), rows[0].fingerprint) if rows else None

    # --- writes -----------------------------------------------------------------------------

    async def _mark(self, order: Order, *, new: bool) -> tuple[int, uuid.UUID]:
        marker = (uuid.UUID(order.id).int % MARKER_SHARDS, uuid.uuid1())
        batch = self.session.batch()
        batch.add(self._marker, (*marker, uuid.UUID(order.id)))
        if new:
            oid = uuid.UUID(order.id)
            batch.add(self._by_user, (order.user_id, order.create_time, oid))
            batch.add(
                self._by_month, (_month(order.create_time), order.create_time, oid, order.user_id)
            )
            if order.deadline is not None:
                batch.add(self._deadline, (_bucket(order.deadline), oid, order.deadline))
        await self.session.execute(batch)
        return marker

    def _conditional(self) -> BatchStatement:
        return BatchStatement(
            batch_type=BatchType.LOGGED,
            consistency_level=self.session.consistency,
            serial_consistency_level=self.session.serial_consistency,
        )

    def _add_change(self, batch: BatchStatement, transition: Transition) -> None:
        if transition.change is not None:
            change = mapping.change_to_proto(transition.change).SerializeToString()
            batch.add(
                self._change, (uuid.UUID(transition.order.id), transition.order.version, change)
            )

    async def insert(self, transition: Transition, events: Sequence[Event]) -> bool:
        order = transition.order
        marker = await self._mark(order, new=True)
        pending = _pending(transition, events)
        batch = self._conditional()
        batch.add(
            self._create,
            (
                uuid.UUID(order.id),
                order.user_id,
                order.version,
                order.state.value,
                order.from_cart,
                mapping.order_to_proto(order).SerializeToString(),
                pending,
            ),
        )
        self._add_change(batch, transition)
        if not applied(await self.session.execute(batch)):
            await self.session.execute(self._unmark, marker)
            return False
        await self._announce(order.id, pending, marker)
        return True

    async def save(self, transition: Transition, events: Sequence[Event], expected_version: int):
        order = transition.order
        marker = await self._mark(order, new=False)
        pending = _pending(transition, events)
        batch = self._conditional()
        batch.add(
            self._update,
            (
                order.version,
                order.state.value,
                mapping.order_to_proto(order).SerializeToString(),
                pending,
                uuid.UUID(order.id),
                expected_version,
            ),
        )
        self._add_change(batch, transition)
        if not applied(await self.session.execute(batch)):
            await self.session.execute(self._unmark, marker)
            return False
        forget = None
        if _left_waiting(transition):
            assert order.deadline is not None
            forget = (_bucket(order.deadline), uuid.UUID(order.id))
        await self._announce(order.id, pending, marker, forget)
        return True

    async def _announce(
        self,
        order_id: str,
        pending: dict[str, bytes],
        marker: tuple[int, uuid.UUID] | None,
        forget_deadline: tuple[int, uuid.UUID] | None = None,
    ) -> None:
        # One LOGGED batch: the events into the outbox, and `pending` and the marker cleared
        # (all or nothing, so a crash leaves either everything to sweep or nothing).
        done = self.session.batch()
        if pending:
            done.add(self._clear, (set(pending), uuid.UUID(order_id)))
        if marker is not None:
            done.add(self._unmark, marker)
        if forget_deadline is not None:
            # A crash before this leaves the deadline: the sweeper finds the order moved on.
            done.add(self._forget_deadline, forget_deadline)
        if pending:
            events = [_decode_event(pending[k]) for k in sorted(pending)]
            await self.outbox.write(done, events, key=order_id)
        elif marker is not None or forget_deadline is not None:
            await self.session.execute(done)

    async def sweep(self, older_than: timedelta = timedelta(seconds=5)) -> int:
        """Hands to the outbox the events a crash left pending; returns how many orders."""
        cutoff = datetime.now(UTC).timestamp() - older_than.total_seconds()
        swept = 0
        for shard in range(MARKER_SHARDS):
            for row in await self.session.execute(self._markers, (shard,)):
                if unix_time_from_uuid1(row.id) > cutoff:
                    continue
                stored = await self.session.execute(self._get, (row.order_id,))
                pending = dict(stored[0].pending or {}) if stored else {}
                await self._announce(str(row.order_id), pending, (shard, row.id))
                swept += 1
        return swept

    # --- deadlines --------------------------------------------------------------------------

    async def overdue(self, now: datetime, limit: int) -> list[Deadline]:
        if self._next_bucket is None:
            rows = await self.session.execute(self._sweep_position)
            if rows and rows[0].next_bucket is not None:
                self._next_bucket = rows[0].next_bucket
            else:  # the first sweep ever: no deadline can be much older than the table
                self._next_bucket = _bucket(now) - 60 * DEADLINE_BUCKET_SECONDS
        start, current = self._next_bucket, _bucket(now)
        settle_before = now.timestamp() - DEADLINE_SETTLE_SECONDS
        due: list[Deadline] = []
        settled_up_to = start  # every bucket before it is past and empty
        bucket = start
        for _ in range(MAX_BUCKETS_PER_SWEEP):
            if bucket > current or len(due) >= limit:
                break
            rows = await self.session.execute(self._deadlines, (bucket,))
            end = bucket + DEADLINE_BUCKET_SECONDS
            if not rows and settled_up_to == bucket and end <= settle_before:
                settled_up_to = end
            for row in rows:
                at = _utc(row.deadline)
                if at <= now:
                    due.append(Deadline(str(row.order_id), at))
            bucket += DEADLINE_BUCKET_SECONDS
        if settled_up_to != start:
            await self.session.execute(self._sweep_moved, (settled_up_to,))
            self._next_bucket = settled_up_to
        return due[:limit]

    async def settled(self, deadlines: Sequence[Deadline]) -> None:
        await asyncio.gather(
            *(
                self.session.execute(self._forget_deadline, (_bucket(d.at), uuid.UUID(d.order_id)))
                for d in deadlines
            )
        )

    # --- reads ------------------------------------------------------------------------------

    async def get(self, order_id: str) -> Order | None:
        try:
            key = uuid.UUID(order_id)
        except ValueError:
            return None
        rows = await self.session.execute(self._get, (key,))
        if not rows or rows[0].doc is None:
            return None
        row = rows[0]
        return mapping.order_from_proto(
            order_pb2.Order.FromString(row.doc), version=row.version, from_cart=bool(row.from_cart)
        )

    async def history(self, order_id: str) -> list[StatusChange]:
        try:
            key = uuid.UUID(order_id)
        except ValueError:
            return []
        rows = await self.session.execute(self._history, (key,))
        return [
            mapping.change_from_proto(order_pb2.StatusChange.FromString(r.change))
            for r in rows
            if r.change is not None
        ]

    async def list(self, user_id: str | None, cursor: Cursor | None, limit: int):
        after = None
        if cursor is not None:
            after = (datetime.fromtimestamp(cursor["t"] / 1000, UTC), uuid.UUID(cursor["id"]))
        rows: list[tuple[Any, str | None]] = []
        if user_id is not None:
            if after is None:
                got = await self.session.execute(self._list_user, (user_id, limit + 1))
            else:
                got = await self.session.execute(
                    self._list_user_after, (user_id, *after, limit + 1)
                )
            rows = [(r, None) for r in got]
        else:
            start = cursor["m"] if cursor and "m" in cursor else _month(datetime.now(UTC))
            first = True
            for month in _months_back(start):
                if first and after is not None:
                    got = await self.session.execute(
                        self._list_month_after, (month, *after, limit + 1 - len(rows))
                    )
                else:
                    got = await self.session.execute(
                        self._list_month, (month, limit + 1 - len(rows))
                    )
                first = False
                rows += [(r, month) for r in got]
                if len(rows) > limit:
                    break
        more = len(rows) > limit
        rows = rows[:limit]
        orders = await asyncio.gather(*(self.get(str(r.id)) for r, _ in rows))
        next_cursor = None
        if more and rows:
            record, month = rows[-1]
            next_cursor = {
                "t": int(_utc(record.create_time).timestamp() * 1000),
                "id": str(record.id),
            }
            if month is not None:
                next_cursor["m"] = month
        return [o for o in orders if o is not None], next_cursor
