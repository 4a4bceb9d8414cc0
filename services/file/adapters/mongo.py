"""The file repository on MongoDB (FerretDB locally): one document per file, one per user.

Why MongoDB and not Cassandra: a file is one small document whose every change (state,
thumbnails, and the event it causes, kept in its `_outbox` by kit.outbox.MongoOutbox) is one
single-document compare-and-set on `state`; and a quota is a sum that must never overshoot,
which one conditional `$inc` on the owner's usage document gives, where Cassandra would need
LWT round trips or counters that cannot be conditional. Only what MongoDB and FerretDB v1 both
support is used (kit/mongo.py).

Usage documents: `{_id: owner_id, used_bytes, holds: {file_id: bytes}}`. Each change names the
file's hold in its filter, so a retried reserve, resize or release applies once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit.events import Event
from kit.mongo import MongoDatabase
from kit.outbox import MongoOutbox
from services.file.domain import File, Purpose, State, Thumbnail
from services.file.ports import Cursor

FILES, USAGE = "files", "usage"
INDEXES = {
    FILES: [
        IndexModel(
            [("owner_id", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)],
            name="by_owner",
        ),
        IndexModel([("state", ASCENDING), ("expire_time", ASCENDING)], name="by_state"),
    ],
}


def _ms(value: datetime) -> datetime:
    """Mongo keeps milliseconds: round-trips compare equal once truncated."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _fields(file: File) -> dict[str, Any]:
    return {
        "owner_id": file.owner_id,
        "purpose": file.purpose.value,
        "state": file.state.value,
        "filename": file.filename,
        "content_type": file.content_type,
        "size_bytes": file.size_bytes,
        "create_time": _ms(file.create_time),
        "update_time": _ms(file.update_time),
        "expire_time": _ms(file.expire_time),
        "product_id": file.product_id,
        "alt_text": file.alt_text,
        "width": file.width,
        "height": file.height,
        "sha256": file.sha256,
        "thumbnails": [
            {"size": t.size, "width": t.width, "height": t.height, "content_type": t.content_type}
            for t in file.thumbnails
        ],
    }


def _file(doc: dict[str, Any]) -> File:
    return File(
        id=doc["_id"],
        owner_id=doc["owner_id"],
        purpose=Purpose(doc["purpose"]),
        state=State(doc["state"]),
        filename=doc["filename"],
        content_type=doc["content_type"],
        size_bytes=doc["size_bytes"],
        create_time=doc["create_time"].astimezone(UTC),
        update_time=doc["update_time"].astimezone(UTC),
        expire_time=doc["expire_time"].astimezone(UTC),
        product_id=doc.get("product_id", ""),
        alt_text=doc.get("alt_text", ""),
        width=doc.get("width", 0),
        height=doc.get("height", 0),
        sha256=doc.get("sha256", ""),
        thumbnails=tuple(
            Thumbnail(t["size"], t["width"], t["height"], t["content_type"])
            for t in doc.get("thumbnails") or []
        ),
    )


class MongoFileRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self.db = db.db
        self.outbox = MongoOutbox(db, [FILES])

    @classmethod
    async def open(cls, db: MongoDatabase) -> MongoFileRepository:
        repo = cls(db)
        # One index per call: FerretDB v1 panics when several indexes that already exist are
        # declared in one createIndexes (seen with two); one at a time is idempotent.
        for collection, models in INDEXES.items():
            for model in models:
                await db.ensure_indexes({collection: [model]})
        await repo.outbox.ensure_indexes()
        return repo

    async def insert(self, file: File) -> None:
        await self.db[FILES].insert_one({"_id": file.id, **_fields(file)})

    async def get(self, file_id: str) -> File | None:
        doc = await self.db[FILES].find_one({"_id": file_id}, {"_outbox": 0})
        return _file(doc) if doc else None

    async def save(self, file: File, expected: State, events: Sequence[Event]) -> bool:
        update: dict[str, Any] = {"$set": _fields(file), "$unset": {"lease_until": ""}}
        if events:
            update = MongoOutbox.push(update, events)
        result = await self.db[FILES].update_one({"_id": file.id, "state": expected.value}, update)
        if result.modified_count and events:
            self.outbox.notify()
        return bool(result.modified_count)

    async def remove(self, file_id: str) -> None:
        await self.db[FILES].delete_one({"_id": file_id})

    async def list(self, owner_id: str, cursor: Cursor | None, limit: int):
        query: dict[str, Any] = {"owner_id": owner_id, "state": {"$ne": State.DELETED.value}}
        if cursor is not None:
            t = datetime.fromtimestamp(cursor["t"] / 1000, UTC)
            query["$or"] = [
                {"create_time": {"$lt": t}},
                {"create_time": t, "_id": {"$lt": cursor["id"]}},
            ]
        found = (
            self.db[FILES]
            .find(query, {"_outbox": 0})
            .sort([("create_time", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 1)
        )
        rows = [_file(doc) async for doc in found]
        page = rows[:limit]
        if len(rows) <= limit:
            return page, None
        last = page[-1]
        return page, {"t": int(last.create_time.timestamp() * 1000), "id": last.id}

    async def claim_processing(self, now: datetime, lease_seconds: float) -> File | None:
        doc = await self.db[FILES].find_one_and_update(
            {
                "state": State.PROCESSING.value,
                "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
            },
            {"$set": {"lease_until": now + timedelta(seconds=lease_seconds)}},
            return_document=ReturnDocument.AFTER,
        )
        return _file(doc) if doc else None

    async def stale(self, now: datetime, limit: int) -> list[File]:
        expired = self.db[FILES].find(
            {"state": State.UPLOADING.value, "expire_time": {"$lt": now}}, {"_outbox": 0}
        )
        out = [_file(doc) async for doc in expired.limit(limit)]
        # Deleted files are purged once their outbox is empty. Filtered here, not in the
        # query: FerretDB v1 does not match `_outbox.id: {$exists: false}` on an empty array.
        deleted = self.db[FILES].find({"state": State.DELETED.value})
        async for doc in deleted.limit(limit * 4):
            if len(out) >= limit:
                break
            if not doc.get("_outbox"):
                out.append(_file(doc))
        return out

    # --- quota --------------------------------------------------------------------------------

    async def reserve(self, owner_id: str, file_id: str, size: int, quota: int) -> bool:
        if size > quota:
            return False
        hold = f"holds.{file_id}"
        try:
            # Upserts the usage document; an existing one over the quota (or already holding
            # this file) fails the filter, and the upsert then collides on _id.
            await self.db[USAGE].update_one(
                {"_id": owner_id, hold: {"$exists": False}, "used_bytes": {"$lte": quota - size}},
                {"$inc": {"used_bytes": size}, "$set": {hold: size}},
                upsert=True,
            )
        except DuplicateKeyError:
            doc = await self.db[USAGE].find_one({"_id": owner_id})
            return doc is not None and file_id in (doc.get("holds") or {})
        return True

    async def _hold(self, owner_id: str, file_id: str) -> int | None:
        doc = await self.db[USAGE].find_one({"_id": owner_id})
        return (doc.get("holds") or {}).get(file_id) if doc else None

    async def resize(self, owner_id: str, file_id: str, size: int) -> None:
        old = await self._hold(owner_id, file_id)
        if old is None or old == size:
            return
        hold = f"holds.{file_id}"
        await self.db[USAGE].update_one(
            {"_id": owner_id, hold: old},
            {"$inc": {"used_bytes": size - old}, "$set": {hold: size}},
        )

    async def release(self, owner_id: str, file_id: str) -> None:
        old = await self._hold(owner_id, file_id)
        if old is None:
            return
        hold = f"holds.{file_id}"
        await self.db[USAGE].update_one(
            {"_id": owner_id, hold: old},
            {"$inc": {"used_bytes": -old}, "$unset": {hold: ""}},
        )

    async def usage(self, owner_id: str) -> int:
        doc = await self.db[USAGE].find_one({"_id": owner_id})
        return int(doc.get("used_bytes", 0)) if doc else 0
