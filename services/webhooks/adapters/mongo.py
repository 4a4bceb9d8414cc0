"""The webhooks store on MongoDB (FerretDB v1 locally): endpoints and deliveries.

Only what MongoDB and FerretDB v1 both support (kit/mongo.py): one document per endpoint and
per delivery, single-document updates with compare-and-set filters (the endpoint's `version`,
the delivery's lease), unique `_id`s for idempotency (a delivery's id derives from (endpoint,
event)), `update_many` for bulk redelivery, no transactions, change streams or TTL indexes:
the dispatcher polls the due index, and old deliveries are pruned by a sweep.

Signing secrets are encrypted at rest (Fernet, AES-128-CBC + HMAC-SHA256) with the service's
key, so a copy of the database alone does not let anyone forge deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit.events import Event
from kit.mongo import MongoDatabase
from kit.outbox import MongoOutbox
from services.webhooks.domain import (
    DUE_STATES,
    Attempt,
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointState,
    Secret,
)
from services.webhooks.ports import Cursor

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENDPOINTS, DELIVERIES = "endpoints", "deliveries"
INDEXES = {
    ENDPOINTS: [
        IndexModel([("create_time", DESCENDING), ("_id", DESCENDING)], name="newest"),
        IndexModel([("state", ASCENDING)], name="by_state"),
    ],
    DELIVERIES: [
        IndexModel(
            [("endpoint_id", ASCENDING), ("state", ASCENDING), ("next_attempt_time", ASCENDING)],
            name="due",
        ),
        IndexModel(
            [("endpoint_id", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)],
            name="by_endpoint_newest",
        ),
        IndexModel([("create_time", ASCENDING)], name="by_age"),
    ],
}


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _after(after: Cursor | None) -> dict[str, Any]:
    if after is None:
        return {}
    t, i = after
    return {"$or": [{"create_time": {"$lt": t}}, {"create_time": t, "_id": {"$lt": i}}]}


class MongoEndpoints:
    def __init__(self, db: MongoDatabase, key: bytes) -> None:
        self._c = db[ENDPOINTS]
        self._box = Fernet(key)
        self.outbox = MongoOutbox(db, [ENDPOINTS])

    def _doc(self, e: Endpoint) -> dict[str, Any]:
        return {
            "_id": e.id,
            "url": e.url,
            "description": e.description,
            "event_types": list(e.event_types),
            "state": e.state.value,
            "secrets": [
                {"value": self._box.encrypt(s.value.encode()), "expire_time": s.expire_time}
                for s in e.secrets
            ],
            "create_time": e.create_time,
            "update_time": e.update_time,
            "version": e.version,
            "request_id": e.request_id,
            "failing_since": e.failing_since,
        }

    def _endpoint(self, d: dict[str, Any]) -> Endpoint:
        return Endpoint(
            id=d["_id"],
            url=d["url"],
            description=d.get("description", ""),
            event_types=tuple(d.get("event_types") or ()),
            state=EndpointState(d["state"]),
            secrets=tuple(
                Secret(self._box.decrypt(bytes(s["value"])).decode(), _utc(s.get("expire_time")))
                for s in d["secrets"]
            ),
            create_time=_utc(d["create_time"]),
            update_time=_utc(d["update_time"]),
            version=d["version"],
            request_id=d.get("request_id", ""),
            failing_since=_utc(d.get("failing_since")),
        )

    async def insert(self, endpoint: Endpoint) -> bool:
        try:
            await self._c.insert_one(self._doc(endpoint))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, endpoint_id: str) -> Endpoint | None:
        d = await self._c.find_one({"_id": endpoint_id}, {"_outbox": 0})
        return self._endpoint(d) if d else None

    async def count(self) -> int:
        return await self._c.count_documents({})

    async def list(self, *, state, event_type, after, limit) -> list[Endpoint]:
        query: dict[str, Any] = {**_after(after)}
        if state is not None:
            query["state"] = state.value
        if event_type is not None:
            query["event_types"] = {"$in": [event_type, "*"]}
        cursor = self._c.find(query, {"_outbox": 0}).sort(
            [("create_time", DESCENDING), ("_id", DESCENDING)]
        )
        return [self._endpoint(d) async for d in cursor.limit(limit)]

    async def active(self) -> list[Endpoint]:
        cursor = self._c.find({"state": EndpointState.ACTIVE.value}, {"_outbox": 0})
        return [self._endpoint(d) async for d in cursor]

    async def replace(self, endpoint: Endpoint, expected_version: int) -> bool:
        fields = {k: v for k, v in self._doc(endpoint).items() if k != "_id"}
        result = await self._c.update_one(
            {"_id": endpoint.id, "version": expected_version}, {"$set": fields}
        )
        return result.matched_count == 1

    async def delete(self, endpoint_id: str) -> bool:
        return (await self._c.delete_one({"_id": endpoint_id})).deleted_count == 1

    async def failed(self, endpoint_id: str, now: datetime) -> None:
        await self._c.update_one(
            {"_id": endpoint_id, "failing_since": None}, {"$set": {"failing_since": now}}
        )

    async def succeeded(self, endpoint_id: str) -> None:
        await self._c.update_one({"_id": endpoint_id}, {"$set": {"failing_since": None}})

    async def set_state(
        self, endpoint_id: str, state: EndpointState, now: datetime, events: Sequence[Event] = ()
    ) -> bool:
        update: dict[str, Any] = {
            "$set": {"state": state.value, "update_time": now},
            "$inc": {"version": 1},
        }
        if events:
            update = MongoOutbox.push(update, events)
        result = await self._c.update_one(
            {"_id": endpoint_id, "state": EndpointState.ACTIVE.value}, update
        )
        if result.modified_count and events:
            self.outbox.notify()
        return result.modified_count == 1


def _attempt_doc(a: Attempt) -> dict[str, Any]:
    return {
        "attempt_time": a.attempt_time,
        "status_code": a.status_code,
        "latency_ms": round(a.latency.total_seconds() * 1000, 3),
        "body": a.body,
        "error": a.error,
    }


def _delivery(d: dict[str, Any]) -> Delivery:
    return Delivery(
        id=d["_id"],
        endpoint_id=d["endpoint_id"],
        event_id=d["event_id"],
        event_type=d["event_type"],
        event_time=_utc(d["event_time"]),
        payload=d["payload"],
        state=DeliveryState(d["state"]),
        create_time=_utc(d["create_time"]),
        update_time=_utc(d["update_time"]),
        next_attempt_time=_utc(d.get("next_attempt_time")),
        attempts=tuple(
            Attempt(
                attempt_time=_utc(a["attempt_time"]),
                status_code=a["status_code"],
                latency=timedelta(milliseconds=a["latency_ms"]),
                body=a.get("body", ""),
                error=a.get("error", ""),
            )
            for a in d.get("attempts") or ()
        ),
        schedule_index=d.get("schedule_index", 0),
        test=d.get("test", False),
    )


class MongoDeliveries:
    def __init__(self, db: MongoDatabase) -> None:
        self._c = db[DELIVERIES]

    async def add(self, delivery: Delivery) -> bool:
        doc = {
            "_id": delivery.id,
            "endpoint_id": delivery.endpoint_id,
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "event_time": delivery.event_time,
            "payload": delivery.payload,
            "state": delivery.state.value,
            "create_time": delivery.create_time,
            "update_time": delivery.update_time,
            "next_attempt_time": delivery.next_attempt_time,
            "attempts": [_attempt_doc(a) for a in delivery.attempts],
            "schedule_index": delivery.schedule_index,
            "test": delivery.test,
            "lease_owner": "",
            "lease_until": EPOCH,
        }
        try:
            await self._c.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, delivery_id: str) -> Delivery | None:
        d = await self._c.find_one({"_id": delivery_id})
        return _delivery(d) if d else None

    async def list(self, endpoint_id, *, state, event_type, event_id, after, limit):
        query: dict[str, Any] = {"endpoint_id": endpoint_id, **_after(after)}
        if state is not None:
            query["state"] = state.value
        if event_type is not None:
            query["event_type"] = event_type
        if event_id is not None:
            query["event_id"] = event_id
        cursor = self._c.find(query).sort([("create_time", DESCENDING), ("_id", DESCENDING)])
        return [_delivery(d) async for d in cursor.limit(limit)]

    @staticmethod
    def _due(now: datetime) -> dict[str, Any]:
        return {
            "state": {"$in": [s.value for s in DUE_STATES]},
            "next_attempt_time": {"$lte": now},
            "lease_until": {"$lte": now},
        }

    async def due(self, endpoint_id: str, now: datetime, limit: int) -> list[str]:
        # No sort: FerretDB v1 sorts in memory after reading every match (about 50x slower
        # here); the natural order is insertion order, oldest first, and the contract promises
        # no order. On MongoDB the `due` index serves this filter.
        cursor = self._c.find({"endpoint_id": endpoint_id, **self._due(now)}, {"_id": 1})
        return [doc["_id"] async for doc in cursor.limit(limit)]

    async def any_due(self, now: datetime) -> bool:
        # One query for every endpoint: FerretDB v1 answers each `due` by reading and decoding
        # every delivery (it filters in Go, without the index), so an idle dispatcher asking
        # each active endpoint scanned the collection once per endpoint per poll.
        return await self._c.find_one(self._due(now), {"_id": 1}) is not None

    async def claim(self, delivery_id, now, lease_until, owner) -> Delivery | None:
        # Compare-and-set on the lease: of two dispatchers, one gets it.
        doc = await self._c.find_one_and_update(
            {"_id": delivery_id, **self._due(now)},
            {"$set": {"lease_owner": owner, "lease_until": lease_until}},
            return_document=ReturnDocument.AFTER,
        )
        return _delivery(doc) if doc else None

    async def record(self, delivery_id, owner, attempt, state, next_attempt_time, schedule_index):
        result = await self._c.update_one(
            {"_id": delivery_id, "lease_owner": owner},
            {
                "$push": {"attempts": _attempt_doc(attempt)},
                "$set": {
                    "state": state.value,
                    "next_attempt_time": next_attempt_time,
                    "schedule_index": schedule_index,
                    "update_time": attempt.attempt_time + attempt.latency,
                    "lease_owner": "",
                    "lease_until": EPOCH,
                },
            },
        )
        return result.matched_count == 1

    def _restart(self, now: datetime) -> dict[str, Any]:
        return {
            "$set": {
                "state": DeliveryState.PENDING.value,
                "next_attempt_time": now,
                "schedule_index": 0,
                "update_time": now,
            }
        }

    async def redeliver(self, delivery_id: str, now: datetime) -> Delivery | None:
        doc = await self._c.find_one_and_update(
            {
                "_id": delivery_id,
                "state": {"$ne": DeliveryState.PENDING.value},
                "lease_until": {"$lte": now},
            },
            self._restart(now),
            return_document=ReturnDocument.AFTER,
        )
        return _delivery(doc) if doc else None

    async def redeliver_failed(self, endpoint_id, start, end, now) -> int:
        result = await self._c.update_many(
            {
                "endpoint_id": endpoint_id,
                "state": DeliveryState.FAILED.value,
                "test": False,
                "create_time": {"$gte": start, "$lt": end},
            },
            self._restart(now),
        )
        return result.modified_count

    async def delete_for_endpoint(self, endpoint_id: str) -> None:
        await self._c.delete_many({"endpoint_id": endpoint_id})

    async def prune(self, before: datetime) -> int:
        result = await self._c.delete_many(
            {
                "create_time": {"$lt": before},
                "state": {"$nin": [s.value for s in DUE_STATES]},
            }
        )
        return result.deleted_count
