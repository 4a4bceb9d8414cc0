"""The transactional outbox: events are saved with the state change, then relayed to the bus.

No handler publishes directly (ARCHITECTURE.md section 4). A handler writes its state change and
the events it causes in one atomic write:

- Cassandra: `outbox.add_to_batch(batch, events, key=aggregate_id)` puts the outbox INSERTs in
  the handler's LOGGED batch (multi-partition is fine: a logged batch applies all or nothing);
- MongoDB (FerretDB v1 has no multi-document transactions): the events live inside the
  aggregate document, in its `_outbox` array, written by the same single-document update
  (`MongoOutbox.push(update, events)`, `MongoOutbox.document(doc, events)`);
- Redis: the events are XADDed to the outbox stream in the writer's MULTI (`RedisOutbox`).

The `Relay` (one background task per service) reads pending events, publishes them with
publisher confirms and only then deletes them. Every crash is safe: before the write commits
there is no state and no event; after it, the event is pending until a relay has had it
confirmed; a relay killed between the confirm and the delete publishes it again after restart
(consumers deduplicate on the event id, kit.inbox). Events of one aggregate are published in the
order they were written (Cassandra: one shard per aggregate, clustered by timeuuid; MongoDB: the
array's order), redeliveries aside.

The relay is woken at once by `outbox.notify()` after a local write (`CassandraOutbox.write`
does it, and hands the committed rows over in memory, so the relay publishes them without
reading the table), and otherwise looks every `interval` (0.5 s); the Cassandra and MongoDB
outboxes read their store only after a notify (until a read finds nothing) and on a slow
fallback poll (5 s) for what a crash or another replica left. An event is usually on the bus
milliseconds after its write commits, and an idle service does not read its outbox twice a
second (on FerretDB v1 each MongoDB read is a scan of the whole collection).

When a service runs several replicas, each runs a relay with a lease (`Relay(...,
lease=await CassandraLease.open(session))`, `MongoLease(db)` or `RedisLease(client, key)`: a
row, document or key with an owner and an expiry, taken and renewed with a conditional write);
only the holder publishes, and another replica takes over within the lease time (10 s) after
the holder dies. Without a
lease, two relays would publish each event twice and could interleave one aggregate's events;
even then nothing is lost (the inbox absorbs duplicates), and a holder that stalls past its
lease (a long pause) causes only that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cassandra.query import BatchStatement, BatchType
from cassandra.util import min_uuid_from_time, unix_time_from_uuid1
from pymongo.errors import DuplicateKeyError

from kit import retry, telemetry
from kit.events import Event

log = logging.getLogger("emporium.outbox")


class Wakeup:
    """An in-process signal from the writers of an outbox to its relay."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, seconds: float) -> bool:
        """Waits until set, or for `seconds`; True if set."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
                return True
        return False


class Outbox(Protocol):
    """What a relay needs from an outbox store."""

    wakeup: Wakeup

    async def pending(self, limit: int) -> list[Event]:
        """Up to `limit` unsent events, each aggregate's in written order."""
        ...

    async def mark_sent(self, events: Sequence[Event]) -> None:
        """Removes events returned by `pending` (their publish was confirmed)."""
        ...

    def notify(self) -> None:
        """Wakes the relay: a write just committed events."""
        ...


class Bus(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...


class Lease(Protocol):
    """The right to relay an outbox, held by one relay at a time."""

    async def hold(self) -> bool:
        """Takes or renews the lease; True while this relay holds it."""
        ...


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# The relay


class Relay:
    """Publishes an outbox's pending events and deletes them once the broker confirmed them."""

    def __init__(
        self,
        outbox: Outbox,
        bus: Bus,
        *,
        interval: float = 0.5,
        batch_size: int = 100,
        max_backoff: float = 10.0,
        lease: Lease | None = None,
    ) -> None:
        self._outbox = outbox
        self._bus = bus
        self._lease = lease
        self._interval = interval
        self._batch_size = batch_size
        self._max_backoff = max_backoff
        self.published = 0  # events confirmed since start (a duplicate counts again)

    def notify(self) -> None:
        self._outbox.notify()

    async def publish_pending(self) -> int:
        """One pass: publish up to `batch_size` pending events, then mark them sent.

        Does nothing (returns 0) while another relay holds the lease.
        """
        if self._lease is not None and not await self._lease.hold():
            return 0
        events = await self._outbox.pending(self._batch_size)
        telemetry.set_gauge("emporium.outbox.backlog", len(events))
        if not events:
            return 0
        # Raises unless every event was confirmed; then nothing is marked and all are retried.
        await self._bus.publish(events)
        await self._outbox.mark_sent(events)
        self.published += len(events)
        return len(events)

    async def run(self) -> None:
        """Relays until cancelled; failures (broker or database down) are retried with back-off."""
        while True:
            count = 0
            async for attempt in retry.until_done(
                "outbox relay",
                first_wait=self._interval,
                max_wait=self._max_backoff,
                traceback=False,
            ):
                with attempt:
                    # Cleared before reading: a write committed during the pass wakes the next.
                    self._outbox.wakeup.clear()
                    count = await self.publish_pending()
            if count >= self._batch_size:
                continue  # more are waiting
            await self._outbox.wakeup.wait(self._interval)


# ---------------------------------------------------------------------------------------------
# Cassandra

OUTBOX_TABLE = "outbox"
DEFAULT_SHARDS = 8

# Include in the service's schema.cql (or call `CassandraOutbox.create_table`).
#
# Partitioned by a small fixed number of shards, so writes spread over the cluster without one
# hot partition while `pending` stays a handful of single-partition reads; clustered by
# timeuuid, so a shard reads in write order. An aggregate always goes to the same shard (crc32 of
# its key), which keeps its events in order. Sent rows are deleted one by one (a range delete
# could cover a row committed late with an older timeuuid); the relay reads past its own
# tombstones from a remembered position and scans whole shards only now and then. A short
# gc_grace_seconds lets compaction purge those tombstones early: a row resurrected by a replica
# that missed a delete is only published again, which consumers deduplicate anyway.
OUTBOX_CQL = f"""
CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (
    shard int,
    id timeuuid,
    event_id text,
    type text,
    source text,
    time timestamp,
    data blob,
    headers map<text, text>,
    PRIMARY KEY ((shard), id)
) WITH CLUSTERING ORDER BY (id ASC)
  AND gc_grace_seconds = 3600
"""


# The relay lease (see CassandraLease); include it in schema.cql beside OUTBOX_CQL.
OUTBOX_LEASE_CQL = """
CREATE TABLE IF NOT EXISTS outbox_lease (name text PRIMARY KEY, owner text)
"""

DEFAULT_LEASE_SECONDS = 10.0


def shard_of(key: str, shards: int) -> int:
    """The outbox shard of an aggregate key (stable across processes, unlike hash())."""
    return zlib.crc32(key.encode()) % shards


class CassandraOutbox:
    """The outbox table in a service's keyspace. Make one with `await CassandraOutbox.open(...)`.

    What this process writes through `write` is handed to its relay in memory once the write
    has committed (with the row's shard and id), so the relay publishes it and deletes its row
    without reading anything back. The table itself is read only by a slow fallback poll (every
    `poll_seconds`, from a remembered position per shard, and a full scan now and then): it
    finds what a crash left behind, what another replica wrote, and what `add_to_batch` callers
    committed (they call `notify()` after their batch; `write` is the cheap path).
    """

    # Rows committed up to this long before the newest row seen are still found by the quick
    # read (clock skew between writers, a batch replayed from the batchlog); older stragglers
    # by the full scan that runs every `full_scan_seconds`.
    SAFETY_SECONDS = 10.0
    # Committed rows kept in memory for the relay at most; older ones are left to the poll
    # (a replica that does not hold the relay lease would otherwise collect them forever).
    MAX_FRESH = 10_000

    def __init__(
        self,
        session: Any,
        statements: Mapping[str, Any],
        *,
        shards: int,
        full_scan_seconds: float,
        poll_seconds: float = 5.0,
    ) -> None:
        self._session = session
        self._insert = statements["insert"]
        self._select_all = statements["select_all"]
        self._select_after = statements["select_after"]
        self._delete = statements["delete"]
        self.shards = shards
        self._full_scan_seconds = full_scan_seconds
        self._poll_seconds = poll_seconds
        self._next_full_scan = 0.0
        self._next_poll = 0.0
        # Per shard, the lowest id the quick read starts after.
        self._after: dict[int, uuid.UUID] = {}
        # Where each pending event's row is, for mark_sent.
        self._rows: dict[str, tuple[int, uuid.UUID]] = {}
        # Rows this process committed and has not seen deleted: event id -> (shard, id, event).
        self._fresh: dict[str, tuple[int, uuid.UUID, Event]] = {}
        self.reads = 0  # partition reads since start (the poll's cost), for benchmarks
        self.wakeup = Wakeup()

    @classmethod
    async def open(
        cls,
        session: Any,
        *,
        shards: int = DEFAULT_SHARDS,
        full_scan_seconds: float = 60.0,
        poll_seconds: float = 5.0,
        create_table: bool = False,
    ) -> CassandraOutbox:
        """The outbox of `session`'s keyspace (a kit.cassandra.CassandraSession).

        `shards` must stay the same for the life of the table (it decides where rows are read).
        """
        if create_table:
            await cls.create_table(session)
        columns = "id, event_id, type, source, time, data, headers"
        statements = {
            "insert": await session.prepare(
                f"INSERT INTO {OUTBOX_TABLE} (shard, {columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            "select_all": await session.prepare(
                f"SELECT {columns} FROM {OUTBOX_TABLE} WHERE shard = ? LIMIT ?"
            ),
            "select_after": await session.prepare(
                f"SELECT {columns} FROM {OUTBOX_TABLE} WHERE shard = ? AND id > ? LIMIT ?"
            ),
            "delete": await session.prepare(
                f"DELETE FROM {OUTBOX_TABLE} WHERE shard = ? AND id = ?"
            ),
        }
        return cls(
            session,
            statements,
            shards=shards,
            full_scan_seconds=full_scan_seconds,
            poll_seconds=poll_seconds,
        )

    @staticmethod
    async def create_table(session: Any) -> None:
        await session.execute_ddl(OUTBOX_CQL)
        await session.execute_ddl(OUTBOX_LEASE_CQL)

    def add_to_batch(
        self, batch: BatchStatement, events: Sequence[Event], *, key: str | None = None
    ) -> None:
        """Adds `events` to the caller's LOGGED batch, beside the state change they belong to.

        `key` is the aggregate id: events with the same key are published in the order written
        (also across writes). Without one, the events of this call keep their order.
        """
        self._add(batch, events, key)

    def _add(
        self, batch: BatchStatement, events: Sequence[Event], key: str | None
    ) -> list[tuple[int, uuid.UUID, Event]]:
        if not events:
            return []
        shard = shard_of(key if key is not None else events[0].id, self.shards)
        rows = []
        for event in events:
            # uuid1 is strictly increasing within a process: the batch's events keep their order.
            row_id = uuid.uuid1()
            batch.add(
                self._insert,
                (
                    shard,
                    row_id,
                    event.id,
                    event.type,
                    event.source,
                    event.time,
                    event.data,
                    dict(event.headers),
                ),
            )
            rows.append((shard, row_id, event))
        return rows

    async def write(
        self, batch: BatchStatement, events: Sequence[Event], *, key: str | None = None
    ) -> None:
        """Adds `events` to `batch`, executes it and hands the committed rows to the relay."""
        rows = self._add(batch, events, key)
        await self._session.execute(batch)
        for row in rows:
            self._fresh[row[2].id] = row
        while len(self._fresh) > self.MAX_FRESH:
            del self._fresh[next(iter(self._fresh))]
            self._next_poll = 0.0  # what was dropped is found by reading
        self.notify()

    def notify(self) -> None:
        self.wakeup.set()

    async def _poll(self, limit: int) -> list[tuple[int, Any]]:
        now = time.monotonic()
        if now < self._next_poll:
            return []
        self._next_poll = now + self._poll_seconds
        full = now >= self._next_full_scan
        if full:
            self._next_full_scan = now + self._full_scan_seconds

        async def read(shard: int) -> list[Any]:
            after = None if full else self._after.get(shard)
            self.reads += 1
            if after is None:
                return await self._session.execute(self._select_all, (shard, limit))
            return await self._session.execute(self._select_after, (shard, after, limit))

        per_shard = await asyncio.gather(*(read(s) for s in range(self.shards)))
        return [(shard, row) for shard, rows in enumerate(per_shard) for row in rows]

    async def pending(self, limit: int = 100) -> list[Event]:
        found: dict[str, tuple[int, uuid.UUID, Event]] = {}
        for shard, row in await self._poll(limit):
            if row.event_id in self._fresh:
                continue  # the in-memory copy is the same row
            found[row.event_id] = (
                shard,
                row.id,
                Event(
                    id=row.event_id,
                    type=row.type,
                    source=row.source,
                    time=row.time.replace(tzinfo=UTC),
                    data=row.data or b"",
                    headers=dict(row.headers or {}),
                ),
            )
        found.update(self._fresh)
        # Merged by time; (shard, position) breaks ties, so each shard's rows stay a prefix in
        # their clustering order after the cut to `limit`.
        merged = sorted(found.values(), key=lambda item: (item[1].time, item[0], item[1].bytes))[
            :limit
        ]
        events = []
        for shard, row_id, event in merged:
            self._rows[event.id] = (shard, row_id)
            events.append(event)
        return events

    async def mark_sent(self, events: Sequence[Event]) -> None:
        by_shard: dict[int, list[uuid.UUID]] = {}
        for event in events:
            try:
                shard, row_id = self._rows[event.id]
            except KeyError:
                raise ValueError(f"event {event.id} was not returned by pending()") from None
            by_shard.setdefault(shard, []).append(row_id)

        async def delete(shard: int, row_ids: list[uuid.UUID]) -> None:
            # One partition: an unlogged batch is a single mutation, atomic and cheap.
            batch = BatchStatement(
                batch_type=BatchType.UNLOGGED,
                consistency_level=getattr(self._session, "consistency", None),
            )
            for row_id in row_ids:
                batch.add(self._delete, (shard, row_id))
            await self._session.execute(batch)
            newest = max(unix_time_from_uuid1(r) for r in row_ids)
            after = min_uuid_from_time(newest - self.SAFETY_SECONDS)
            current = self._after.get(shard)
            if current is None or unix_time_from_uuid1(after) > unix_time_from_uuid1(current):
                self._after[shard] = after

        await asyncio.gather(*(delete(s, ids) for s, ids in by_shard.items()))
        for event in events:
            self._rows.pop(event.id, None)
            self._fresh.pop(event.id, None)


class _LeaseClock:
    """When the lease we hold runs out, by our monotonic clock (renewed at a third gone)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until = 0.0

    def fresh(self) -> bool:
        return time.monotonic() < self._until - self.seconds * 2 / 3

    def renewed(self, started: float) -> None:
        # From when the request was sent: the server's expiry is at least that late.
        self._until = started + self.seconds

    def lost(self) -> None:
        self._until = 0.0


class CassandraLease:
    """The relay lease as a row of `outbox_lease` with a TTL, taken and renewed with LWTs."""

    def __init__(self, session: Any, statements: Mapping[str, Any], name: str, seconds: float):
        self.name = name
        self.owner = _owner()
        self._session = session
        self._take = statements["take"]
        self._renew = statements["renew"]
        self._clock = _LeaseClock(seconds)

    @classmethod
    async def open(
        cls, session: Any, *, name: str = "outbox", seconds: float = DEFAULT_LEASE_SECONDS
    ) -> CassandraLease:
        statements = {
            "take": await session.prepare(
                "INSERT INTO outbox_lease (name, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
            ),
            "renew": await session.prepare(
                "UPDATE outbox_lease USING TTL ? SET owner = ? WHERE name = ? IF owner = ?"
            ),
        }
        return cls(session, statements, name, seconds)

    async def hold(self) -> bool:
        if self._clock.fresh():
            return True
        started = time.monotonic()
        ttl = math.ceil(self._clock.seconds)  # never shorter than we believe we hold it
        rows = await self._session.execute(self._take, (self.name, self.owner, ttl))
        if not rows[0].applied and rows[0].owner == self.owner:
            rows = await self._session.execute(
                self._renew, (ttl, self.owner, self.name, self.owner)
            )
        if rows[0].applied:
            self._clock.renewed(started)
            return True
        self._clock.lost()
        return False


class MongoLease:
    """The relay lease as a document `{_id: name, owner, until}` in collection `outbox_lease`.

    Taken or renewed by one conditional upsert (owner is us, or `until` has passed); a rival's
    live lease makes the upsert collide on `_id` (DuplicateKeyError). Expiry compares the
    relays' clocks, so it tolerates skew up to the lease time.
    """

    def __init__(
        self, db: Any, *, name: str = "outbox", seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self.name = name
        self.owner = _owner()
        self._collection = getattr(db, "db", db)["outbox_lease"]
        self._clock = _LeaseClock(seconds)

    async def hold(self) -> bool:
        if self._clock.fresh():
            return True
        started = time.monotonic()
        now = datetime.now(UTC)
        try:
            await self._collection.update_one(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"until": {"$lt": now}}]},
                {
                    "$set": {
                        "owner": self.owner,
                        "until": now + timedelta(seconds=self._clock.seconds),
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            self._clock.lost()
            return False
        self._clock.renewed(started)
        return True


# ---------------------------------------------------------------------------------------------
# MongoDB

OUTBOX_FIELD = "_outbox"


def _entry(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time,
        "data": event.data,
        "headers": dict(event.headers),
    }


class MongoOutbox:
    """Events kept inside aggregate documents (`_outbox`), in the collections given.

    Uses only what MongoDB and FerretDB v1 both support: `$push` with `$each` in the writer's
    update, a query on `_outbox.id` with `$exists`, and `$pullAll` of the exact entries sent
    (FerretDB's `$pull` with a condition silently removes nothing, `arrayFilters` is missing).

    The collections are read only when something may be pending: after `notify()` (a write of
    this process committed events), after a read that found events (more may follow the
    limit, or their publish may fail), for a new instance (a restart's leftovers), and on a
    fallback poll every `poll_seconds` (what another replica or a killed writer left). An idle
    relay therefore costs one query per collection every `poll_seconds`, not every relay
    `interval`: on FerretDB v1 (SQLite) that query reads and decodes every document of the
    collection, since it filters in Go and uses no index, so polling it twice a second kept
    the local server busy on a core and more once a collection held some megabytes.
    """

    INDEX_NAME = "outbox_pending"

    def __init__(self, db: Any, collections: Sequence[str], *, poll_seconds: float = 5.0) -> None:
        # A pymongo AsyncDatabase, or kit.mongo.MongoDatabase (which carries it as `.db`).
        self._db = getattr(db, "db", db)
        self._collections = list(collections)
        self._entries: dict[str, tuple[str, Any, dict[str, Any]]] = {}
        self._poll_seconds = poll_seconds
        self._dirty = True  # something may be pending: read on the next pass
        self._next_poll = 0.0
        self.reads = 0  # passes that queried the collections, for tests and benchmarks
        self.wakeup = Wakeup()

    @staticmethod
    def entries(events: Sequence[Event]) -> list[dict[str, Any]]:
        """The `_outbox` entries of `events`."""
        return [_entry(e) for e in events]

    @classmethod
    def document(cls, document: Mapping[str, Any], events: Sequence[Event]) -> dict[str, Any]:
        """A new aggregate document carrying `events` (for insert_one / upserts)."""
        return {**document, OUTBOX_FIELD: cls.entries(events)}

    @classmethod
    def push(cls, update: Mapping[str, Any], events: Sequence[Event]) -> dict[str, Any]:
        """`update` (e.g. `{"$set": ...}`) that also appends `events` to the document's outbox."""
        merged = {op: dict(fields) for op, fields in update.items()}
        push = merged.setdefault("$push", {})
        if OUTBOX_FIELD in push:
            raise ValueError(f"update already pushes to {OUTBOX_FIELD}")
        push[OUTBOX_FIELD] = {"$each": cls.entries(events)}
        return merged

    async def ensure_indexes(self) -> None:
        """A sparse index on `_outbox.id`: MongoDB finds pending documents without a scan.

        (FerretDB v1 accepts it but scans anyway; its collections are small.)
        """
        for name in self._collections:
            await self._db[name].create_index(
                [(f"{OUTBOX_FIELD}.id", 1)], name=self.INDEX_NAME, sparse=True
            )

    def notify(self) -> None:
        self._dirty = True
        self.wakeup.set()

    async def pending(self, limit: int = 100) -> list[Event]:
        now = time.monotonic()
        if not self._dirty and now < self._next_poll:
            return []
        # Cleared before reading: a notify() while the query runs keeps it set for the next.
        self._dirty = False
        self._next_poll = now + self._poll_seconds
        try:
            events = await self._read(limit)
        except BaseException:
            self._dirty = True
            raise
        if events:
            self._dirty = True  # more may wait behind the limit, or the publish may fail
        return events

    async def _read(self, limit: int) -> list[Event]:
        self.reads += 1
        events: list[Event] = []
        for name in self._collections:
            if len(events) >= limit:
                break
            cursor = self._db[name].find(
                {f"{OUTBOX_FIELD}.id": {"$exists": True}}, {OUTBOX_FIELD: 1}
            )
            async for doc in cursor.limit(limit - len(events)):
                # A prefix of the document's outbox when the limit cuts it: the rest stays
                # behind these in the array, so the next pass publishes it after them.
                for entry in (doc.get(OUTBOX_FIELD) or [])[: limit - len(events)]:
                    event = Event(
                        id=entry["id"],
                        type=entry["type"],
                        source=entry["source"],
                        time=entry["time"].astimezone(UTC),
                        data=bytes(entry["data"]),
                        headers=dict(entry.get("headers") or {}),
                    )
                    self._entries[event.id] = (name, doc["_id"], entry)
                    events.append(event)
        return events

    async def mark_sent(self, events: Sequence[Event]) -> None:
        by_document: dict[tuple[str, Any], list[dict[str, Any]]] = {}
        for event in events:
            try:
                name, doc_id, entry = self._entries[event.id]
            except KeyError:
                raise ValueError(f"event {event.id} was not returned by pending()") from None
            by_document.setdefault((name, doc_id), []).append(entry)
        for (name, doc_id), sent in by_document.items():
            # The exact entries read: events pushed since stay, whatever the update raced with.
            await self._db[name].update_one({"_id": doc_id}, {"$pullAll": {OUTBOX_FIELD: sent}})
        for event in events:
            self._entries.pop(event.id, None)


# ---------------------------------------------------------------------------------------------
# Redis


class RedisOutbox:
    """Events in a Redis STREAM at `key`, appended in the writer's MULTI with
    `pipe.xadd(outbox.key, RedisOutbox.fields(event))`: the state change and its events commit
    together. `pending` reads the stream's head (XRANGE); `mark_sent` deletes exactly the
    entries confirmed (XDEL by entry id; entries added meanwhile stay). Needs one Redis (with
    replicas), not Redis Cluster: every key of one write must live on one server."""

    def __init__(self, client: Any, key: str) -> None:
        self._client = client
        self.key = key
        self.wakeup = Wakeup()
        self._entries: dict[str, bytes] = {}

    @staticmethod
    def fields(event: Event) -> dict[str, bytes | str]:
        return {
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "time": event.time.isoformat(),
            "data": event.data,
            "headers": json.dumps(dict(event.headers)),
        }

    def notify(self) -> None:
        self.wakeup.set()

    async def pending(self, limit: int = 100) -> list[Event]:
        entries = await self._client.xrange(self.key, "-", "+", count=limit)
        events = []
        for entry_id, raw in entries:
            fields = {k.decode(): v for k, v in raw.items()}
            event = Event(
                id=fields["id"].decode(),
                type=fields["type"].decode(),
                source=fields["source"].decode(),
                time=datetime.fromisoformat(fields["time"].decode()),
                data=bytes(fields["data"]),
                headers=json.loads(fields["headers"] or b"{}"),
            )
            self._entries[event.id] = entry_id
            events.append(event)
        return events

    async def mark_sent(self, events: Sequence[Event]) -> None:
        try:
            ids = [self._entries[event.id] for event in events]
        except KeyError as missing:
            raise ValueError(f"event {missing} was not returned by pending()") from None
        if ids:
            await self._client.xdel(self.key, *ids)
        for event in events:
            self._entries.pop(event.id, None)


# Takes the lease if free, renews it if ours; 1 if held.
_LEASE_SCRIPT = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RedisLease:
    """The relay lease in Redis: one key with the holder's id and a TTL (SET NX PX, renewed
    by a compare-and-expire script)."""

    def __init__(self, client: Any, key: str, *, seconds: float = 10.0) -> None:
        self._script = client.register_script(_LEASE_SCRIPT)
        self.key = key
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.milliseconds = int(seconds * 1000)

    async def hold(self) -> bool:
        return bool(await self._script(keys=[self.key], args=[self.owner, self.milliseconds]))


# ---------------------------------------------------------------------------------------------
# In memory (unit tests)


class InMemoryOutbox:
    """An outbox in a list, for unit tests; passes the same contract tests as the real ones."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self.wakeup = Wakeup()

    def add(self, events: Sequence[Event], *, key: str | None = None) -> None:
        """Stores events as a committed write would (the caller's state change is its own)."""
        self._events.extend(events)

    def notify(self) -> None:
        self.wakeup.set()

    async def pending(self, limit: int = 100) -> list[Event]:
        return list(self._events[:limit])

    async def mark_sent(self, events: Sequence[Event]) -> None:
        sent = {e.id for e in events}
        self._events = [e for e in self._events if e.id not in sent]
