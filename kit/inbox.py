"""Idempotent consumers: an inbox of processed event ids per consumer, and `idempotent()`.

The bus delivers at least once: a redelivery follows a consumer crash before its ack, a relay
crash between publish and delete (the event is published twice), a replay from a DLQ.
`idempotent(inbox, handler)` makes that effectively once:

    handle = idempotent(inbox, on_order_placed)
    # for each delivery: skip if the inbox has the event id, else run the handler, then
    # record the id; the bus acks after all of that returned.

What holds, by where the crash happens:

- before the effect is durable: nothing was recorded, the message is redelivered (not acked)
  and the handler runs again: no effect lost.
- after the effect and the inbox record, before the ack: the redelivery finds the id and is
  acked without a second effect. (Tested with SIGKILL in tests/integration/test_outbox.py.)
- between the effect and the record: the record is missing, so the redelivery runs the
  handler again; the effect must then be a no-op. Every consumer here makes it so: write the
  record *with* the effect where the store allows (Cassandra: `inbox.add_to_batch(batch,
  event)` in the handler's LOGGED batch; Redis: the same MULTI; MongoDB: the same document), or
  make the effect idempotent by construction (a compare-and-set on the aggregate's version or
  state, ids derived from the event, a request id remembered in the same conditional write as
  the effect, as catalog stock adjustments do). tests/integration/_crash_between.py injects
  exactly this crash; each consumer's integration tests use it.
- two deliveries of one event at the same time (the broker redelivers once the first
  consumer's connection is gone, while that zombie may still be finishing): both may pass the
  check. Conditional writes on the aggregate (LWT, version check) are the guard where a double
  effect would matter (stock, payment).

A claim *before* the effect (`INSERT ... IF NOT EXISTS`, then the effect) is deliberately not
used: a crash between claim and effect would lose the effect (at-most-once).

Records expire after `retention` (14 days by default; Cassandra TTL, MongoDB `prune`), longer
than any redelivery or replay window.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cassandra.query import BatchStatement

from kit.events import Event, Handler

log = logging.getLogger("emporium.inbox")

DEFAULT_RETENTION = timedelta(days=14)


class Inbox(Protocol):
    """The processed event ids of one consumer."""

    async def seen(self, event: Event) -> bool:
        """Whether this consumer already processed `event`."""
        ...

    async def record(self, event: Event) -> None:
        """Remembers that `event` was processed; harmless if already recorded."""
        ...


def idempotent(inbox: Inbox, handler: Handler) -> Handler:
    """A handler that runs `handler` at most once per event id (see the module docstring)."""

    async def handle(event: Event) -> None:
        if await inbox.seen(event):
            log.info("event %s (%s) already processed: skipped", event.id, event.type)
            return
        await handler(event)
        await inbox.record(event)

    handle.__name__ = getattr(handler, "__name__", "handle")
    return handle


# ---------------------------------------------------------------------------------------------
# Cassandra

INBOX_TABLE = "inbox"

# Include in the service's schema.cql (or call `CassandraInbox.create_table`). One partition
# per (consumer, event): the check is a single-partition read, records never grow a partition,
# and the table's TTL drops them after the retention window (no tombstone-heavy deletes).
INBOX_CQL = f"""
CREATE TABLE IF NOT EXISTS {INBOX_TABLE} (
    consumer text,
    event_id text,
    type text,
    processed_time timestamp,
    PRIMARY KEY ((consumer, event_id))
) WITH default_time_to_live = {int(DEFAULT_RETENTION.total_seconds())}
"""


class CassandraInbox:
    """The inbox table of a service's keyspace. Make one with `await CassandraInbox.open(...)`."""

    def __init__(self, session: Any, consumer: str, statements: dict[str, Any], ttl: int) -> None:
        self.consumer = consumer
        self._session = session
        self._select = statements["select"]
        self._insert = statements["insert"]
        self._ttl = ttl

    @classmethod
    async def open(
        cls,
        session: Any,
        consumer: str,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        create_table: bool = False,
    ) -> CassandraInbox:
        """The inbox of consumer `consumer` (e.g. the queue name) in `session`'s keyspace."""
        if create_table:
            await cls.create_table(session)
        statements = {
            "select": await session.prepare(
                f"SELECT event_id FROM {INBOX_TABLE} WHERE consumer = ? AND event_id = ?"
            ),
            "insert": await session.prepare(
                f"INSERT INTO {INBOX_TABLE} (consumer, event_id, type, processed_time) "
                "VALUES (?, ?, ?, ?) USING TTL ?"
            ),
        }
        return cls(session, consumer, statements, int(retention.total_seconds()))

    @staticmethod
    async def create_table(session: Any) -> None:
        await session.execute_ddl(INBOX_CQL)

    async def seen(self, event: Event) -> bool:
        return bool(await self._session.execute(self._select, (self.consumer, event.id)))

    def _params(self, event: Event) -> tuple[Any, ...]:
        return (self.consumer, event.id, event.type, datetime.now(UTC), self._ttl)

    def add_to_batch(self, batch: BatchStatement, event: Event) -> None:
        """Records `event` in the handler's LOGGED batch, atomically with its effect."""
        batch.add(self._insert, self._params(event))

    async def record(self, event: Event) -> None:
        # An upsert: re-recording what the handler's batch already wrote changes nothing.
        await self._session.execute(self._insert, self._params(event))


# ---------------------------------------------------------------------------------------------
# MongoDB


class MongoInbox:
    """Processed events as documents `{_id: "<consumer>:<event id>"}` in collection `inbox`.

    The unique `_id` makes recording race-free on MongoDB and FerretDB alike. FerretDB v1 has no
    TTL indexes, so old records are removed by `prune()` (call it now and then).
    """

    def __init__(self, db: Any, consumer: str, *, collection: str = "inbox") -> None:
        self.consumer = consumer
        self._collection = getattr(db, "db", db)[collection]

    def _id(self, event: Event) -> str:
        return f"{self.consumer}:{event.id}"

    async def seen(self, event: Event) -> bool:
        return await self._collection.find_one({"_id": self._id(event)}, {"_id": 1}) is not None

    async def record(self, event: Event) -> None:
        # An upsert with $setOnInsert: a second record of the same event is a no-op, not an error.
        await self._collection.update_one(
            {"_id": self._id(event)},
            {
                "$setOnInsert": {
                    "consumer": self.consumer,
                    "event_id": event.id,
                    "type": event.type,
                    "processed_time": datetime.now(UTC),
                }
            },
            upsert=True,
        )

    async def prune(self, retention: timedelta = DEFAULT_RETENTION) -> int:
        """Deletes this consumer's records older than `retention`; returns how many."""
        cutoff = datetime.now(UTC) - retention
        result = await self._collection.delete_many(
            {"consumer": self.consumer, "processed_time": {"$lt": cutoff}}
        )
        return result.deleted_count


# ---------------------------------------------------------------------------------------------
# Redis


class RedisInbox:
    """The inbox in Redis: one key `<prefix>inbox:<event id>` per handled event, kept
    `retention_seconds`. A handler that writes with MULTI can add `inbox.key(event)` to it."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        *,
        retention_seconds: int = int(DEFAULT_RETENTION.total_seconds()),
    ) -> None:
        self._client = client
        self.prefix = f"{prefix}inbox:"
        self.retention_seconds = retention_seconds

    def key(self, event: Event) -> str:
        """The key that marks `event` handled (SET it EX `retention_seconds`)."""
        return self.prefix + event.id

    async def seen(self, event: Event) -> bool:
        return bool(await self._client.exists(self.key(event)))

    async def record(self, event: Event) -> None:
        await self._client.set(self.key(event), b"1", ex=self.retention_seconds)


# ---------------------------------------------------------------------------------------------
# In memory (unit tests)


class InMemoryInbox:
    """An inbox in a set, for unit tests."""

    def __init__(self) -> None:
        self.processed: set[str] = set()

    async def seen(self, event: Event) -> bool:
        return event.id in self.processed

    async def record(self, event: Event) -> None:
        self.processed.add(event.id)
