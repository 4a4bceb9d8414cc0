"""The tiny "things" service the messaging tests drive, over each outbox/inbox store.

A thing is an aggregate with a name. Writing it saves its state and its events atomically
(Cassandra: one LOGGED batch; MongoDB: one single-document update; memory: one call), which is
the pattern every real service follows. An "effect" is what a consumer does per event, written
so that applying it twice shows (a new row or document each time): the inbox must prevent it.
Used in-process by the tests and by the subprocesses of `_messaging_proc.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kit import cassandra, mongo
from kit.config import CassandraSettings, MongoSettings
from kit.events import Event
from kit.inbox import INBOX_CQL, CassandraInbox, Inbox, InMemoryInbox, MongoInbox
from kit.outbox import (
    OUTBOX_CQL,
    OUTBOX_LEASE_CQL,
    CassandraLease,
    CassandraOutbox,
    InMemoryOutbox,
    MongoLease,
    MongoOutbox,
)

THINGS_CQL = """
CREATE TABLE IF NOT EXISTS things (id text PRIMARY KEY, name text);
-- One row per application of an effect: a second application is a second row.
CREATE TABLE IF NOT EXISTS effects (event_id text, id timeuuid, PRIMARY KEY ((event_id), id));
"""

SCHEMA_CQL = f"{OUTBOX_CQL};\n{OUTBOX_LEASE_CQL};\n{INBOX_CQL};\n{THINGS_CQL}"

STORES = ("memory", "cassandra", "mongo")
DURABLE_STORES = ("cassandra", "mongo")


class MemoryThings:
    kind = "memory"

    def __init__(self) -> None:
        self.outbox = InMemoryOutbox()
        self._names: dict[str, str] = {}
        self._effects: dict[str, int] = {}
        self._inboxes: dict[str, InMemoryInbox] = {}

    async def write(self, thing_id: str, name: str, events: Sequence[Event]) -> None:
        self._names[thing_id] = name
        self.outbox.add(events, key=thing_id)
        self.outbox.notify()

    async def name_of(self, thing_id: str) -> str | None:
        return self._names.get(thing_id)

    async def new_outbox(self) -> InMemoryOutbox:
        return self.outbox  # memory does not survive a new instance

    async def inbox(self, consumer: str) -> Inbox:
        return self._inboxes.setdefault(consumer, InMemoryInbox())

    async def apply_effect(self, event: Event, inbox: Inbox) -> None:
        self._effects[event.id] = self._effects.get(event.id, 0) + 1

    async def effects(self, event_id: str) -> int:
        return self._effects.get(event_id, 0)

    async def close(self) -> None:
        pass


class CassandraThings:
    kind = "cassandra"

    def __init__(self, session: Any, outbox: CassandraOutbox) -> None:
        self.session = session
        self.outbox = outbox

    @classmethod
    async def open(cls, keyspace: str, *, schema: Path | None = None) -> CassandraThings:
        session = await cassandra.connect(
            # The servers' addresses from the environment (the stack's port offset).
            replace(CassandraSettings.from_env(keyspace), keyspace=keyspace),
            schema=schema,
            wait_seconds=15,
        )
        return cls(session, await CassandraOutbox.open(session))

    async def write(self, thing_id: str, name: str, events: Sequence[Event]) -> None:
        batch = self.session.batch()
        insert = await self.session.prepare("INSERT INTO things (id, name) VALUES (?, ?)")
        batch.add(insert, (thing_id, name))
        await self.outbox.write(batch, events, key=thing_id)

    async def name_of(self, thing_id: str) -> str | None:
        rows = await self.session.execute(
            await self.session.prepare("SELECT name FROM things WHERE id = ?"), (thing_id,)
        )
        return rows[0].name if rows else None

    async def new_outbox(self) -> CassandraOutbox:
        return await CassandraOutbox.open(self.session)

    async def inbox(self, consumer: str) -> Inbox:
        return await CassandraInbox.open(self.session, consumer)

    async def lease(self, name: str, seconds: float) -> CassandraLease:
        return await CassandraLease.open(self.session, name=name, seconds=seconds)

    async def apply_effect(self, event: Event, inbox: Inbox) -> None:
        # The effect and the inbox record in one LOGGED batch: both or neither.
        batch = self.session.batch()
        insert = await self.session.prepare("INSERT INTO effects (event_id, id) VALUES (?, now())")
        batch.add(insert, (event.id,))
        assert isinstance(inbox, CassandraInbox)
        inbox.add_to_batch(batch, event)
        await self.session.execute(batch)

    async def effects(self, event_id: str) -> int:
        rows = await self.session.execute(
            await self.session.prepare("SELECT id FROM effects WHERE event_id = ?"), (event_id,)
        )
        return len(rows)

    async def close(self) -> None:
        await self.session.close()


class MongoThings:
    kind = "mongo"

    def __init__(self, database: mongo.MongoDatabase) -> None:
        self.database = database
        self.outbox = MongoOutbox(database, ["things"])

    @classmethod
    async def open(cls, name: str) -> MongoThings:
        database = mongo.connect(replace(MongoSettings.from_env(name), database=name))
        await database.ping()
        return cls(database)

    async def write(self, thing_id: str, name: str, events: Sequence[Event]) -> None:
        # State and events in one single-document update (FerretDB has no transactions).
        await self.database["things"].update_one(
            {"_id": thing_id}, MongoOutbox.push({"$set": {"name": name}}, events), upsert=True
        )
        self.outbox.notify()

    async def name_of(self, thing_id: str) -> str | None:
        doc = await self.database["things"].find_one({"_id": thing_id})
        return doc["name"] if doc else None

    async def new_outbox(self) -> MongoOutbox:
        return MongoOutbox(self.database, ["things"])

    async def inbox(self, consumer: str) -> Inbox:
        return MongoInbox(self.database, consumer)

    async def lease(self, name: str, seconds: float) -> MongoLease:
        return MongoLease(self.database, name=name, seconds=seconds)

    async def apply_effect(self, event: Event, inbox: Inbox) -> None:
        # Recorded in the inbox by idempotent() right after: not atomic with this insert.
        await self.database["effects"].insert_one({"_id": uuid.uuid4().hex, "event_id": event.id})

    async def effects(self, event_id: str) -> int:
        return await self.database["effects"].count_documents({"event_id": event_id})

    async def close(self) -> None:
        await self.database.close()


async def open_things(kind: str, *, keyspace: str, database: str) -> Any:
    if kind == "cassandra":
        return await CassandraThings.open(keyspace)
    if kind == "mongo":
        return await MongoThings.open(database)
    return MemoryThings()
