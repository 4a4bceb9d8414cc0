"""MongoDB client of the service kit: PyMongo's asyncio client, one database per service.

Services talk to MongoDB through `pymongo.AsyncMongoClient` (Motor is deprecated). Locally and
in the tests the server is FerretDB v1 behind our one-write-at-a-time gate
(infra/local/ferretdb/README.md), so services rely only on what real MongoDB and that server
both do correctly:

- single-document atomicity: every unit of change lives in one document (an aggregate with its
  outbox events inside it), changed by one `update_one` / `find_one_and_update` with `$set`,
  `$inc`, `$push`, `$pull` of an exact element, `$setOnInsert` upserts;
- compare-and-set: a filter on `_id` plus a version or status field (`{_id, version: 3}`), and
  claim-by-update with `find_one_and_update(..., return_document=AFTER)`;
- unique indexes (DuplicateKeyError, code 11000) for idempotency keys and inbox event ids;
- insert/find/sort/limit, `update_many`, `bulk_write`, `aggregate` with `$match` / `$group`.

Not available (the server refuses, or answers wrongly without an error): multi-document
transactions, change streams, TTL indexes, partial indexes, `$lookup`, `arrayFilters`, the
positional `$` update operator, `$elemMatch` over sub-documents (query `"outbox.event_id"`
instead) and `$pull` with a condition. Expiry is therefore a field the service filters and
sweeps, not a TTL index; `ensure_indexes` refuses the index options that would not work here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from kit.config import MongoSettings

__all__ = ["MongoDatabase", "connect"]

Document = dict[str, Any]

# Index options the local server rejects; declaring them would make tests and production differ.
UNPORTABLE_INDEX_OPTIONS = frozenset({"expireAfterSeconds", "partialFilterExpression"})

# How long an operation waits for a reachable server. Long enough to ride out the server's
# start (FerretDB ~0.3 s, MongoDB a few seconds) when a service starts at the same time as it.
SERVER_SELECTION_TIMEOUT_MS = 30_000


class MongoDatabase:
    """The service's own database on a MongoDB-wire server, and the client that reaches it."""

    def __init__(self, client: AsyncMongoClient[Document], name: str) -> None:
        self.client = client
        self.name = name
        self.db: AsyncDatabase[Document] = client[name]

    def __getitem__(self, collection: str) -> AsyncCollection[Document]:
        return self.db[collection]

    async def ensure_indexes(self, spec: Mapping[str, Sequence[IndexModel]]) -> None:
        """Create the declared indexes of each collection (creating the collection); idempotent.

        An index that exists with the same keys and options is left alone; one with the same
        name but other options makes the server fail (OperationFailure): rename it to change it.
        """
        for collection, models in spec.items():
            for model in models:
                unportable = UNPORTABLE_INDEX_OPTIONS & model.document.keys()
                if unportable:
                    raise ValueError(
                        f"index {model.document['name']!r} on {collection!r} uses "
                        f"{', '.join(sorted(unportable))}, which the local MongoDB-wire server "
                        f"does not support"
                    )
            # One createIndexes per index: FerretDB v1 panics (drops the connection) on a
            # batch of several when the collection already has a sparse index (the outbox's).
            for model in models:
                await self.db[collection].create_indexes([model])

    async def ping(self) -> None:
        """Raise unless the server answers (readiness checks, start-up)."""
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await self.client.close()


def connect(settings: MongoSettings) -> MongoDatabase:
    """A client for `settings.url` bound to `settings.database`; connects lazily, on first use.

    No I/O happens here (the client's background monitor connects), so `bootstrap.build` can
    call it synchronously; await `ping()` to wait for the server.
    """
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.url,
        # Aware UTC datetimes map straight onto google.protobuf.Timestamp; "standard" stores
        # uuid.UUID as BSON binary subtype 4, readable by every other driver.
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        appname="emporium",
    )
    return MongoDatabase(client, settings.database)
